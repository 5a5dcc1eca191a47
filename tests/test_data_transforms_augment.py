"""The pipelines: training crops, flips, RandAugment and erasing per clip; test views; erasing."""

from __future__ import annotations

import random

import pytest
import torch

from _data_helpers import random_frames, same_frames
from sfvideo.data.sampling import CropBox
from sfvideo.data.transforms.augment import EvalTransform, TrainTransform, erase
from sfvideo.data.transforms.functional import normalize_clip
from sfvideo.data.transforms.rand_augment import RandAugment
from sfvideo.utils.constants import IMAGENET_MEAN, IMAGENET_STD


@pytest.mark.parametrize("rrc", [False, True])
def test_train_transform_shape_and_identical_frames(rrc):
    tf = TrainTransform(crop_size=32, jitter_scales=(40, 56), random_resized_crop=rrc, flip=True,
                        rand_augment=RandAugment(num_ops=4, magnitude=9, prob=1.0), erase_prob=1.0)
    for seed in range(5):
        out = tf(same_frames(), random.Random(seed))
        assert out.shape == (3, 4, 32, 32) and out.dtype == torch.uint8
        # every random choice is per clip, so identical input frames stay identical
        assert torch.equal(out[:, :1].expand_as(out), out)


def test_train_transform_is_random_per_clip():
    tf = TrainTransform(crop_size=32, jitter_scales=(40, 56))
    outs = {tuple(tf(random_frames(), random.Random(s)).flatten()[:50].tolist()) for s in range(6)}
    assert len(outs) > 1


def _marked(edge, t=2, h=48, w=80):
    frames = torch.full((t, h, w, 3), 128, dtype=torch.uint8)  # (T, H, W, C)
    if edge == "left":
        frames[:, :, :6] = torch.tensor([255, 0, 0], dtype=torch.uint8)
    elif edge == "right":
        frames[:, :, -6:] = torch.tensor([255, 0, 0], dtype=torch.uint8)
    elif edge == "top":
        frames[:, :6] = torch.tensor([255, 0, 0], dtype=torch.uint8)
    return frames


def _has_red(view):  # view (C, T, H, W) uint8
    assert view.dtype == torch.uint8
    return bool(((view[0] > 230) & (view[1] < 25)).any())


@pytest.mark.parametrize(
    "edge, shape, expected",
    [("left", (48, 80), [True, False, False]), ("right", (48, 80), [False, False, True]), ("top", (80, 48), [True, False, False])],
)
def test_three_crops_find_edge_marker(edge, shape, expected):
    tf = EvalTransform(crop_size=24, num_crops=3)
    views = tf(_marked(edge, h=shape[0], w=shape[1]))
    assert views.shape == (3, 3, 2, 24, 24)
    assert [_has_red(v) for v in views] == expected


def test_single_crop_is_centre():
    tf = EvalTransform(crop_size=24, num_crops=1)
    assert tf(_marked("left")).shape == (1, 3, 2, 24, 24)
    assert not _has_red(tf(_marked("left"))[0])


def test_uint8_erasing_matches_normalised_noise():
    """Erasing on uint8 gives, once normalised, the N(0, 1) noise timm puts in normalised space."""
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    clip = torch.full((3, 2, 64, 64), 7, dtype=torch.uint8)  # (C, T, H, W)
    out = erase(clip.clone(), CropBox(8, 8, 40, 40), torch.Generator().manual_seed(0), mean, std)
    assert out.dtype == torch.uint8
    assert torch.equal(out[:, 0], out[:, 1])  # the same box and noise on every frame
    assert torch.equal(out[:, :, :8], clip[:, :, :8])  # outside the box untouched
    z = normalize_clip(out, mean, std)[:, 0, 8:48, 8:48]  # (C, h, w)
    inside = z.abs() < 1.5  # clipping to 0-255 only cuts the tails
    assert abs(float(z[inside].mean())) < 0.1 and 0.6 < float(z[inside].std()) < 0.9


def test_train_transform_never_writes_into_the_frames():
    """With no resize and no RandAugment a whole-frame crop is the decoded frames: erasing must
    act on a copy (with K clips per decode the frames feed the next clip)."""
    frames = torch.full((2, 32, 32, 3), 50, dtype=torch.uint8)  # (T, H, W, C): the crop is all of it
    before = frames.clone()
    tf = TrainTransform(crop_size=32, jitter_scales=(32, 32), flip=False, erase_prob=1.0)
    out = tf(frames, random.Random(0))
    assert out.shape == (3, 2, 32, 32) and out.stride(0) == 1
    assert not torch.equal(out, before[:, :, :32].permute(3, 0, 1, 2))  # erased somewhere
    assert torch.equal(frames, before)
