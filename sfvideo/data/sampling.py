"""Frame-index sampling: small pure functions for training clips and test views.

Conventions (PySlowFast's): a clip has ``num_frames`` (T) frames ``sampling_rate`` frames apart,
counted at ``target_fps``. On a video at ``fps`` the step in *source* frames is
``sampling_rate * fps / target_fps`` (60 fps, rate 2, target 30: a step of 4 source frames).
Positions are in source frames; L is the number of frames of the video.

Two samplers (``DATA.SAMPLING``):

* ``dense``: T frames a fixed step apart (a ``T x rate`` span somewhere in the video).
* ``segment`` (TSN style, for Something-Something and short clips): the video is cut into T
  segments of ``(L - 1) / T`` frames with integer bounds ``round(i * seg)``; training takes a
  random frame of each segment (bounds included), testing a fixed one. The whole video is
  covered whatever its length; ``SAMPLING_RATE`` and the frame rate play no part.

Each test placement (``TEST.CLIP_PLACEMENT``) reproduces one peer's frame indices exactly, and
the dense training clip follows the same peer (so that training and testing agree with it):

* ``uniform`` -- MMAction2 ``SampleFrames`` (and ``UniformSample`` for ``segment``). A test clip
  covers ``(T - 1) * step + 1`` frames; with ``delta = max(L - that, 0)`` clip i of N starts at
  ``round(i * (delta / (N - 1)))`` (round half to even), a single clip at ``delta // 2``
  (T = 1: frame ``i * L / N + L / (2 N)``, truncated). Training: an integer start drawn
  uniformly from ``[0, L - T * step]`` (0 when the clip is longer than the video).
  Segment test view k of N takes frame ``round(i * seg) + int(seg / (N + 1) * (k + 1))``.
* ``slowfast`` -- PySlowFast ``get_start_end_idx`` + ``temporal_sampling``. A clip covers
  ``clip_size = max(1, T * rate / target_fps * fps)`` frames; with ``delta = max(L - clip_size, 0)``
  clip i of N starts at ``delta * i / N`` (a single clip at 0) and its frames are
  ``linspace(start, start + clip_size - 1, T)`` in float32, clamped to ``[0, L - 1]`` and
  truncated: not a fixed stride. Training draws ``start = rng.uniform(0, delta)``.
  Segment test views all take the segment middle ``(lo + hi) // 2`` (PySlowFast's SSv2 loader).

Padding of dense clips that run past the end (``DATA.PAD_MODE``): ``repeat_last`` repeats the
last in-range frame the clip samples (MMAction2's rule; for ``slowfast`` the clamp to L - 1,
PySlowFast's rule), ``loop`` wraps around (index modulo L). MMAction2's exact equality holds when
the video's frame rate equals ``DATA.TARGET_FPS`` (MMAction2 ignores frame rates); for other
rates the same formulas run with the converted step.
"""

from __future__ import annotations

import math
import random
from typing import NamedTuple, Sequence

SAMPLINGS = ("dense", "segment")
PLACEMENTS = ("uniform", "slowfast")
PAD_MODES = ("repeat_last", "loop")


class ClipSpec(NamedTuple):
    """How a clip is laid out over source frames."""

    num_frames: int  # T
    step: float  # source frames between sampled frames
    span: float  # source frames covered by a training clip (num_frames * step)


class Clip(NamedTuple):
    """One sampled clip."""

    start: float  # position of the first frame, in source frames
    indices: tuple[int, ...]  # (T,) source frame indices, padded per pad_mode


def clip_spec(num_frames: int, sampling_rate: int, fps: float, target_fps: float) -> ClipSpec:
    """Clip layout in source frames for a video at ``fps`` (unknown fps: taken as ``target_fps``)."""
    fps = fps if fps and fps > 0 else target_fps
    step = sampling_rate * fps / target_fps
    # The span in PySlowFast's operation order, so that its clip size matches to the last bit.
    return ClipSpec(num_frames, step, sampling_rate * num_frames / target_fps * fps)


def _check(video_frames: int, pad_mode: str) -> None:
    if pad_mode not in PAD_MODES:
        raise ValueError(f"unknown pad mode {pad_mode!r}; expected one of {PAD_MODES}")
    if video_frames <= 0:
        raise ValueError("video has no frames")


def pad_indices(raw: Sequence[int], video_frames: int, pad_mode: str = "repeat_last") -> tuple[int, ...]:
    """Replace indices ``>= video_frames``: ``repeat_last`` by the last in-range index of ``raw``
    (0 when there is none), ``loop`` by the index modulo ``video_frames``."""
    _check(video_frames, pad_mode)
    if pad_mode == "loop":
        return tuple(i % video_frames for i in raw)
    last = max((i for i in raw if i < video_frames), default=0)
    return tuple(i if i < video_frames else last for i in raw)


def _positions(start: float, step: float, num_frames: int) -> list[int]:
    # Integer steps are exact (MMAction2 truncates offset + k * interval); a converted frame rate
    # gives float steps like 4.0000001, hence the tolerance there.
    eps = 0.0 if float(step).is_integer() else 1e-6
    return [max(int(math.floor(start + k * step + eps)), 0) for k in range(num_frames)]


