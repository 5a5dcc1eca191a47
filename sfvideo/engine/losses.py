"""Training losses: cross entropy on hard labels (with smoothing) or on mixup/cutmix soft targets."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def soft_target_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``-sum_k t_k log softmax(logits)_k`` (B, K) x (B, K)."""
    return torch.sum(-targets * F.log_softmax(logits, dim=-1), dim=-1).mean()


def compute_loss(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    """Cross entropy in float32: soft targets (B, K) from mixup/cutmix, or labels (B,) with smoothing."""
    logits = logits.float()  # the loss is computed in fp32 even under autocast
    if targets.ndim == 2:
        return soft_target_cross_entropy(logits, targets.float())
    return F.cross_entropy(logits, targets, label_smoothing=label_smoothing)


def classification_loss(label_smoothing: float = 0.0) -> LossFn:
    """``criterion(logits, targets)`` for :func:`sfvideo.engine.loop.train_one_epoch`."""

    def loss_fn(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return compute_loss(logits, targets, label_smoothing)

    return loss_fn
