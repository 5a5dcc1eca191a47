"""Spatial transforms on uint8 clips; every random choice is made once per clip so all frames
of a clip get the same crop, flip, RandAugment ops and erasing box.

Speed: the crop region is chosen in the original frame and cut *before* resizing, and the whole
clip is resized in one ``F.interpolate`` call. Resizing runs on the uint8 tensor: PyTorch's
antialiased bilinear kernel has a uint8 path about 10x faster than on float, and agrees with
the float result to within one grey level.

Clips stay uint8 until they reach the device (a quarter of the bytes through worker IPC,
collation and pinned host-to-device copies): the transforms return uint8, and the training and
test loops call ``batch_to_device`` (normalise there, then mixup/cutmix). ``normalize_clip`` is
the one public function that turns uint8 clips into the model's normalised float input.

Shapes: decoded frames (T, H, W, C) uint8; a clip during augmentation (T, C, H, W) uint8;
a dataset clip (C, T, H, W) uint8; test views (V, C, T, H, W) uint8; a model input clip
(B, C, T, H, W) float32, normalised.

Memory layout: training clips keep the channels-innermost memory ((T, H, W, C), "channels
last") that decoding, resizing and the RandAugment ops work in: a training clip is a
(C, T, H, W) *view* of it, ``stack_clips`` batches such clips without reordering their bytes, and
the model's per-frame convolution reads exactly that layout. Shapes and values are the same as
planar tensors; only ``Tensor.view`` on them needs ``reshape`` (or ``contiguous()``) instead.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .sampling import CropBox, random_resized_box, scale_jitter_box, spatial_crop_boxes


# ----------------------------------------------------------------------------- basic ops
def crop_resize(clip: torch.Tensor, box: CropBox, size: tuple[int, int]) -> torch.Tensor:
    """Cut ``box`` from every frame, then resize the region to ``size`` (h, w).

    Args:
        clip: (T, C, H, W) uint8.
    Returns:
        (T, C, h, w) uint8.
    """
    region = clip[:, :, box.top : box.top + box.height, box.left : box.left + box.width]  # (T, C, bh, bw)
    if (box.height, box.width) == tuple(size):
        return region
    return F.interpolate(region, size=size, mode="bilinear", align_corners=False, antialias=True)  # (T, C, h, w)


def resize_short_side(clip: torch.Tensor, size: int) -> torch.Tensor:
    """Resize (T, C, H, W) uint8 so the short side is ``size``, keeping the aspect ratio."""
    h, w = clip.shape[-2:]
    if min(h, w) == size:
        return clip
    if h <= w:
        new = (size, max(size, round(w * size / h)))
    else:
        new = (max(size, round(h * size / w)), size)
    return F.interpolate(clip, size=new, mode="bilinear", align_corners=False, antialias=True)  # (T, C, h', w')


def stack_clips(clips: Sequence[torch.Tensor]) -> torch.Tensor:
    """Stack same-shaped clips on a new first axis, keeping the first clip's memory layout.

    ``torch.stack`` writes a planar result, which for channels-last clips means reordering every
    byte; here the output has the first clip's dimension order in memory, so each clip is one
    sequential copy. Inside a DataLoader worker the output lives in shared memory (as the default
    collate does), so sending the batch to the main process copies nothing.

    Args:
        clips: B tensors of one shape, e.g. (C, T, H, W) or (K, C, T, H, W), any strides.
    Returns:
        (B, *shape), dimension ``i + 1`` ordered in memory as dimension ``i`` of ``clips[0]``.
    """
    first = clips[0]
    order = sorted(range(first.ndim), key=lambda d: (-first.stride(d), d))  # outermost first
    shape = (len(clips),) + tuple(first.shape[d] for d in order)
    numel = len(clips) * first.numel()
    if torch.utils.data.get_worker_info() is not None:
        storage = first.untyped_storage()._new_shared(numel * first.element_size())
        out = torch.empty(0, dtype=first.dtype).set_(storage).view(shape)
    else:
        out = torch.empty(shape, dtype=first.dtype)
    for i, clip in enumerate(clips):
        out[i].copy_(clip.permute(order))
    inverse = [0] + [1 + order.index(d) for d in range(first.ndim)]
    return out.permute(inverse)  # (B, *clip shape)


def normalize_clip(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 clips (..., C, T, H, W) -> float32 ``(x / 255 - mean) / std`` on ``x``'s device.

    The public way to get model inputs from ``build_dataset`` items: a clip (C, T, H, W), test
    views (V, C, T, H, W) or a batch (B, C, T, H, W) all work; the channel axis is the 4th from last.

    Raises:
        TypeError: ``x`` is not uint8 (floats are taken to be normalised already: see ``batch_to_device``).
    """
    if x.dtype != torch.uint8:
        raise TypeError(f"normalize_clip expects uint8 clips (0-255), got {x.dtype}")
    c = x.shape[-4]
    m = torch.tensor(mean, dtype=torch.float32, device=x.device).view(c, 1, 1, 1) * 255.0
    inv_s = 1.0 / (torch.tensor(std, dtype=torch.float32, device=x.device).view(c, 1, 1, 1) * 255.0)
    return x.float().sub_(m).mul_(inv_s)  # (..., C, T, H, W)