def clip_indices(start: float, spec: ClipSpec, video_frames: int, pad_mode: str = "repeat_last") -> tuple[int, ...]:
    """Source frame indices of a fixed-stride clip starting at ``start``, padded past the end."""
    _check(video_frames, pad_mode)
    return pad_indices(_positions(start, spec.step, spec.num_frames), video_frames, pad_mode)


def slowfast_clip_size(spec: ClipSpec) -> float:
    """PySlowFast's clip size in source frames, ``max(1, T * rate / target_fps * fps)``."""
    return max(1.0, spec.span)


def linspace_indices(start: float, clip_size: float, num_frames: int, video_frames: int,
                     pad_mode: str = "repeat_last") -> tuple[int, ...]:
    """``num_frames`` indices spread from ``start`` to ``start + clip_size - 1`` (PySlowFast).

    The positions are computed by ``torch.linspace`` in float32, as PySlowFast does, so that
    truncation agrees with it to the last frame (a float64 rewrite differs where a position
    falls within a float32 rounding of an integer). ``repeat_last`` clamps to the last frame.
    """
    import torch  # local: the rest of this module stays importable without torch

    _check(video_frames, pad_mode)
    pos = torch.linspace(start, start + clip_size - 1, num_frames)  # (T,) float32
    if pad_mode == "repeat_last":
        return tuple(int(i) for i in pos.clamp(0, video_frames - 1).long())
    return tuple(int(i) % video_frames for i in pos.clamp(min=0).long())


def train_clip(spec: ClipSpec, video_frames: int, rng: random.Random, pad_mode: str = "repeat_last",
               placement: str = "uniform") -> Clip:
    """A dense training clip at a random position, drawn as the placement's peer draws it.

    ``uniform`` (MMAction2): an integer start uniform in ``[0, L - span]`` (0 when the clip is
    longer than the video), then the fixed stride. ``slowfast`` (PySlowFast): a float start
    ``rng.uniform(0, max(L - clip_size, 0))``, then ``linspace_indices``.
    """
    _check_placement(placement)
    if placement == "slowfast":
        size = slowfast_clip_size(spec)
        start = rng.uniform(0, max(video_frames - size, 0))
        return Clip(start, linspace_indices(start, size, spec.num_frames, video_frames, pad_mode))
    room = video_frames - spec.span
    start = rng.randint(0, int(math.floor(room + 1e-6))) if room >= 0 else 0
    return Clip(float(start), clip_indices(start, spec, video_frames, pad_mode))


def _check_placement(placement: str) -> None:
    if placement not in PLACEMENTS:
        raise ValueError(f"unknown clip placement {placement!r}; expected one of {PLACEMENTS}")


