"""Constants shared across sfvideo (no imports: anything may use them, torch or not)."""

from __future__ import annotations

# ImageNet's per-channel RGB mean and standard deviation on the [0, 1] scale: the normalisation
# of SparseFormer's image weights, and so the default of ``DATA.MEAN`` / ``DATA.STD``.
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
# The mean as uint8 pixel values (124, 116, 104): the fill of geometric augmentations.
IMAGENET_MEAN_UINT8: tuple[int, ...] = tuple(round(255 * m) for m in IMAGENET_MEAN)
