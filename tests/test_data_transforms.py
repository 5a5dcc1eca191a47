"""Transforms: shapes, same op on every frame, crop positions, RandAugment, erasing, mixup/cutmix."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

from sfvideo.data import transforms as T
from sfvideo.data.sampling import CropBox
from sfvideo.data.transforms import (
    _OPS,
    RAND_AUGMENT_OPS,
    EvalTransform,
    MixupCutmix,
    RandAugment,
    TrainTransform,
    cutmix_box,
    parse_rand_augment,
    resize_short_side,
    smooth_one_hot,
)


def _frames(t=4, h=48, w=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (t, h, w, 3), dtype=torch.uint8, generator=g)  # (T, H, W, C)


def _same_frames(t=4, h=48, w=64):
    return _frames(1, h, w).expand(t, h, w, 3).contiguous()  # (T, H, W, C), all frames equal


@pytest.mark.parametrize("rrc", [False, True])
def test_train_transform_shape_and_identical_frames(rrc):
    tf = TrainTransform(crop_size=32, jitter_scales=(40, 56), random_resized_crop=rrc, flip=True,
                        rand_augment=RandAugment(num_ops=4, magnitude=9, prob=1.0), erase_prob=1.0)
    for seed in range(5):
        out = tf(_same_frames(), random.Random(seed))
        assert out.shape == (3, 4, 32, 32) and out.dtype == torch.uint8
        # every random choice is per clip, so identical input frames stay identical
        assert torch.equal(out[:, :1].expand_as(out), out)


def test_train_transform_is_random_per_clip():
    tf = TrainTransform(crop_size=32, jitter_scales=(40, 56))
    outs = {tuple(tf(_frames(), random.Random(s)).flatten()[:50].tolist()) for s in range(6)}
    assert len(outs) > 1


def test_normalize_clip_uses_mean_std_per_channel():
    clip = torch.full((3, 2, 4, 4), 255, dtype=torch.uint8)  # (C, T, H, W)
    out = T.normalize_clip(clip, (0.5, 0.5, 0.5), (0.25, 0.5, 1.0))
    assert out.shape == (3, 2, 4, 4) and out.dtype == torch.float32
    assert out[:, 0, 0, 0].tolist() == pytest.approx([2.0, 1.0, 0.5])
    with pytest.raises(TypeError, match="uint8"):
        T.normalize_clip(out, (0.5, 0.5, 0.5), (0.25, 0.5, 1.0))


def test_uint8_resize_matches_float_resize():
    clip = _frames(2, 60, 80).permute(0, 3, 1, 2)  # (T, C, H, W)
    ours = resize_short_side(clip, 30)
    ref = F.interpolate(clip.float(), size=(30, 40), mode="bilinear", antialias=True, align_corners=False)
    assert ours.shape == (2, 3, 30, 40) and ours.dtype == torch.uint8
    assert (ours.float() - ref).abs().max() <= 1.0


@pytest.mark.parametrize("op", RAND_AUGMENT_OPS)
def test_each_rand_augment_op_keeps_shape_and_frames_equal(op):
    clip = (_same_frames(3, 32, 32) // 2 + 40).permute(0, 3, 1, 2)  # (T, C, H, W), values 40..167
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
    tf = EvalTransform(crop_size=24, num_crops=3, mean=(0, 0, 0), std=(1, 1, 1))
    views = tf(_marked(edge, h=shape[0], w=shape[1]))
    assert views.shape == (3, 3, 2, 24, 24)
    assert [_has_red(v) for v in views] == expected


def test_single_crop_is_centre():
    tf = EvalTransform(crop_size=24, num_crops=1, mean=(0, 0, 0), std=(1, 1, 1))
    assert tf(_marked("left")).shape == (1, 3, 2, 24, 24)
    assert not _has_red(tf(_marked("left"))[0])


def test_smooth_one_hot():
    t = smooth_one_hot(torch.tensor([1, 0]), 4, 0.2)
    assert t[0].tolist() == pytest.approx([0.05, 0.85, 0.05, 0.05])
    assert t.sum(1).tolist() == pytest.approx([1.0, 1.0])


def test_mixup_targets_and_clips():
    clips = torch.stack([torch.zeros(3, 2, 8, 8), torch.ones(3, 2, 8, 8)])  # (B, C, T, H, W)
    mix = MixupCutmix(num_classes=3, mixup_alpha=1.0, cutmix_alpha=0.0, label_smoothing=0.0, seed=0)
    out, targets = mix(clips, torch.tensor([0, 2]))
    lam = 1.0 - out[0].mean().item()  # sample 0 = lam * zeros + (1 - lam) * ones
    assert targets[0].tolist() == pytest.approx([lam, 0.0, 1 - lam], abs=1e-5)
    assert targets.sum(1).tolist() == pytest.approx([1.0, 1.0])


def test_cutmix_same_box_every_frame_and_area_lambda():
    clips = torch.stack([torch.zeros(3, 4, 16, 16), torch.ones(3, 4, 16, 16)])  # (B, C, T, H, W)
    mix = MixupCutmix(num_classes=2, mixup_alpha=0.0, cutmix_alpha=1.0, label_smoothing=0.0, seed=3)
    for _ in range(5):
        out, targets = mix(clips, torch.tensor([0, 1]))
        pasted = out[0, 0]  # (T, H, W): ones where the box is
        assert torch.equal(pasted[:1].expand_as(pasted), pasted)
        assert targets[0, 1].item() == pytest.approx(pasted[0].mean().item(), abs=1e-6)


def test_cutmix_box_area():
    box = cutmix_box(100, 100, 0.75, random.Random(0))
    assert isinstance(box, CropBox) and box.height * box.width <= 50 * 50


def test_label_smoothing_only_when_mixing_off():
    clips = torch.randn(2, 3, 2, 4, 4)
    mix = MixupCutmix(num_classes=4, mixup_alpha=0.0, cutmix_alpha=0.0, label_smoothing=0.1)
    out, targets = mix(clips, torch.tensor([3, 1]))
    assert out is clips
    assert targets[0].argmax().item() == 3 and targets[0, 3].item() == pytest.approx(0.925)


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
    from torchvision.transforms.v2 import functional as TF

    from sfvideo.data.transforms import affine_nearest

    clip = _frames(2, 40, 56).permute(0, 3, 1, 2)  # (T, C, H, W)
    expected = TF.affine(clip, scale=1.0, fill=[124, 116, 104], **theirs)
    assert torch.equal(affine_nearest(clip, **ours), expected)


def test_uint8_erasing_matches_normalised_noise():
    """Erasing on uint8 gives, once normalised, the N(0, 1) noise timm puts in normalised space."""
    from sfvideo.data.transforms import erase, normalize_clip

    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    clip = torch.full((3, 2, 64, 64), 7, dtype=torch.uint8)  # (C, T, H, W)
    out = erase(clip.clone(), CropBox(8, 8, 40, 40), torch.Generator().manual_seed(0), mean, std)
    assert out.dtype == torch.uint8
    assert torch.equal(out[:, 0], out[:, 1])  # the same box and noise on every frame
    assert torch.equal(out[:, :, :8], clip[:, :, :8])  # outside the box untouched
    z = normalize_clip(out, mean, std)[:, 0, 8:48, 8:48]  # (C, h, w)
    inside = z.abs() < 1.5  # clipping to 0-255 only cuts the tails
    assert abs(float(z[inside].mean())) < 0.1 and 0.6 < float(z[inside].std()) < 0.9


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


@pytest.mark.parametrize("channels_last", [True, False])
def test_stack_clips_equals_torch_stack_and_keeps_the_layout(channels_last):
    from sfvideo.data.transforms import stack_clips

    g = torch.Generator().manual_seed(0)
    clips = [torch.randint(0, 256, (4, 5, 6, 3), dtype=torch.uint8, generator=g).permute(3, 0, 1, 2) for _ in range(3)]
    if not channels_last:
        clips = [c.contiguous() for c in clips]  # planar (C, T, H, W)
    out = stack_clips(clips)
    assert torch.equal(out, torch.stack(clips))
    assert (out.stride(1) == 1) == channels_last and (out.is_contiguous() != channels_last)
    nested = stack_clips([out, out])  # (B, K, C, T, H, W), as K clips per decode are batched
    assert torch.equal(nested, torch.stack([out, out])) and (nested.stride(2) == 1) == channels_last


def test_train_transform_never_writes_into_the_frames():
    """With no resize and no RandAugment a whole-frame crop is the decoded frames: erasing must
    act on a copy (with K clips per decode the frames feed the next clip)."""
    from sfvideo.data.transforms import TrainTransform

    frames = torch.full((2, 32, 32, 3), 50, dtype=torch.uint8)  # (T, H, W, C): the crop is all of it
    before = frames.clone()
    tf = TrainTransform(crop_size=32, jitter_scales=(32, 32), flip=False, erase_prob=1.0)
    out = tf(frames, random.Random(0))
    assert out.shape == (3, 2, 32, 32) and out.stride(0) == 1
    assert not torch.equal(out, before[:, :, :32].permute(3, 0, 1, 2))  # erased somewhere
    assert torch.equal(frames, before)
