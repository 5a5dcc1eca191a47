"""Exponential moving average (EMA) of a model's weights."""

from __future__ import annotations

import copy

import torch
from torch import nn


class ModelEma:
    """Exponential moving average of a model's parameters and buffers (a frozen deep copy).

    After every optimiser step ``ema = decay * ema + (1 - decay) * weights`` for floating-point
    tensors; integer buffers (counters) are copied.
    """

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model``'s current weights."""
        for e, m in zip(self.module.state_dict().values(), model.state_dict().values()):
            if e.dtype.is_floating_point:
                e.lerp_(m.detach(), 1.0 - self.decay)
            else:
                e.copy_(m)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state)
