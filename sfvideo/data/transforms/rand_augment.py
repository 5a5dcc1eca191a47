"""RandAugment (Cubuk et al.) on whole clips: fifteen ops on uint8 (T, C, H, W) clips, each
applying one random choice to every frame.

The ops match torchvision's uint8 kernels to one grey level (checked in
tests/test_data_transforms_rand_augment.py) but are written for whole clips in the channels-last
layout the crop leaves them in ((T, H, W, C) in memory), with patterns that run several times
faster than torchvision's formulation on a single core: float -> int16 -> uint8 instead of
float -> uint8; comparisons written into a uint8 buffer instead of bool; reductions over H first
(rows are contiguous) instead of over (H, W); per-channel values tiled along the contiguous (W*C)
row instead of broadcast along the 3-wide channel axis; PIL's C histogram and lookup table per
frame for Equalize.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from ...utils.constants import IMAGENET_MEAN_UINT8

__all__ = ["RAND_AUGMENT_OPS", "RandAugment", "affine_nearest", "parse_rand_augment"]

_FILL = IMAGENET_MEAN_UINT8  # the fill of geometric ops where nothing maps


def _signed(v: float, rng: random.Random) -> float:
    return v if rng.random() < 0.5 else -v


def _enhance(f: float, rng: random.Random) -> float:
    return 1.0 + _signed(0.9 * f, rng)


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
    mask = torch.ge(clip, threshold, out=torch.empty_like(clip))  # uint8 0/1 (a bool result is much slower)
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
    out = torch.from_numpy(np.take(padded, index.numpy(), axis=1))  # (T, H*W*C); numpy's byte gather is faster than torch's
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

