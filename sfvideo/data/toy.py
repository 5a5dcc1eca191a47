"""The embedded synthetic action dataset: classes told apart only by motion over time.

Every clip shows one *actor* (a flat-coloured, rotationally asymmetric shape: triangle, L, T or
"pac-man") on a textured, noisy background with 1-2 small disc *distractors* that drift in random
directions. The eight classes form four pairs; the two classes of a pair differ only in the
direction of their motion:

=====  ==========================  =============================================================
index  class                       motion of the actor
=====  ==========================  =============================================================
0      moving_left                 translates left  (x decreases), wrapping around the frame edge
1      moving_right                translates right (x increases), wrapping around the frame edge
2      moving_up                   translates up    (y decreases), wrapping around the frame edge
3      moving_down                 translates down  (y increases), wrapping around the frame edge
4      rotating_clockwise          turns clockwise on screen about a pivot beside it (a rigid
                                   rotation: it travels along a circle while it turns)
5      rotating_anticlockwise      the same, anticlockwise
6      approaching                 grows (log-size increases); wraps from the largest to the smallest size
7      receding                    shrinks (log-size decreases); wraps from the smallest to the largest size
=====  ==========================  =============================================================

All eight classes are *motion-only*: for every frame index ``t``, the distribution of frame
``t`` is the same for the two classes of a pair. That holds exactly, not just on average, because
each moving quantity is a uniformly random phase on a circle plus ``direction * speed * t``:

* translation: position along the axis is ``(phase + sign * v * t) mod 1`` on the torus
  (the actor leaves one edge and re-enters from the opposite one), so the position at any frame is
  uniform on [0, 1) for both directions. A monotone path without wrapping cannot have this property:
  the first frame would show left-movers more often on the right.
* rotation: the angle about the pivot is ``theta0 + sign * w * t`` with ``theta0`` uniform on
  [0, 2 pi), and so is the actor's own orientation ``angle0 + sign * w * t``. The actor travels
  along the circle rather than turning in place: a small shape turning about its own centre moves
  few pixels, and a small model learns its direction far more slowly than that of a translation.
* scale: ``log size = lo + ((phase + sign * r * t) mod 1) * (hi - lo)``; the size at any frame is
  log-uniform on [exp(lo), exp(hi)) for both directions.

Everything else (shape, colour, size, position, speed magnitude, background texture, noise,
distractors) is drawn from the same distribution for every class, and the random draws happen in
the same order for every class, so appearance carries no label information within a pair. Between
pairs, single frames may still differ (a translating actor wraps around the frame edge, a rotating
one stays near the centre and may be cut by the edge; the scale classes span more sizes), so a
model that sees a single frame can at best tell which *pair* a clip belongs to: it cannot exceed
50% accuracy. The rest needs the direction of time.

Note for training: a horizontal flip turns moving_left into moving_right and clockwise into
anticlockwise, so ``AUG.FLIP`` must be off for this dataset (``configs/toy_tiny.yaml`` does that).

The generator is pure numpy (no anti-aliasing) and deterministic: each clip gets its own
``numpy.random.Generator`` seeded from ``(seed, split, class, index)``, so the result does not
depend on the number of worker threads or their scheduling.
"""

from __future__ import annotations

import dataclasses
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..utils.io import atomic_write_text

CLASS_NAMES: tuple[str, ...] = (
    "moving_left",
    "moving_right",
    "moving_up",
    "moving_down",
    "rotating_clockwise",
    "rotating_anticlockwise",
    "approaching",
    "receding",
)
# Pairs of class indices whose single frames have identical distributions (motion-only pairs).
MOTION_PAIRS: tuple[tuple[int, int], ...] = ((0, 1), (2, 3), (4, 5), (6, 7))
# Classes that can only be told apart from their partner by motion over time.
MOTION_ONLY_CLASSES: tuple[int, ...] = tuple(i for pair in MOTION_PAIRS for i in pair)

