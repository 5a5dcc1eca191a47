"""Spatial transforms on uint8 clips, one module per job; every random choice is made once per
clip, so all frames of a clip get the same crop, flip, RandAugment ops and erasing box.

* ``functional``: pure clip functions (crop and resize, ``stack_clips``, ``normalize_clip``,
  ``batch_to_device``);
* ``rand_augment``: ``RandAugment`` and its fifteen ops;
* ``augment``: the pipelines ``TrainTransform`` and ``EvalTransform``, and random erasing;
* ``mix``: batch-level ``MixupCutmix`` and label-smoothed targets.

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

from .augment import EvalTransform, TrainTransform, erase, random_erase_box
from .functional import batch_to_device, crop_resize, normalize_clip, resize_short_side, stack_clips
from .mix import MixupCutmix, cutmix_box, smooth_one_hot
from .rand_augment import RAND_AUGMENT_OPS, RandAugment, affine_nearest, parse_rand_augment

__all__ = [
    "RAND_AUGMENT_OPS",
    "EvalTransform",
    "MixupCutmix",
    "RandAugment",
    "TrainTransform",
    "affine_nearest",
    "batch_to_device",
    "crop_resize",
    "cutmix_box",
    "erase",
    "normalize_clip",
    "parse_rand_augment",
    "random_erase_box",
    "resize_short_side",
    "smooth_one_hot",
    "stack_clips",
]
