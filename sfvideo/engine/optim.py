"""Optimiser and learning-rate schedule: AdamW parameter groups, LR scaling, warmup + cosine.

Weight decay is not applied to norms and biases (tensors with ``ndim <= 1``) or to the
parameters the model names in ``no_weight_decay()`` (RoIs, token embeddings): decaying them
pulls RoIs towards the origin and token embeddings towards zero, which is not regularisation.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import torch
from torch import nn


def total_batch_size(batch_size: int, world_size: int, accum_steps: int) -> int:
    """Clips per optimiser step over all processes."""
    return batch_size * world_size * accum_steps


def scaled_lr(base_lr: float, total_batch: int, base_batch: int) -> float:
    """The linear scaling rule: ``base_lr`` is the rate for ``base_batch`` clips per step."""
    return base_lr * total_batch / base_batch


def _no_decay_names(model: nn.Module) -> set[str]:
    fn = getattr(model, "no_weight_decay", None)
    names = set(fn()) if callable(fn) else set()
    return names


def _layer_scale(model: nn.Module, name: str, layer_decay: float) -> tuple[int, float]:
    """(layer id, LR multiplier) for layer-wise decay: the head gets 1, earlier layers less.

    ``model.layer_index(name)`` gives 0 for the stem and token embeddings, ``i + 1`` for unit
    ``i`` and ``model.num_layers`` for the final norm and head; the multiplier is
    ``layer_decay ** (num_layers - id)``.
    """
    num_layers = int(model.num_layers)
    layer_id = max(0, min(int(model.layer_index(name)), num_layers))
    return layer_id, layer_decay ** (num_layers - layer_id)


def param_groups(model: nn.Module, weight_decay: float, layer_decay: float = 1.0) -> list[dict[str, Any]]:
    """AdamW parameter groups with ``weight_decay`` and ``lr_scale`` set per group.

    Args:
        model: the (unwrapped) model; ``no_weight_decay()``, ``layer_index()`` and
            ``num_layers`` are used when present (the last two only when ``layer_decay != 1``).
        weight_decay: decay for weight matrices and convolution kernels.
        layer_decay: layer-wise LR decay factor (1.0 disables).

    Returns:
        Groups with keys ``params``, ``param_names``, ``weight_decay``, ``lr_scale``; empty
        groups are left out. Frozen parameters (``requires_grad=False``) are skipped.
    """
    skip = _no_decay_names(model)
    use_layers = layer_decay != 1.0
    if use_layers and not (hasattr(model, "layer_index") and hasattr(model, "num_layers")):
        raise ValueError("SOLVER.LAYER_DECAY needs a model with layer_index() and num_layers")
    groups: dict[tuple[str, int], dict[str, Any]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        no_decay = p.ndim <= 1 or name in skip or name.endswith(".bias")
        layer_id, scale = _layer_scale(model, name, layer_decay) if use_layers else (0, 1.0)
        key = ("no_decay" if no_decay else "decay", layer_id)
        if key not in groups:
            groups[key] = {
                "params": [],
                "param_names": [],
                "weight_decay": 0.0 if no_decay else weight_decay,
                "lr_scale": scale,
            }
        groups[key]["params"].append(p)
        groups[key]["param_names"].append(name)
    return [groups[k] for k in sorted(groups, key=lambda k: (k[1], k[0]))]


def build_optimizer(model: nn.Module, lr: float, weight_decay: float, betas: Iterable[float] = (0.9, 0.999),
                    layer_decay: float = 1.0) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups`; each group's LR is ``lr * lr_scale`` (set by the schedule)."""
    groups = param_groups(model, weight_decay, layer_decay)
    for g in groups:
        g["lr"] = lr * g["lr_scale"]
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), weight_decay=weight_decay)