# Per class: (kind, sign). Signs are in image coordinates (x right, y down); an increasing angle
# turns the actor clockwise on screen.
_MOTION: tuple[tuple[str, int], ...] = (
    ("translate_x", -1),
    ("translate_x", +1),
    ("translate_y", -1),
    ("translate_y", +1),
    ("rotate", +1),
    ("rotate", -1),
    ("scale", +1),
    ("scale", -1),
)

NUM_SHAPES = 4  # triangle, L, T, pac-man (see _shape_mask)
DEFAULT_FRAMES = 24
DEFAULT_SIZE = 112
DEFAULT_FPS = 30.0
# Videos per class of the dataset `make demo` trains on (configs/toy_tiny.yaml): 1920 training
# clips, so that the ~1700 steps of the recipe see each clip about 7 times (with fewer, the model
# memorises them before it has learnt every motion), and 25 held-out videos per class, so that
# a per-class accuracy moves in steps of 4 points rather than 10.
DEFAULT_TRAIN_PER_CLASS = 240
DEFAULT_VAL_PER_CLASS = 25

# Motion magnitudes per frame (drawn uniformly in these ranges, independently of the class).
TRANSLATION_SPEED = (0.030, 0.045)  # frame widths per frame: 48-72% of the width over 16 frames
ROTATION_SPEED = (np.deg2rad(12.0), np.deg2rad(18.0))  # radians per frame: 192-288 deg over 16 frames
ORBIT_RADIUS = (0.14, 0.22)  # distance from the pivot to the actor's centre, fraction of the frame
LOG_SCALE_RANGE = (np.log(0.08), np.log(0.80))  # actor side for the scale classes, fraction of the frame
LOG_SCALE_SPEED = (0.060, 0.080)  # log-size per frame: x2.6-x3.6 over 16 frames
ACTOR_SIZE = (0.25, 0.40)  # actor side (fraction of the short side) for translation and rotation
DISTRACTOR_SIZE = (0.05, 0.09)
DISTRACTOR_SPEED = (0.0, 0.012)


@dataclass(frozen=True)
class Track:
    """One object over time. Positions are normalised to [0, 1] over (width, height).

    Attributes:
        shape: shape id in ``[0, NUM_SHAPES)``, or ``-1`` for a disc (distractors).
        color: RGB colour, shape (3,), float32 in [0, 255].
        cx, cy: centre per frame, shape (T,).
        size: side of the shape's unit box as a fraction of the short frame side, shape (T,).
        angle: orientation per frame in radians (image coordinates, clockwise positive), shape (T,).
        wrap: draw on the torus (an object crossing an edge re-enters from the opposite edge).
    """

    shape: int
    color: np.ndarray
    cx: np.ndarray
    cy: np.ndarray
    size: np.ndarray
    angle: np.ndarray
    wrap: bool


@dataclass(frozen=True)
class Scene:
    """Everything needed to render one synthetic clip (actor, distractors, background, noise);
    ``render_clip(scene)`` is deterministic.

    Attributes:
        label: class index.
        height, width, num_frames: clip geometry.
        actor: the object whose motion defines the class.
        distractors: class-independent objects drawn below the actor.
        background: static background texture, shape (H, W, 3), float32 in [0, 255].
        noise_sigma: standard deviation of the per-pixel noise (0-255 scale, uniformly distributed).
        noise_seed: seed of the noise generator.
    """

    label: int
    height: int
    width: int
    num_frames: int
    actor: Track
    distractors: tuple[Track, ...] = field(default_factory=tuple)
    background: np.ndarray | None = None
    noise_sigma: float = 0.0
    noise_seed: int = 0