def batch_to_device(video: torch.Tensor, label: torch.Tensor | None, device: torch.device | str,
                    mean: Sequence[float] | None, std: Sequence[float] | None
                    ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Move a loader batch to ``device`` and normalise it there.

    Args:
        video: (B, C, T, H, W) uint8 clips, (B, K, C, T, H, W) uint8 (``DATA.CLIPS_PER_DECODE``
            K > 1: flattened to (B*K, ...) clip-major per video) or test views (B*V, C, T, H, W);
            a float tensor is taken as already normalised (custom datasets) and only moved.
        label: (B,) labels, repeated K times alongside the flattened clips; ``None`` to skip.

    Returns:
        clips (B', C, T, H, W) float32 normalised on ``device``, labels (B',) on ``device``.
    """
    if video.ndim == 6:  # (B, K, C, T, H, W): several clips per decoded video
        k = video.shape[1]
        video = video.flatten(0, 1)  # (B*K, C, T, H, W)
        if label is not None:
            label = label.repeat_interleave(k)  # (B*K,)
    video = video.to(device, non_blocking=True)
    if video.dtype == torch.uint8:
        if mean is None or std is None:
            raise ValueError("uint8 clips need the mean and std (DATA.MEAN, DATA.STD) to be normalised")
        video = normalize_clip(video, mean, std)
    if label is not None:
        label = label.to(device, non_blocking=True)
    return video, label


# ----------------------------------------------------------------------------- RandAugment
_FILL = [124, 116, 104]  # ImageNet mean in 0-255, the fill for geometric ops


def _signed(v: float, rng: random.Random) -> float:
    return v if rng.random() < 0.5 else -v


def _enhance(f: float, rng: random.Random) -> float:
    return 1.0 + _signed(0.9 * f, rng)


# The ops below match torchvision's uint8 kernels to one grey level (checked in
# tests/test_data_transforms.py) but are written for whole clips in the channels-last layout the
# crop leaves them in ((T, H, W, C) in memory), where a few patterns are several times faster than
# torchvision's formulation on a single core (measured by ``tools/benchmark_loader.py --ops``):
# float -> int16 -> uint8 instead of float -> uint8; comparisons written into a uint8 buffer
# instead of bool; reductions over H first (rows are contiguous) instead of over (H, W); per-channel
# values tiled along the contiguous (W*C) row instead of broadcast along the 3-wide channel axis;
# PIL's C histogram and lookup table per frame for Equalize.
def _pixels(clip: torch.Tensor) -> torch.Tensor:
    """(T, C, H, W) -> the (T, H, W, C) view of its channels-last memory (copied only if needed)."""
    return clip.contiguous(memory_format=torch.channels_last).permute(0, 2, 3, 1)


def _as_clip(pixels: torch.Tensor) -> torch.Tensor:
    """(T, H, W, C) -> (T, C, H, W) view."""
    return pixels.permute(0, 3, 1, 2)


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Float in any range -> uint8, clamped to 0-255 and truncated (torchvision's ``_blend`` rule).

    Through int16: PyTorch's float -> int16 conversion is vectorised, float -> uint8 is not."""
    return x.clamp_(0, 255).to(torch.int16).to(torch.uint8)


def _per_channel(values: torch.Tensor, width: int) -> torch.Tensor:
    """(T, C) -> (T, 1, W*C): one value per frame and channel, tiled along a (W*C) pixel row, so
    it broadcasts over H with contiguous rows (a broadcast along the 3-wide C axis is not vectorised)."""
    t, c = values.shape
    return values.view(t, 1, 1, c).expand(t, 1, width, c).reshape(t, 1, width * c)


def _blend(x: torch.Tensor, other: torch.Tensor | None, f: float) -> torch.Tensor:
    """``clamp(f * x + (1 - f) * other)`` truncated to uint8, as torchvision's ``_blend``; ``x``
    float, overwritten; ``other`` broadcasts to it (None: black)."""
    out = x.mul_(f)
    if other is not None:
        out.add_(other, alpha=1.0 - f)
    return _to_uint8(out)


_LUMA = (0.2989, 0.587, 0.114)  # ITU-R 601, torchvision's weights


def _luma(px: torch.Tensor) -> torch.Tensor:
    """(T, H, W, C) float -> (T, H, W, 1) luma, floored (torchvision's uint8 rule)."""
    return (px @ torch.tensor(_LUMA, dtype=torch.float32).view(3, 1)).floor_()


def _brightness(clip: torch.Tensor, f: float) -> torch.Tensor:
    """Blend with black."""
    return _blend(clip.float(), None, f)


def _color(clip: torch.Tensor, f: float) -> torch.Tensor:
    """Blend each pixel with its own grey (saturation)."""
    px = _pixels(clip).float()  # (T, H, W, C)
    return _as_clip(_blend(px, _luma(px).expand_as(px), f))  # grey (T, H, W, 1)


def _contrast(clip: torch.Tensor, f: float) -> torch.Tensor:
    """Blend with each frame's mean luma."""
    px = _pixels(clip).float()  # (T, H, W, C)
    mean = _luma(px).mean(dim=(1, 2, 3))  # (T,)
    return _as_clip(_blend(px, mean.view(-1, 1, 1, 1), f))


def _plane_extrema(px: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(T, H, W, C) uint8 -> per frame and channel (min, max), each (T, C): over H first."""
    t, h, w, c = px.shape
    rows = px.reshape(t, h, w * c)
    lo = rows.amin(dim=1).view(t, w, c).amin(dim=1)  # (T, C)
    hi = rows.amax(dim=1).view(t, w, c).amax(dim=1)
    return lo, hi


def _autocontrast(clip: torch.Tensor) -> torch.Tensor:
    """Stretch each frame's channels to 0-255 (flat channels are left as they are)."""
    px = _pixels(clip)  # (T, H, W, C)
    t, h, w, c = px.shape
    lo, hi = (v.float() for v in _plane_extrema(px))  # (T, C)
    flat = hi == lo
    scale = torch.where(flat, torch.ones_like(hi), 255.0 / (hi - lo).clamp_(min=1.0))
    lo = torch.where(flat, torch.zeros_like(lo), lo)
    rows = px.reshape(t, h, w * c).float()  # (T, H, W*C)
    out = rows.sub_(_per_channel(lo, w)).mul_(_per_channel(scale, w))
    return _as_clip(_to_uint8(out).view(t, h, w, c))


def _equalize_luts(hist: np.ndarray) -> np.ndarray:
    """Histograms (..., 256) -> PIL's equalisation lookup tables (..., 256) uint8 (torchvision's rule:
    a channel with one value, or too few pixels off its top value, is left unchanged)."""
    total = hist.sum(-1, keepdims=True)
    top = 255 - np.argmax(hist[..., ::-1] > 0, axis=-1)[..., None]  # the highest value present
    step = (total - np.take_along_axis(hist, top, -1)) // 255  # (..., 1)
    safe = np.maximum(step, 1)
    lut = np.empty(hist.shape, np.int64)
    lut[..., 0] = 0
    lut[..., 1:] = (np.cumsum(hist, -1)[..., :-1] + safe // 2) // safe
    identity = np.broadcast_to(np.arange(256), hist.shape)
    return np.where(step == 0, identity, np.clip(lut, 0, 255)).astype(np.uint8)


def _equalize(clip: torch.Tensor) -> torch.Tensor:
    """Histogram equalisation of each frame's channels (PIL's lookup table, as torchvision)."""
    from PIL import Image

    px = _pixels(clip).numpy()  # (T, H, W, C)
    t, h, w, c = px.shape
    if c != 3:
        raise ValueError(f"Equalize expects RGB clips, got {c} channels")
    frames = [Image.frombuffer("RGB", (w, h), px[i], "raw", "RGB", 0, 1) for i in range(t)]
    hist = np.array([f.histogram() for f in frames], np.int64).reshape(t, c, 256)  # PIL's C loop
    luts = _equalize_luts(hist)  # (T, C, 256)
    out = np.stack([np.asarray(f.point(luts[i].ravel().tolist())) for i, f in enumerate(frames)])  # (T, H, W, C)
    return _as_clip(torch.from_numpy(out))


def _solarize(clip: torch.Tensor, threshold: int) -> torch.Tensor:
    """Invert pixels >= threshold: ``255 - x`` is ``x ^ 255`` on uint8; the mask 0/1 times 255."""
    mask = torch.ge(clip, threshold, out=torch.empty_like(clip))  # uint8 0/1 (a bool result is ~20x slower)
    return clip ^ mask.mul_(255)


def _solarize_add(clip: torch.Tensor, add: int) -> torch.Tensor:
    """Add ``add`` to pixels below 128 (``add`` <= 127, so nothing saturates)."""
    if not 0 <= add <= 127:
        raise ValueError(f"SolarizeAdd amount must be in 0-127, got {add}")
    below = torch.lt(clip, 128, out=torch.empty_like(clip))  # uint8 0/1
    return clip + below.mul_(add)


def _sharpness(clip: torch.Tensor, f: float) -> torch.Tensor:
    """Blend with the 3x3 smoothed clip (kernel 1s around a 5, / 13, rounded); border pixels kept."""
    h, w = clip.shape[-2:]
    if h <= 2 or w <= 2:
        return clip
    x = _pixels(clip).to(torch.int16)  # (T, H, W, C); a 3x3 sum of uint8 fits easily
    rows = x[:, :, :-2] + x[:, :, 1:-1]
    rows += x[:, :, 2:]  # (T, H, W-2, C)
    box = rows[:, :-2] + rows[:, 1:-1]
    box += rows[:, 2:]  # (T, H-2, W-2, C)
    centre = x[:, 1:-1, 1:-1]
    box.add_(centre, alpha=4)
    blurred = box.float().mul_(1.0 / 13.0).round_()  # (T, H-2, W-2, C)
    # x + (1 - f) * (blurred - x) in torchvision's order (it decides which way ties truncate),
    # written back into the int16 copy's interior
    inner = centre.float()
    centre.copy_(inner.add_(blurred.sub_(inner), alpha=1.0 - f).clamp_(0, 255))  # truncates
    return _as_clip(x.to(torch.uint8))


def _translate(clip: torch.Tensor, dx: int, dy: int, fill: Sequence[int] = _FILL) -> torch.Tensor:
    """Shift by whole pixels (right/down positive), ``fill`` where nothing maps."""
    px = _pixels(clip)  # (T, H, W, C)
    t, h, w, c = px.shape
    out = torch.empty_like(px)
    colour = torch.tensor(list(fill)[:c], dtype=clip.dtype)  # (C,)
    if abs(dx) >= w or abs(dy) >= h:
        out[:] = colour
        return _as_clip(out)
    out[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = \
        px[:, max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)]
    # only the uncovered strips get the fill
    out[:, : max(dy, 0)] = colour
    out[:, h + min(dy, 0) :] = colour
    out[:, :, : max(dx, 0)] = colour
    out[:, :, w + min(dx, 0) :] = colour
    return _as_clip(out)


def affine_nearest(clip: torch.Tensor, angle: float = 0.0, shear: tuple[float, float] = (0.0, 0.0),
                   translate: tuple[float, float] = (0.0, 0.0), fill: Sequence[int] = _FILL) -> torch.Tensor:
    """Rotate (degrees, counter-clockwise), shear (degrees along x, y) and translate (pixels)
    about the centre, nearest neighbour, the same map for every frame.

    The source index of each output pixel is computed once on the (H, W) grid and gathered from
    the uint8 clip (one extra pixel holds ``fill`` for points mapped from outside the frame); this
    is several times faster than a float ``grid_sample`` over all frames.

    Args:
        clip: (T, C, H, W) uint8.
    Returns:
        (T, C, H, W) uint8.
    """
    t, c, h, w = clip.shape
    a = math.radians(angle)
    rot = torch.tensor([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]], dtype=torch.float64)
    shr = torch.tensor([[1.0, math.tan(math.radians(shear[0]))], [math.tan(math.radians(shear[1])), 1.0]], dtype=torch.float64)
    inv = torch.linalg.inv(rot @ shr)  # output offset -> source offset, (2, 2)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    u, v = xs - cx - translate[0], ys - cy - translate[1]  # (H, W)
    src_x = torch.round(inv[0, 0] * u + inv[0, 1] * v + cx).long()  # (H, W)
    src_y = torch.round(inv[1, 0] * u + inv[1, 1] * v + cy).long()
    valid = (src_x >= 0) & (src_x < w) & (src_y >= 0) & (src_y < h)
    index = torch.where(valid, src_y * w + src_x, h * w).view(-1, 1)  # (H*W, 1); h*w is the fill pixel
    index = (index * c + torch.arange(c)).flatten()  # (H*W*C,) byte offsets within a frame
    pixels = _pixels(clip).reshape(t, h * w * c)  # (T, H*W*C)
    colour = torch.tensor(list(fill)[:c], dtype=clip.dtype).repeat(t, 1)  # (T, C)
    padded = torch.cat([pixels, colour], dim=1).numpy()  # (T, H*W*C + C)
    out = torch.from_numpy(np.take(padded, index.numpy(), axis=1))  # (T, H*W*C); numpy's byte gather is 2x torch's
    return out.view(t, h, w, c).permute(0, 3, 1, 2)  # (T, C, H, W)


# Each op: (clip (T, C, H, W) uint8, magnitude fraction in [0, 1], rng) -> clip.
_OPS: dict[str, Callable[[torch.Tensor, float, random.Random], torch.Tensor]] = {
    "AutoContrast": lambda x, f, r: _autocontrast(x),
    "Equalize": lambda x, f, r: _equalize(x),
    "Invert": lambda x, f, r: 255 - x,
    "Rotate": lambda x, f, r: affine_nearest(x, angle=_signed(30.0 * f, r)),
    "Posterize": lambda x, f, r: x & (0xFF << (8 - max(1, 8 - int(4 * f))) & 0xFF),
    "Solarize": lambda x, f, r: _solarize(x, max(0, 256 - int(256 * f))),
    "SolarizeAdd": lambda x, f, r: _solarize_add(x, int(110 * f)),
    "Color": lambda x, f, r: _color(x, _enhance(f, r)),
    "Contrast": lambda x, f, r: _contrast(x, _enhance(f, r)),
    "Brightness": lambda x, f, r: _brightness(x, _enhance(f, r)),
    "Sharpness": lambda x, f, r: _sharpness(x, _enhance(f, r)),
    "ShearX": lambda x, f, r: affine_nearest(x, shear=(math.degrees(math.atan(_signed(0.3 * f, r))), 0.0)),
    "ShearY": lambda x, f, r: affine_nearest(x, shear=(0.0, math.degrees(math.atan(_signed(0.3 * f, r))))),
    "TranslateX": lambda x, f, r: _translate(x, round(_signed(0.45 * f, r) * x.shape[-1]), 0),
    "TranslateY": lambda x, f, r: _translate(x, 0, round(_signed(0.45 * f, r) * x.shape[-2])),
}
RAND_AUGMENT_OPS = tuple(_OPS)


@dataclass(frozen=True)
class RandAugment:
    """RandAugment (Cubuk et al.) on a whole clip: the same ops and magnitudes on every frame.

    Attributes:
        num_ops: ops drawn (with replacement) per clip.
        magnitude: 0..10 (timm's scale).
        magnitude_std: std of Gaussian noise on the magnitude per op (0: fixed).
        prob: probability that each drawn op is applied.
    """

    num_ops: int = 2
    magnitude: float = 9.0
    magnitude_std: float = 0.0
    prob: float = 0.5

    def __call__(self, clip: torch.Tensor, rng: random.Random) -> torch.Tensor:
        """(T, C, H, W) uint8 -> (T, C, H, W) uint8."""
        for _ in range(self.num_ops):
            name = rng.choice(RAND_AUGMENT_OPS)
            if rng.random() > self.prob:
                continue
            m = self.magnitude + (rng.gauss(0.0, self.magnitude_std) if self.magnitude_std > 0 else 0.0)
            clip = _OPS[name](clip, min(max(m, 0.0), 10.0) / 10.0, rng)
        return clip


def parse_rand_augment(spec: str) -> RandAugment | None:
    """Parse a timm-style spec ``rand-m7-n4[-mstd0.5][-p0.5]``; ``""`` gives ``None``.

    Raises:
        ValueError: the spec does not start with ``rand`` or has an unknown part.
    """
    if not spec:
        return None
    parts = spec.split("-")
    if parts[0] != "rand":
        raise ValueError(f"RandAugment spec must start with 'rand', got {spec!r} (e.g. 'rand-m7-n4')")
    kw: dict[str, float] = {}
    for part in parts[1:]:
        m = re.fullmatch(r"(mstd|m|n|p)([0-9.]+)", part)
        if not m:
            raise ValueError(f"unknown RandAugment part {part!r} in {spec!r}; expected m<mag>, n<ops>, mstd<std>, p<prob>")
        key, value = m.groups()
        kw[{"m": "magnitude", "n": "num_ops", "mstd": "magnitude_std", "p": "prob"}[key]] = float(value)
    if "num_ops" in kw:
        kw["num_ops"] = int(kw["num_ops"])
    return RandAugment(**kw)


# ----------------------------------------------------------------------------- erasing
def random_erase_box(height: int, width: int, rng: random.Random,
                     area_range: tuple[float, float] = (0.02, 1 / 3),
                     aspect_range: tuple[float, float] = (0.3, 3.3)) -> CropBox | None:
    """A random box for erasing (timm's ranges), or ``None`` when no box fits in 10 tries."""
    for _ in range(10):
        target = height * width * rng.uniform(*area_range)
        aspect = math.exp(rng.uniform(math.log(aspect_range[0]), math.log(aspect_range[1])))
        h, w = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if 0 < h < height and 0 < w < width:
            return CropBox(rng.randint(0, height - h), rng.randint(0, width - w), h, w)
    return None


def erase(clip: torch.Tensor, box: CropBox, generator: torch.Generator | None = None,
          mean: Sequence[float] = (0.0, 0.0, 0.0), std: Sequence[float] = (1.0, 1.0, 1.0)) -> torch.Tensor:
    """Fill ``box`` of a (C, T, H, W) clip with Gaussian noise, the same on every frame.

    On a normalised float clip the noise is N(0, 1) (timm's per-pixel mode); on a uint8 clip it is
    the same noise in pixel units, ``255 * (mean + std * N(0, 1))`` rounded and clipped to 0-255,
    so that after normalisation it matches the float version wherever it is not clipped.
    """
    c = clip.shape[0]
    noise = torch.randn((c, 1, box.height, box.width), generator=generator)  # (C, 1, h, w)
    if clip.dtype == torch.uint8:
        m = torch.tensor(mean, dtype=torch.float32).view(c, 1, 1, 1)
        s = torch.tensor(std, dtype=torch.float32).view(c, 1, 1, 1)
        noise = (noise.mul_(s).add_(m).mul_(255.0)).round_().clamp_(0, 255).to(torch.uint8)
    clip[:, :, box.top : box.top + box.height, box.left : box.left + box.width] = noise.to(clip.dtype)
    return clip


# ----------------------------------------------------------------------------- pipelines
def _shares_memory(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


@dataclass(frozen=True)
class TrainTransform:
    """Training augmentation: crop (scale jitter or random resized), flip, RandAugment,
    random erasing; ``mean``/``std`` only shape the erasing noise (normalisation happens on the
    device, see ``batch_to_device``).

    Call with decoded frames (T, H, W, C) uint8 and an RNG; returns (C, T, S, S) uint8, a view
    of channels-last memory it owns (see the module's note on layout).
    """

    crop_size: int = 224
    jitter_scales: tuple[int, int] = (256, 320)
    random_resized_crop: bool = False
    area_range: tuple[float, float] = (0.08, 1.0)
    aspect_range: tuple[float, float] = (0.75, 4 / 3)
    flip: bool = True
    rand_augment: RandAugment | None = None
    erase_prob: float = 0.0
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    def __call__(self, frames: torch.Tensor, rng: random.Random) -> torch.Tensor:
        clip = frames.permute(0, 3, 1, 2)  # (T, C, H, W)
        h, w = clip.shape[-2:]
        if self.random_resized_crop:
            box = random_resized_box(h, w, self.area_range, self.aspect_range, rng)
        else:
            short = rng.randint(self.jitter_scales[0], self.jitter_scales[1])
            box = scale_jitter_box(h, w, short, self.crop_size, rng)
        clip = crop_resize(clip, box, (self.crop_size, self.crop_size))  # (T, C, S, S)
        if self.flip and rng.random() < 0.5:
            clip = clip.flip(-1)
        if self.rand_augment is not None:
            clip = self.rand_augment(clip, rng)
        if _shares_memory(clip, frames):  # no op copied it: erasing must not write into the frames
            clip = clip.clone(memory_format=torch.channels_last)
        out = clip.contiguous(memory_format=torch.channels_last).permute(1, 0, 2, 3)  # (C, T, S, S) uint8
        if self.erase_prob > 0 and rng.random() < self.erase_prob:
            box = random_erase_box(self.crop_size, self.crop_size, rng)
            if box is not None:
                gen = torch.Generator().manual_seed(rng.getrandbits(62))
                out = erase(out, box, gen, self.mean, self.std)
        return out


@dataclass(frozen=True)
class EvalTransform:
    """Test views of one clip: short side to ``crop_size``, then 1 or 3 crops along the long side.

    Call with frames (T, H, W, C) uint8; returns (num_crops, C, T, S, S) uint8 (``mean``/``std``
    are kept for users of the transform; normalise with ``normalize_clip``).
    """

    crop_size: int = 224
    num_crops: int = 3
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        clip = resize_short_side(frames.permute(0, 3, 1, 2), self.crop_size)  # (T, C, H', W')
        boxes = spatial_crop_boxes(clip.shape[-2], clip.shape[-1], self.crop_size, self.num_crops)
        views = [crop_resize(clip, b, (self.crop_size, self.crop_size)).permute(1, 0, 2, 3) for b in boxes]
        return torch.stack(views)  # (num_crops, C, T, S, S) uint8


# ----------------------------------------------------------------------------- mixup / cutmix
def smooth_one_hot(labels: torch.Tensor, num_classes: int, smoothing: float) -> torch.Tensor:
    """(B,) int -> (B, K) float: ``1 - smoothing + smoothing / K`` on the label, ``smoothing / K`` elsewhere."""
    off = smoothing / num_classes
    out = torch.full((labels.shape[0], num_classes), off, dtype=torch.float32, device=labels.device)
    return out.scatter_(1, labels.long().view(-1, 1), 1.0 - smoothing + off)


def cutmix_box(height: int, width: int, lam: float, rng: random.Random) -> CropBox:
    """A box of area about ``(1 - lam)`` of the frame, centred at a uniform random point (clipped)."""
    ratio = math.sqrt(1.0 - lam)
    bh, bw = int(height * ratio), int(width * ratio)
    cy, cx = rng.randint(0, height - 1), rng.randint(0, width - 1)
    top, bottom = max(cy - bh // 2, 0), min(cy + bh // 2, height)
    left, right = max(cx - bw // 2, 0), min(cx + bw // 2, width)
    return CropBox(top, left, bottom - top, right - left)


class MixupCutmix:
    """Batch-level Mixup / CutMix with label smoothing.

    ``(clips (B, C, T, H, W), labels (B,)) -> (mixed clips, soft targets (B, K))``. Each sample is
    mixed with the batch reversed; CutMix uses the same box on every frame and corrects ``lam``
    to the box's actual area. With both alphas 0 (or when the ``prob`` draw fails) only label
    smoothing is applied, so the loop can always use soft-target cross-entropy.
    """

    def __init__(self, num_classes: int, mixup_alpha: float = 0.8, cutmix_alpha: float = 1.0,
                 prob: float = 1.0, switch_prob: float = 0.5, label_smoothing: float = 0.1,
                 seed: int | None = None):
        self.num_classes = num_classes
        self.mixup_alpha, self.cutmix_alpha = mixup_alpha, cutmix_alpha
        self.prob, self.switch_prob, self.label_smoothing = prob, switch_prob, label_smoothing
        self.rng = random.Random(seed)

    def _beta(self, alpha: float) -> float:
        return self.rng.betavariate(alpha, alpha)

    def __call__(self, clips: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        targets = smooth_one_hot(labels, self.num_classes, self.label_smoothing)  # (B, K)
        use_mix, use_cut = self.mixup_alpha > 0, self.cutmix_alpha > 0
        if not (use_mix or use_cut) or self.rng.random() >= self.prob or clips.shape[0] < 2:
            return clips, targets
        cut = use_cut and (not use_mix or self.rng.random() < self.switch_prob)
        lam = self._beta(self.cutmix_alpha if cut else self.mixup_alpha)
        flipped = clips.flip(0)  # (B, C, T, H, W)
        if cut:
            h, w = clips.shape[-2:]
            box = cutmix_box(h, w, lam, self.rng)
            clips = clips.clone()
            clips[..., box.top : box.top + box.height, box.left : box.left + box.width] = flipped[
                ..., box.top : box.top + box.height, box.left : box.left + box.width
            ]
            lam = 1.0 - box.height * box.width / (h * w)
        else:
            clips = clips * lam + flipped * (1.0 - lam)
        return clips, targets * lam + targets.flip(0) * (1.0 - lam)
