"""Frame-index sampling: small pure functions for training clips and test views.

Conventions (PySlowFast's): a clip has ``num_frames`` frames ``sampling_rate`` frames apart,
counted at ``target_fps``. On a video at ``fps`` the step in *source* frames is
``sampling_rate * fps / target_fps`` (60 fps, rate 2, target 30: a step of 4 source frames), and a
clip covers ``span = num_frames * step`` source frames. Positions are in source frames.

Test placement of N clips on a video of L frames (``delta = max(L - span, 0)``):

* ``uniform`` (MMAction2, VideoMAE): clip i starts at ``round(i * delta / (N - 1))`` so the first
  clip touches the start and the last the end; a single clip is centred (``delta / 2``).
* ``slowfast`` (PySlowFast, pytorchvideo's ``ConstantClipsPerVideoSampler``): ``i * delta / N``.

Clips longer than the video are padded (``pad_mode``): ``repeat_last`` repeats the last frame,
``loop`` wraps around to the start.
"""

from __future__ import annotations

import math
import random
from typing import NamedTuple

PLACEMENTS = ("uniform", "slowfast")
PAD_MODES = ("repeat_last", "loop")


class ClipSpec(NamedTuple):
    """How a clip is laid out over source frames."""

    num_frames: int  # T
    step: float  # source frames between sampled frames
    span: float  # source frames covered by the clip (num_frames * step)


class Clip(NamedTuple):
    """One sampled clip."""

    start: float  # position of the first frame, in source frames
    indices: tuple[int, ...]  # (T,) source frame indices, padded per pad_mode


def clip_spec(num_frames: int, sampling_rate: int, fps: float, target_fps: float) -> ClipSpec:
    """Clip layout in source frames for a video at ``fps`` (unknown fps: taken as ``target_fps``)."""
    fps = fps if fps and fps > 0 else target_fps
    step = sampling_rate * fps / target_fps
    return ClipSpec(num_frames, step, num_frames * step)


def clip_indices(start: float, spec: ClipSpec, video_frames: int, pad_mode: str = "repeat_last") -> tuple[int, ...]:
    """Source frame indices of a clip starting at ``start``, padded past the end of the video."""
    if pad_mode not in PAD_MODES:
        raise ValueError(f"unknown pad mode {pad_mode!r}; expected one of {PAD_MODES}")
    if video_frames <= 0:
        raise ValueError("video has no frames")
    out = []
    for k in range(spec.num_frames):
        i = int(math.floor(start + k * spec.step + 1e-6))  # tolerance for float steps like 4.0000001
        if i >= video_frames:
            i = video_frames - 1 if pad_mode == "repeat_last" else i % video_frames
        out.append(max(i, 0))
    return tuple(out)


def train_clip(spec: ClipSpec, video_frames: int, rng: random.Random, pad_mode: str = "repeat_last") -> Clip:
    """A clip at a uniformly random position (a clip longer than the video starts at 0)."""
    start = rng.uniform(0.0, max(video_frames - spec.span, 0.0))
    return Clip(start, clip_indices(start, spec, video_frames, pad_mode))


def view_clip_starts(video_frames: float, span: float, num_clips: int, placement: str = "uniform") -> tuple[float, ...]:
    """Start positions of ``num_clips`` test clips (see the module docstring for the formulas).

    Works in any unit as long as ``video_frames`` and ``span`` share it (frames or seconds).
    """
    if placement not in PLACEMENTS:
        raise ValueError(f"unknown clip placement {placement!r}; expected one of {PLACEMENTS}")
    if num_clips <= 0:
        raise ValueError("num_clips must be positive")
    delta = max(video_frames - span, 0)
    if placement == "slowfast":
        return tuple(i * delta / num_clips for i in range(num_clips))
    if num_clips == 1:
        return (delta / 2,)
    return tuple(float(round(i * delta / (num_clips - 1))) for i in range(num_clips))


def view_clips(
    spec: ClipSpec, video_frames: int, num_clips: int, placement: str = "uniform", pad_mode: str = "repeat_last"
) -> tuple[Clip, ...]:
    """All test clips of a video, first to last."""
    starts = view_clip_starts(video_frames, spec.span, num_clips, placement)
    return tuple(Clip(s, clip_indices(s, spec, video_frames, pad_mode)) for s in starts)


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
