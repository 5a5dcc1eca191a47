"""RandAugment: each op on whole clips, the spec parser, agreement with torchvision's uint8 kernels."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

from _data_helpers import random_frames, same_frames
from sfvideo.data.transforms import rand_augment as T
from sfvideo.data.transforms.rand_augment import _OPS, RAND_AUGMENT_OPS, RandAugment, affine_nearest, parse_rand_augment


@pytest.mark.parametrize("op", RAND_AUGMENT_OPS)
def test_each_rand_augment_op_keeps_shape_and_frames_equal(op):
    clip = (same_frames(3, 32, 32) // 2 + 40).permute(0, 3, 1, 2)  # (T, C, H, W), values 40..167
    out = _OPS[op](clip, 0.9, random.Random(0))
    assert out.shape == clip.shape and out.dtype == torch.uint8
    assert torch.equal(out[:1].expand_as(out), out)
    assert not torch.equal(out, clip)  # each op at magnitude 9 changes random content


@pytest.mark.parametrize(
    "spec, expected",
    [("rand-m7-n4", RandAugment(4, 7.0)), ("rand-m9-n2-mstd0.5", RandAugment(2, 9.0, 0.5)), ("", None)],
)
def test_parse_rand_augment(spec, expected):
    assert parse_rand_augment(spec) == expected


@pytest.mark.parametrize("spec", ["augmix-m5", "rand-x3"])
def test_parse_rand_augment_rejects(spec):
    with pytest.raises(ValueError):
        parse_rand_augment(spec)


def test_rand_augment_applies_the_same_ops_to_every_frame_and_is_random_per_clip():
    ra = RandAugment(num_ops=3, magnitude=9, magnitude_std=0.5, prob=1.0)
    clip = same_frames(3, 32, 32).permute(0, 3, 1, 2)  # (T, C, H, W), all frames equal
    outs = [ra(clip, random.Random(seed)) for seed in range(4)]
    assert all(torch.equal(o[:1].expand_as(o), o) for o in outs)
    assert len({tuple(o.flatten()[:64].tolist()) for o in outs}) > 1
    assert torch.equal(RandAugment(prob=0.0)(clip, random.Random(0)), clip)


def test_the_fill_is_the_imagenet_mean_in_pixel_values():
    from sfvideo.config import load_config

    mean = load_config(None).DATA.MEAN
    assert tuple(T._FILL) == (124, 116, 104) == tuple(round(255 * m) for m in mean)


@pytest.mark.parametrize(
    "ours, theirs",
    [
        # torchvision's affine turns clockwise, its rotate (and ours) counter-clockwise
        (dict(angle=20.0), dict(angle=-20.0, translate=[0, 0], shear=[0.0, 0.0])),
        (dict(translate=(7, -3)), dict(angle=0.0, translate=[7, -3], shear=[0.0, 0.0])),
        # same shear, opposite sign convention (RandAugment draws the sign at random anyway)
        (dict(shear=(15.0, 0.0)), dict(angle=0.0, translate=[0, 0], shear=[-15.0, 0.0])),
        (dict(shear=(0.0, 10.0)), dict(angle=0.0, translate=[0, 0], shear=[0.0, -10.0])),
    ],
)
def test_affine_nearest_matches_torchvision(ours, theirs):
    clip = random_frames(2, 40, 56).permute(0, 3, 1, 2)  # (T, C, H, W)
    expected = TF.affine(clip, scale=1.0, fill=[124, 116, 104], **theirs)
    assert torch.equal(affine_nearest(clip, **ours), expected)


def _natural_clip():
    """(T, C, H, W) uint8 in the channels-last layout the crop leaves, smooth like real frames."""
    g = torch.Generator().manual_seed(3)
    x = torch.randint(0, 256, (3, 3, 20, 28), generator=g).float()
    x = F.avg_pool2d(x, 5, 1, 2) * 0.8 + 20  # (T, C, H, W), values well inside 0-255
    return x.to(torch.uint8).contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("name, ours, reference", [
    ("AutoContrast", lambda x: T._autocontrast(x), lambda x: TF.autocontrast(x)),
    ("Equalize", lambda x: T._equalize(x), lambda x: TF.equalize(x)),
    ("Solarize", lambda x: T._solarize(x, 90), lambda x: TF.solarize(x, 90)),
    ("Posterize", lambda x: T._OPS["Posterize"](x, 0.9, random.Random(0)), lambda x: TF.posterize(x, 5)),
    ("Color", lambda x: T._color(x, 1.7), lambda x: TF.adjust_saturation(x, 1.7)),
    ("Contrast", lambda x: T._contrast(x, 0.3), lambda x: TF.adjust_contrast(x, 0.3)),
    ("Brightness", lambda x: T._brightness(x, 1.6), lambda x: TF.adjust_brightness(x, 1.6)),
    ("Sharpness", lambda x: T._sharpness(x, 1.8), lambda x: TF.adjust_sharpness(x, 1.8)),
    ("Invert", lambda x: T._OPS["Invert"](x, 0.5, random.Random(0)), lambda x: TF.invert(x)),
])
def test_fast_uint8_ops_match_torchvision(name, ours, reference):
    x = _natural_clip()
    a, b = ours(x), reference(x.contiguous())
    assert a.dtype == torch.uint8 and a.shape == x.shape
    diff = (a.int() - b.int()).abs()
    assert int(diff.max()) <= 1 and float((diff > 0).float().mean()) < 0.05, name  # float rounding only


def test_solarize_add_and_translate():
    x = _natural_clip()
    ref = torch.where(x < 128, (x.int() + 100).clamp(max=255), x.int()).to(torch.uint8)
    assert torch.equal(T._solarize_add(x, 100), ref)
    moved = T._translate(x, 3, -2)
    assert torch.equal(moved[..., :-2, 3:], x[..., 2:, :-3])
    assert (moved[:, 0, :, :3] == 124).all() and (moved[:, 2, -2:, :] == 104).all()