# ---------------------------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------------------------
def _interp_matrix(n_out: int, n_in: int) -> np.ndarray:
    """Linear interpolation weights (n_out, n_in) from n_in grid nodes spanning the output."""
    pos = (np.arange(n_out) + 0.5) / n_out * (n_in - 1)  # (n_out,) position in grid units
    lo = np.minimum(pos.astype(int), n_in - 2)  # (n_out,)
    frac = pos - lo  # (n_out,)
    weights = np.zeros((n_out, n_in))
    weights[np.arange(n_out), lo] = 1.0 - frac
    weights[np.arange(n_out), lo + 1] = frac
    return weights


def _sample_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Smooth random colour blobs plus a faint grating: a static, class-independent texture."""
    base = rng.uniform(30.0, 130.0, size=3)  # (3,)
    amplitude = rng.uniform(20.0, 60.0)
    cells = int(rng.integers(3, 7))
    grid = rng.uniform(-0.5, 0.5, size=(3, cells, cells))  # (3, g, g)
    w_y, w_x = _interp_matrix(height, cells), _interp_matrix(width, cells)  # (H, g), (W, g)
    tex = (w_y @ grid @ w_x.T).transpose(1, 2, 0)  # (H, W, 3) bilinear upsampling
    theta, freq, phase = rng.uniform(0, np.pi), rng.uniform(4.0, 12.0), rng.uniform(0, 2 * np.pi)
    grating_amp = rng.uniform(0.0, 12.0)
    proj = (np.arange(width)[None, :] * np.cos(theta) + np.arange(height)[:, None] * np.sin(theta)) / max(
        height, width
    )  # (H, W)
    grating = grating_amp * np.sin(2 * np.pi * freq * proj + phase)  # (H, W)
    return (base + amplitude * tex + grating[..., None]).astype(np.float32)  # (H, W, 3)


def _sample_color(rng: np.random.Generator, avoid: np.ndarray) -> np.ndarray:
    """A random RGB colour that stands out from the colour ``avoid`` (mean abs difference > 70)."""
    color = rng.uniform(0.0, 255.0, size=3)
    for _ in range(16):
        if np.abs(color - avoid).mean() > 70.0:
            break
        color = rng.uniform(0.0, 255.0, size=3)
    else:  # still too close: push every channel to the far end of the range
        color = np.where(avoid < 128.0, rng.uniform(200.0, 255.0, size=3), rng.uniform(0.0, 55.0, size=3))
    return color.astype(np.float32)


def sample_actor(
    label: int, rng: np.random.Generator, num_frames: int, bg_mean: np.ndarray
) -> Track:
    """The actor's track for class ``label``; ``bg_mean`` (3,) is the colour to stand out from.

    Every class makes the same random draws in the same order, so with equal generator states
    the two classes of a pair start from the very same first frame and differ only in motion.
    """
    kind, sign = _MOTION[label]
    t = np.arange(num_frames, dtype=np.float64)  # (T,)
    shape = int(rng.integers(NUM_SHAPES))
    color = _sample_color(rng, bg_mean)
    angle0 = rng.uniform(0.0, 2 * np.pi)
    size0 = rng.uniform(*ACTOR_SIZE)
    phase = rng.uniform(0.0, 1.0)  # position on the circle of the moving quantity
    a, b = rng.uniform(0.0, 1.0, size=2)  # fixed coordinates, mapped into each kind's range below
    trans_speed = rng.uniform(*TRANSLATION_SPEED)
    rot_speed = rng.uniform(*ROTATION_SPEED)
    scale_speed = rng.uniform(*LOG_SCALE_SPEED)
    radius = rng.uniform(*ORBIT_RADIUS)

    const = np.ones_like(t)
    angle, size = angle0 * const, size0 * const
    if kind == "translate_x":
        cx, cy = (phase + sign * trans_speed * t) % 1.0, (0.2 + 0.6 * a) * const
    elif kind == "translate_y":
        cx, cy = (0.2 + 0.6 * a) * const, (phase + sign * trans_speed * t) % 1.0
    elif kind == "rotate":  # rigid rotation about the pivot (px, py); y points down on screen
        turn = sign * rot_speed * t  # (T,)
        theta = 2 * np.pi * phase + turn  # (T,) direction from the pivot to the actor
        px, py = 0.35 + 0.3 * a, 0.35 + 0.3 * b
        cx, cy = px + radius * np.cos(theta), py + radius * np.sin(theta)
        angle = angle0 + turn
    elif kind == "scale":
        lo, hi = LOG_SCALE_RANGE
        cx, cy = (0.3 + 0.4 * a) * const, (0.3 + 0.4 * b) * const
        size = np.exp(lo + ((phase + sign * scale_speed / (hi - lo) * t) % 1.0) * (hi - lo))
    else:  # pragma: no cover - _MOTION is fixed
        raise AssertionError(kind)
    return Track(shape, color, cx, cy, size, angle % (2 * np.pi), wrap=kind.startswith("translate"))


def _sample_distractor(rng: np.random.Generator, num_frames: int, bg_mean: np.ndarray) -> Track:
    """A small disc drifting in a random direction on the torus (uniform position at every frame)."""
    t = np.arange(num_frames, dtype=np.float64)  # (T,)
    color = _sample_color(rng, bg_mean)
    size = rng.uniform(*DISTRACTOR_SIZE)
    x0, y0 = rng.uniform(0.0, 1.0, size=2)
    direction, speed = rng.uniform(0.0, 2 * np.pi), rng.uniform(*DISTRACTOR_SPEED)
    cx = (x0 + speed * np.cos(direction) * t) % 1.0
    cy = (y0 + speed * np.sin(direction) * t) % 1.0
    return Track(-1, color, cx, cy, size * np.ones_like(t), np.zeros_like(t), wrap=True)


def sample_scene(
    class_index: int,
    rng: np.random.Generator,
    num_frames: int = DEFAULT_FRAMES,
    size: int = DEFAULT_SIZE,
) -> Scene:
    """Draw the random content of one clip of class ``class_index``.

    Args:
        class_index: index into ``CLASS_NAMES``.
        rng: the clip's random generator (consumed).
        num_frames: frames T.
        size: frame height and width in pixels (even, for H.264 yuv420p).

    Returns:
        A ``Scene``; ``render_clip`` turns it into frames.
    """
    if not 0 <= class_index < len(CLASS_NAMES):
        raise ValueError(f"class_index must be in [0, {len(CLASS_NAMES)}), got {class_index}")
    if num_frames < 2 or size < 16:
        raise ValueError(f"need at least 2 frames of at least 16x16 pixels, got T={num_frames}, size={size}")
    background = _sample_background(rng, size, size)  # (H, W, 3)
    bg_mean = background.reshape(-1, 3).mean(axis=0)  # (3,)
    actor = sample_actor(class_index, rng, num_frames, bg_mean)
    distractors = tuple(_sample_distractor(rng, num_frames, bg_mean) for _ in range(int(rng.integers(1, 3))))
    return Scene(
        label=class_index,
        height=size,
        width=size,
        num_frames=num_frames,
        actor=actor,
        distractors=distractors,
        background=background,
        noise_sigma=float(rng.uniform(2.0, 8.0)),
        noise_seed=int(rng.integers(2**31)),
    )


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------
def _shape_mask(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Membership of local coordinates (u right, v down, unit box [-0.5, 0.5]^2) in a shape.

    The four actor shapes have no rotational symmetry and their area centroid is off the box
    centre, so rotation is visible and its direction is unambiguous.
    """
    box = (np.abs(u) <= 0.5) & (np.abs(v) <= 0.5)
    if shape == -1:  # disc
        return u * u + v * v <= 0.25
    if shape == 0:  # narrow isosceles triangle (28 degree apex), apex up
        return box & (np.abs(u) <= 0.25 * (v + 0.5))
    if shape == 1:  # L
        return box & ((u <= -0.15) | (v >= 0.15))
    if shape == 2:  # T
        return box & ((v <= -0.2) | (np.abs(u) <= 0.15))
    if shape == 3:  # pac-man, mouth towards +u
        return (u * u + v * v <= 0.25) & ~((u > 0) & (np.abs(v) < 0.75 * u))
    raise ValueError(f"unknown shape {shape}")


