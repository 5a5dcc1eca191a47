"""Pure clip functions: crop and resize, normalisation, batching, moving batches to the device;
the package re-exports the public names of its modules."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from _data_helpers import random_frames
from sfvideo.data.sampling import CropBox
from sfvideo.data.transforms.functional import (
    batch_to_device,
    crop_resize,
    normalize_clip,
    resize_short_side,
    stack_clips,
)


def test_normalize_clip_uses_mean_std_per_channel():
    clip = torch.full((3, 2, 4, 4), 255, dtype=torch.uint8)  # (C, T, H, W)
    out = normalize_clip(clip, (0.5, 0.5, 0.5), (0.25, 0.5, 1.0))
    assert out.shape == (3, 2, 4, 4) and out.dtype == torch.float32
    assert out[:, 0, 0, 0].tolist() == pytest.approx([2.0, 1.0, 0.5])
    with pytest.raises(TypeError, match="uint8"):
        normalize_clip(out, (0.5, 0.5, 0.5), (0.25, 0.5, 1.0))


def test_uint8_resize_matches_float_resize():
    clip = random_frames(2, 60, 80).permute(0, 3, 1, 2)  # (T, C, H, W)
    ours = resize_short_side(clip, 30)
    ref = F.interpolate(clip.float(), size=(30, 40), mode="bilinear", antialias=True, align_corners=False)
    assert ours.shape == (2, 3, 30, 40) and ours.dtype == torch.uint8
    assert (ours.float() - ref).abs().max() <= 1.0


def test_crop_resize_cuts_the_box_before_resizing():
    clip = random_frames(2, 40, 60).permute(0, 3, 1, 2)  # (T, C, H, W)
    box = CropBox(top=5, left=10, height=20, width=30)
    region = clip[:, :, 5:25, 10:40]
    assert torch.equal(crop_resize(clip, box, (20, 30)), region)  # the box's own size: no resize
    resized = crop_resize(clip, box, (10, 15))
    expected = F.interpolate(region, size=(10, 15), mode="bilinear", align_corners=False, antialias=True)
    assert resized.shape == (2, 3, 10, 15) and torch.equal(resized, expected)


@pytest.mark.parametrize("channels_last", [True, False])
def test_stack_clips_equals_torch_stack_and_keeps_the_layout(channels_last):
    g = torch.Generator().manual_seed(0)
    clips = [torch.randint(0, 256, (4, 5, 6, 3), dtype=torch.uint8, generator=g).permute(3, 0, 1, 2) for _ in range(3)]
    if not channels_last:
        clips = [c.contiguous() for c in clips]  # planar (C, T, H, W)
    out = stack_clips(clips)
    assert torch.equal(out, torch.stack(clips))
    assert (out.stride(1) == 1) == channels_last and (out.is_contiguous() != channels_last)
    nested = stack_clips([out, out])  # (B, K, C, T, H, W), as K clips per decode are batched
    assert torch.equal(nested, torch.stack([out, out])) and (nested.stride(2) == 1) == channels_last


def test_batch_to_device_flattens_clips_per_decode_and_normalises_uint8_only():
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    video = random_frames(2 * 3 * 2, 4, 4).view(2, 3, 2, 4, 4, 3).permute(0, 1, 5, 2, 3, 4)  # (B, K, C, T, H, W)
    clips, labels = batch_to_device(video, torch.tensor([4, 7]), "cpu", mean, std)
    assert clips.shape == (6, 3, 2, 4, 4) and labels.tolist() == [4, 4, 4, 7, 7, 7]
    assert torch.equal(clips, normalize_clip(video.flatten(0, 1), mean, std))
    floats = torch.randn(2, 3, 2, 4, 4)  # taken as normalised already: only moved
    assert batch_to_device(floats, None, "cpu", None, None)[0] is floats
    with pytest.raises(ValueError, match="DATA.MEAN"):
        batch_to_device(video[:, 0], None, "cpu", None, None)


def test_the_package_reexports_each_module_public_names():
    import sfvideo.data.transforms as package
    from sfvideo.data.transforms import augment, functional, mix, rand_augment

    for module in (augment, functional, mix, rand_augment):
        defined = {n for n, v in vars(module).items()
                   if not n.startswith("_") and getattr(v, "__module__", None) == module.__name__}
        assert defined <= set(module.__all__), f"{module.__name__}: public but not in __all__"
        assert set(module.__all__) <= set(package.__all__), module.__name__
        assert all(getattr(package, n) is getattr(module, n) for n in module.__all__), module.__name__
