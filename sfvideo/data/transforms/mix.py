"""Batch-level Mixup / CutMix and the label-smoothed soft targets they mix."""

from __future__ import annotations

import math
import random

import torch

from ..sampling import CropBox

__all__ = ["MixupCutmix", "cutmix_box", "smooth_one_hot"]


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