def _axis_window(center: float, half: float, length: int, wrap: bool) -> np.ndarray:
    """Pixel indices within ``half`` pixels of ``center`` along one axis (mod ``length`` if wrap)."""
    lo, hi = int(np.floor(center - half)), int(np.ceil(center + half)) + 1
    if wrap:
        return np.arange(length) if hi - lo >= length else np.arange(lo, hi) % length
    return np.arange(max(lo, 0), min(hi, length))


def track_patch(track: Track, t: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where ``track`` covers frame ``t``, computed over its bounding window only (fast).

    Returns:
        rows (h,), cols (w,) pixel indices of the window and its boolean mask (h, w).
    """
    side = track.size[t] * min(height, width)  # pixels
    half = 0.75 * side + 1.0  # the rotated unit box reaches 0.71 * side from the centre
    cx, cy = track.cx[t] * width, track.cy[t] * height  # pixels
    cols = _axis_window(cx, half, width, track.wrap)  # (w,)
    rows = _axis_window(cy, half, height, track.wrap)  # (h,)
    dx = (cols.astype(np.float32) + 0.5)[None, :] - cx  # (1, w)
    dy = (rows.astype(np.float32) + 0.5)[:, None] - cy  # (h, 1)
    if track.wrap:  # shortest offset on the torus
        dx = (dx + width / 2) % width - width / 2
        dy = (dy + height / 2) % height - height / 2
    c, s = np.cos(track.angle[t]), np.sin(track.angle[t])
    u = (c * dx + s * dy) / side  # (h, w): screen offset rotated by -angle into the shape's frame
    v = (-s * dx + c * dy) / side  # (h, w)
    return rows, cols, _shape_mask(track.shape, u, v)


def render_clip(spec: Scene, clutter: bool = True) -> np.ndarray:
    """Frames of a clip.

    Args:
        spec: from ``sample_scene``.
        clutter: draw the textured background, distractors and noise. ``False`` draws the actor
            alone on a flat background of the texture's mean colour (for tests and figures).

    Returns:
        uint8 array (T, H, W, 3).
    """
    h, w, n_t = spec.height, spec.width, spec.num_frames
    bg = spec.background if spec.background is not None else np.full((h, w, 3), 128.0, np.float32)
    if not clutter:
        bg = np.broadcast_to(bg.reshape(-1, 3).mean(axis=0), (h, w, 3))
    # int16 throughout: room for noise beyond [0, 255] before the final clip, and fast.
    video = np.empty((n_t, h, w, 3), dtype=np.int16)  # (T, H, W, 3)
    video[:] = np.rint(bg).astype(np.int16)
    tracks = (spec.distractors if clutter else ()) + (spec.actor,)
    for t in range(n_t):
        for track in tracks:  # later tracks are drawn on top; the actor is always last
            rows, cols, patch = track_patch(track, t, h, w)
            window = video[t][np.ix_(rows, cols)]  # (h, w, 3) copy
            window[patch] = np.rint(track.color).astype(np.int16)
            video[t][np.ix_(rows, cols)] = window
    if clutter and spec.noise_sigma > 0:
        # Uniform integer noise with the requested standard deviation (much faster than Gaussian).
        amp = max(1, int(round(spec.noise_sigma * np.sqrt(3.0))))
        noise_rng = np.random.default_rng(spec.noise_seed)
        video += noise_rng.integers(-amp, amp + 1, size=video.shape, dtype=np.int16)
    return np.clip(video, 0, 255).astype(np.uint8)


def generate_clip(
    class_index: int,
    rng: np.random.Generator,
    num_frames: int = DEFAULT_FRAMES,
    size: int = DEFAULT_SIZE,
    clutter: bool = True,
) -> np.ndarray:
    """One random clip of class ``class_index``: ``render_clip(sample_scene(...))``.

    Pure apart from consuming ``rng``: the same generator state gives the same frames.

    Returns:
        uint8 array (T, H, W, 3) with T = ``num_frames`` and H = W = ``size``.
    """
    return render_clip(sample_scene(class_index, rng, num_frames, size), clutter=clutter)


# ---------------------------------------------------------------------------------------------
# Dataset on disk
# ---------------------------------------------------------------------------------------------
SPLITS: tuple[str, ...] = ("train", "val")
META_FILE = "toy_meta.json"
GENERATOR_VERSION = 2  # bump when the generator's output changes


def clip_rng(seed: int, split: str, class_index: int, index: int) -> np.random.Generator:
    """The generator of one clip; independent of every other clip and of the worker count."""
    return np.random.default_rng([GENERATOR_VERSION, seed, SPLITS.index(split), class_index, index])


def _video_relpath(split: str, class_index: int, index: int) -> str:
    name = CLASS_NAMES[class_index]
    return f"videos/{split}/{name}/{name}_{index:04d}.mp4"


def _write_one(job: tuple[str, str, int, int, int, int, int, float]) -> str:
    """Worker: generate and encode one clip."""
    from sfvideo.data.encode import write_video

    out_dir, split, class_index, index, seed, num_frames, size, fps = job
    rel = _video_relpath(split, class_index, index)
    frames = generate_clip(class_index, clip_rng(seed, split, class_index, index), num_frames, size)
    write_video(Path(out_dir) / rel, frames, fps=fps, gop=12)
    return rel


@dataclass(frozen=True)
class ToyDataset:
    """Where ``make_toy_dataset`` put things.

    Attributes:
        root: the output folder.
        lists: split name -> list file (``train.txt``, ``val.txt``).
        classes: the ``classes.txt`` file.
        num_videos: split name -> number of videos.
        generated: ``False`` when an identical dataset was already there and was kept.
    """

    root: Path
    lists: dict[str, Path]
    classes: Path
    num_videos: dict[str, int]
    generated: bool


def _list_lines(split: str, per_class: int) -> list[str]:
    return [f"{_video_relpath(split, c, i)} {c}" for c in range(len(CLASS_NAMES)) for i in range(per_class)]


def _write_lines(path: Path, lines: Sequence[str]) -> None:
    atomic_write_text(path, "".join(f"{line}\n" for line in lines))


def make_toy_dataset(
    out_dir: str | os.PathLike,
    seed: int = 0,
    train_per_class: int | None = None,
    val_per_class: int | None = None,
    num_frames: int | None = None,
    size: int | None = None,
    fps: float | None = None,
    workers: int | None = None,
    force: bool = False,
) -> ToyDataset:
    """Write the synthetic dataset: mp4 videos plus ``train.txt``, ``val.txt``, ``classes.txt``.

    Layout::

        out_dir/classes.txt            one class name per line, in label order
        out_dir/train.txt, val.txt     "videos/<split>/<class>/<class>_<i>.mp4 <label>" lines
        out_dir/videos/...             H.264 mp4 files
        out_dir/toy_meta.json          the generation parameters

    If ``out_dir`` already holds a dataset made with the same parameters (same ``toy_meta.json``
    and every listed video present) it is kept, unless ``force``. Videos of another, larger
    dataset in the same folder are left in place, unlisted.

    Args:
        out_dir: output folder (created).
        seed: dataset seed; the same seed gives byte-identical lists and identical decoded frames.
        train_per_class, val_per_class: videos per class in each split (default
            ``DEFAULT_TRAIN_PER_CLASS``, ``DEFAULT_VAL_PER_CLASS``).
        num_frames: frames per video (default ``DEFAULT_FRAMES``).
        size: frame height and width in pixels, even (default ``DEFAULT_SIZE``).
        fps: frame rate written into the files (default ``DEFAULT_FPS``).
        (``None`` means the default, so callers can pass optional settings straight through.)
        workers: encoding threads (default: the CPU count); 0 or 1 encodes one video at a time.
        force: regenerate even if an identical dataset exists.

    Returns:
        A ``ToyDataset`` with the paths written.
    """
    per_class, num_frames, size, fps = _settings(train_per_class, val_per_class, num_frames, size, fps)
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    meta = _generation_meta(seed, per_class, num_frames, size, fps)
    lines = {split: _list_lines(split, per_class[split]) for split in SPLITS}
    lists = {split: root / f"{split}.txt" for split in SPLITS}
    result = ToyDataset(root, lists, root / "classes.txt", {s: len(v) for s, v in lines.items()}, True)
    meta_path = root / META_FILE
    if not force and _is_complete(root, meta_path, meta, lines):
        return dataclasses.replace(result, generated=False)
    meta_path.unlink(missing_ok=True)  # an interrupted run must not look complete
    jobs = [(str(root), split, c, i, seed, num_frames, size, float(fps))
            for split in SPLITS for c in range(len(CLASS_NAMES)) for i in range(per_class[split])]
    _encode_all(jobs, workers)
    _write_lines(result.classes, CLASS_NAMES)
    for split in SPLITS:
        _write_lines(lists[split], lines[split])
    _write_lines(meta_path, [json.dumps(meta, indent=1, sort_keys=True)])  # last: marks the dataset complete
    return result


def _settings(train_per_class: int | None, val_per_class: int | None, num_frames: int | None, size: int | None,
              fps: float | None) -> tuple[dict[str, int], int, int, float]:
    """``make_toy_dataset``'s settings with the defaults filled in: (videos per class by split,
    frames, size, fps). Raises ValueError for an odd size or a negative count."""
    per_class = {"train": DEFAULT_TRAIN_PER_CLASS if train_per_class is None else train_per_class,
                 "val": DEFAULT_VAL_PER_CLASS if val_per_class is None else val_per_class}
    size = DEFAULT_SIZE if size is None else size
    if size % 2:
        raise ValueError(f"size must be even for H.264 (yuv420p), got {size}")
    if min(per_class.values()) < 0:
        raise ValueError("videos per class must be non-negative")
    return (per_class, DEFAULT_FRAMES if num_frames is None else num_frames, size,
            DEFAULT_FPS if fps is None else fps)


def _generation_meta(seed: int, per_class: dict[str, int], num_frames: int, size: int, fps: float) -> dict:
    """The parameters recorded in ``toy_meta.json`` (equal parameters: the dataset is reused)."""
    return {
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "train_per_class": per_class["train"],
        "val_per_class": per_class["val"],
        "num_frames": num_frames,
        "size": size,
        "fps": fps,
        "classes": list(CLASS_NAMES),
        "motion_only_classes": list(MOTION_ONLY_CLASSES),
    }


def _is_complete(root: Path, meta_path: Path, meta: dict, lines: dict[str, list[str]]) -> bool:
    """True when ``root`` holds a finished dataset of the same parameters with every video present."""
    if not meta_path.is_file() or not all((root / f"{split}.txt").is_file() for split in lines):
        return False
    try:
        same = json.loads(meta_path.read_text()) == meta
    except ValueError:
        return False
    return same and all((root / line.rsplit(" ", 1)[0]).is_file() for v in lines.values() for line in v)


def _encode_all(jobs: list[tuple], workers: int | None) -> None:
    """Generate and encode every job, on ``workers`` threads (default: the CPU count)."""
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers <= 1 or len(jobs) < 8:
        for job in jobs:
            _write_one(job)
        return
    # Threads, not processes: x264 encoding and the large numpy operations release the GIL, so
    # threads keep pace with a process pool while avoiding re-importing the package (torch, via
    # sfvideo.data) in every worker and fork-after-torch hazards.
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(_write_one, jobs))