class WarmupCosineSchedule:
    """Per-step learning rate: linear warmup from ``start_lr`` to ``peak_lr``, then cosine to ``min_lr``.

    ``lr(s)`` for optimiser step ``s`` (0-based):
    ``start + (peak - start) * s / W`` for ``s < W``;
    ``min + (peak - min) * (1 + cos(pi * (s - W) / (S - W))) / 2`` for ``W <= s <= S``,
    held at ``min_lr`` beyond ``S`` (``W`` warmup steps, ``S`` total steps).
    ``step()`` advances the counter; the state is the counter alone.

    Built by :func:`build_schedule`, the steps are a resolution of training progress in epochs
    (``steps_per_epoch`` per epoch): :meth:`seek` places the schedule at a point of progress, so
    a run resumed with another number of steps per epoch (another world size or batch) stays on
    the same curve of LR against epochs. ``total_batch`` is the batch ``peak_lr`` was scaled for.
    """

    def __init__(self, optimizer: torch.optim.Optimizer | None, peak_lr: float, total_steps: int,
                 warmup_steps: int = 0, start_lr: float = 0.0, min_lr: float = 0.0,
                 steps_per_epoch: int | None = None, total_batch: int | None = None):
        self.optimizer = optimizer
        self.peak_lr = peak_lr
        self.total_steps = max(1, int(total_steps))
        self.warmup_steps = max(0, min(int(warmup_steps), self.total_steps))
        self.start_lr = start_lr
        self.min_lr = min_lr
        self.steps_per_epoch = steps_per_epoch
        self.total_batch = total_batch
        self.last_step = 0
        self.apply()

    def lr_at(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.start_lr + (self.peak_lr - self.start_lr) * step / self.warmup_steps
        span = self.total_steps - self.warmup_steps
        if span <= 0:
            return self.peak_lr
        progress = min(1.0, (step - self.warmup_steps) / span)
        return self.min_lr + (self.peak_lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))

    def get_lr(self) -> float:
        return self.lr_at(self.last_step)

    def apply(self) -> None:
        """Set every group's LR for the current step (``lr * lr_scale``)."""
        if self.optimizer is None:
            return
        lr = self.get_lr()
        for g in self.optimizer.param_groups:
            g["lr"] = lr * g.get("lr_scale", 1.0)

    def step(self) -> None:
        self.last_step += 1
        self.apply()

    def seek(self, epoch: int, step_in_epoch: int = 0) -> None:
        """Place the schedule after ``epoch`` epochs and ``step_in_epoch`` steps of the next."""
        if not self.steps_per_epoch:
            raise ValueError("seek() needs steps_per_epoch")
        self.last_step = epoch * self.steps_per_epoch + step_in_epoch
        self.apply()

    def state_dict(self) -> dict[str, Any]:
        return {"last_step": self.last_step, "peak_lr": self.peak_lr, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps, "start_lr": self.start_lr, "min_lr": self.min_lr,
                "steps_per_epoch": self.steps_per_epoch, "total_batch": self.total_batch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # Only the position is restored; the shape follows the current config (a resumed run with
        # a changed MAX_EPOCH continues on the new curve).
        self.last_step = int(state["last_step"])
        self.apply()


def build_schedule(cfg, optimizer: torch.optim.Optimizer | None, steps_per_epoch: int,
                   peak_lr: float, total_batch: int | None = None) -> WarmupCosineSchedule:
    """The schedule of ``cfg.SOLVER`` for ``steps_per_epoch`` optimiser steps per epoch
    (``total_batch``: the clips per step ``peak_lr`` was scaled for)."""
    s = cfg.SOLVER
    return WarmupCosineSchedule(
        optimizer,
        peak_lr=peak_lr,
        total_steps=s.MAX_EPOCH * steps_per_epoch,
        warmup_steps=round(s.WARMUP_EPOCHS * steps_per_epoch),
        start_lr=s.WARMUP_START_LR,
        min_lr=s.MIN_LR,
        steps_per_epoch=steps_per_epoch,
        total_batch=total_batch,
    )
