"""The augmentation pipelines: ``TrainTransform`` (crop, flip, RandAugment, random erasing) and
``EvalTransform`` (test views), and the erasing they use.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Sequence

import torch

from ...utils.constants import IMAGENET_MEAN, IMAGENET_STD
from ..sampling import CropBox, random_resized_box, scale_jitter_box, spatial_crop_boxes
from .functional import crop_resize, resize_short_side
from .rand_augment import RandAugment

__all__ = ["EvalTransform", "TrainTransform", "erase", "random_erase_box"]


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


def _shares_memory(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


@dataclass(frozen=True)
class TrainTransform:
    """Training augmentation: crop (scale jitter or random resized), flip, RandAugment,
    random erasing; ``mean``/``std`` only shape the erasing noise (normalisation happens on the
    device, see ``batch_to_device``).

    Call with decoded frames (T, H, W, C) uint8 and an RNG; returns (C, T, S, S) uint8, a view
    of channels-last memory it owns (see the package's note on memory layout).
    """

    crop_size: int = 224
    jitter_scales: tuple[int, int] = (256, 320)
    random_resized_crop: bool = False
    area_range: tuple[float, float] = (0.08, 1.0)
    aspect_range: tuple[float, float] = (0.75, 4 / 3)
    flip: bool = True
    rand_augment: RandAugment | None = None
    erase_prob: float = 0.0
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

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

    Call with frames (T, H, W, C) uint8; returns (num_crops, C, T, S, S) uint8 (``normalize_clip``
    turns the views into model input).
    """

    crop_size: int = 224
    num_crops: int = 3

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        clip = resize_short_side(frames.permute(0, 3, 1, 2), self.crop_size)  # (T, C, H', W')
        boxes = spatial_crop_boxes(clip.shape[-2], clip.shape[-1], self.crop_size, self.num_crops)
        views = [crop_resize(clip, b, (self.crop_size, self.crop_size)).permute(1, 0, 2, 3) for b in boxes]
        return torch.stack(views)  # (num_crops, C, T, S, S) uint8

