"""Mixup / CutMix: mixed clips, soft targets, the CutMix box, label smoothing alone."""

from __future__ import annotations

import random

import pytest
import torch

from sfvideo.data.sampling import CropBox
from sfvideo.data.transforms.mix import MixupCutmix, cutmix_box, smooth_one_hot


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