def view_clip_starts(video_frames: float, span: float, num_clips: int, placement: str = "uniform") -> tuple[float, ...]:
    """Start positions of ``num_clips`` test clips of ``span`` frames (module docstring).

    ``span`` is the placement's own clip length: ``(T - 1) * step + 1`` for ``uniform``,
    ``clip_size`` for ``slowfast``. The ``slowfast`` starts work in any unit (frames or seconds).
    """
    _check_placement(placement)
    if num_clips <= 0:
        raise ValueError("num_clips must be positive")
    delta = max(video_frames - span, 0)
    if placement == "slowfast":
        return tuple(delta * i / num_clips for i in range(num_clips))
    if num_clips == 1:
        return (float(delta // 2),)
    between = delta / (num_clips - 1)
    return tuple(float(round(i * between)) for i in range(num_clips))


def view_clips(
    spec: ClipSpec, video_frames: int, num_clips: int, placement: str = "uniform", pad_mode: str = "repeat_last"
) -> tuple[Clip, ...]:
    """All dense test clips of a video, first to last, as the placement's peer samples them."""
    _check_placement(placement)
    if placement == "slowfast":
        size = slowfast_clip_size(spec)
        starts = view_clip_starts(video_frames, size, num_clips, "slowfast")
        return tuple(Clip(s, linspace_indices(s, size, spec.num_frames, video_frames, pad_mode)) for s in starts)
    if spec.num_frames == 1:  # MMAction2's 2-D branch: the middle of each of N equal parts
        if num_clips <= 0:
            raise ValueError("num_clips must be positive")
        part = video_frames / num_clips
        starts = tuple(i * part + part / 2.0 for i in range(num_clips))
    else:
        starts = view_clip_starts(video_frames, (spec.num_frames - 1) * spec.step + 1, num_clips, "uniform")
    return tuple(Clip(s, clip_indices(s, spec, video_frames, pad_mode)) for s in starts)


def segment_bounds(video_frames: int, num_frames: int) -> list[tuple[int, int]]:
    """Integer bounds (inclusive) of the T segments: ``round(i * seg), round((i + 1) * seg)``
    with ``seg = (L - 1) / T`` (neighbouring segments share a bound, as in both peers)."""
    if video_frames <= 0:
        raise ValueError("video has no frames")
    seg = float(video_frames - 1) / num_frames
    return [(int(round(seg * i)), int(round(seg * (i + 1)))) for i in range(num_frames)]


def segment_train_indices(video_frames: int, num_frames: int, rng: random.Random) -> tuple[int, ...]:
    """One random frame of each segment (``rng.randint(lo, hi)``, both bounds included)."""
    return tuple(rng.randint(lo, hi) for lo, hi in segment_bounds(video_frames, num_frames))


def segment_test_indices(video_frames: int, num_frames: int, num_clips: int = 1,
                         placement: str = "uniform") -> tuple[tuple[int, ...], ...]:
    """``num_clips`` test views of T frames each (module docstring for each placement)."""
    _check_placement(placement)
    if num_clips <= 0:
        raise ValueError("num_clips must be positive")
    bounds = segment_bounds(video_frames, num_frames)
    if placement == "slowfast":
        view = tuple((lo + hi) // 2 for lo, hi in bounds)
        return (view,) * num_clips
    part = float(video_frames - 1) / num_frames / (num_clips + 1)
    return tuple(tuple(lo + int(part * (k + 1)) for lo, _ in bounds) for k in range(num_clips))


def sample_train_indices(video_frames: int, fps: float, rng: random.Random, *, num_frames: int, sampling_rate: int,
                         target_fps: float, sampling: str = "dense", placement: str = "uniform",
                         pad_mode: str = "repeat_last") -> tuple[int, ...]:
    """The (T,) frame indices of one training clip, as ``DATA.SAMPLING`` and the placement say."""
    if sampling == "segment":
        return segment_train_indices(video_frames, num_frames, rng)
    if sampling != "dense":
        raise ValueError(f"unknown sampling {sampling!r}; expected one of {SAMPLINGS}")
    spec = clip_spec(num_frames, sampling_rate, fps, target_fps)
    return train_clip(spec, video_frames, rng, pad_mode, placement).indices


def sample_test_indices(video_frames: int, fps: float, *, num_frames: int, sampling_rate: int, target_fps: float,
                        num_clips: int, sampling: str = "dense", placement: str = "uniform",
                        pad_mode: str = "repeat_last") -> tuple[tuple[int, ...], ...]:
    """The (N, T) frame indices of a video's test clips, first to last."""
    if sampling == "segment":
        return segment_test_indices(video_frames, num_frames, num_clips, placement)
    if sampling != "dense":
        raise ValueError(f"unknown sampling {sampling!r}; expected one of {SAMPLINGS}")
    spec = clip_spec(num_frames, sampling_rate, fps, target_fps)
    return tuple(c.indices for c in view_clips(spec, video_frames, num_clips, placement, pad_mode))


class CropBox(NamedTuple):
    """A crop region in pixels: top, left, height, width."""

    top: int
    left: int
    height: int
    width: int


def spatial_crop_boxes(height: int, width: int, size: int, num_crops: int) -> tuple[CropBox, ...]:
    """Square test crops of ``size`` on a frame whose short side is ``size``.

    ``num_crops`` 3: start, centre and end of the long side (left/centre/right for landscape,
    top/centre/bottom for portrait); 1: the centre crop.
    """
    if num_crops not in (1, 3):
        raise ValueError(f"num_crops must be 1 or 3, got {num_crops}")
    size_h, size_w = min(size, height), min(size, width)
    cy, cx = (height - size_h) // 2, (width - size_w) // 2
    if num_crops == 1:
        return (CropBox(cy, cx, size_h, size_w),)
    if height > width:
        return tuple(CropBox(t, cx, size_h, size_w) for t in (0, cy, height - size_h))
    return tuple(CropBox(cy, x, size_h, size_w) for x in (0, cx, width - size_w))


def scale_jitter_box(height: int, width: int, short_side: int, crop: int, rng: random.Random) -> CropBox:
    """Region of the original frame that, after scaling the short side to ``short_side``, is a
    random ``crop`` x ``crop`` square (short-side jitter + random crop, done as crop-then-resize)."""
    scale = short_side / min(height, width)
    side_h = min(height, max(1, round(crop / scale)))
    side_w = min(width, max(1, round(crop / scale)))
    top = rng.randint(0, height - side_h)
    left = rng.randint(0, width - side_w)
    return CropBox(top, left, side_h, side_w)


def random_resized_box(
    height: int, width: int, area_range: tuple[float, float], aspect_range: tuple[float, float], rng: random.Random
) -> CropBox:
    """Random area/aspect region (as torchvision's RandomResizedCrop; centre crop fallback)."""
    area = height * width
    log_lo, log_hi = math.log(aspect_range[0]), math.log(aspect_range[1])
    for _ in range(10):
        target = area * rng.uniform(*area_range)
        aspect = math.exp(rng.uniform(log_lo, log_hi))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return CropBox(rng.randint(0, height - h), rng.randint(0, width - w), h, w)
    side = min(height, width)
    return CropBox((height - side) // 2, (width - side) // 2, side, side)
