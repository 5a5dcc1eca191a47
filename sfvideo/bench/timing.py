"""Timing of model steps: closures for one inference or training step, the timer that runs them in
interleaved rounds, and the ratio of two closures' times.

Machines are noisy: compare models as ratios measured in one process, with the runs of the
models interleaved (A, B, A, B, ...) and the median of per-round ratios taken (``paired_ratio``).
"""

from __future__ import annotations

import statistics
import time
from typing import Callable, Sequence

import torch
from torch import nn

from ..utils.amp import autocast_context

Step = Callable[[], None]


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA runs asynchronously), so a step's time is its own."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def inference_step(model: nn.Module, clip: torch.Tensor, amp: str = "none") -> Step:
    """A closure running one forward pass without gradients."""
    model.eval()

    def step() -> None:
        with torch.inference_mode(), autocast_context(clip.device, amp):
            model(clip)
        sync(clip.device)

    return step


def train_step(model: nn.Module, clip: torch.Tensor, amp: str = "none", *,
               optimizer: torch.optim.Optimizer | None = None, labels: torch.Tensor | None = None,
               loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
               clip_grad: float = 0.0) -> Step:
    """A closure running one training step: forward, loss, backward, optional gradient clipping,
    optimizer step. Defaults (for comparing architectures): AdamW, random labels, cross-entropy;
    ``sfvideo train --benchmark-steps`` passes the config's optimizer, loss and clipping."""
    model.train()
    opt = optimizer if optimizer is not None else torch.optim.AdamW(model.parameters(), lr=1e-6)
    if labels is None:
        labels = torch.randint(0, 10, (clip.shape[0],), device=clip.device)

    def step() -> None:
        with autocast_context(clip.device, amp):
            logits = model(clip)  # (B, K)
        loss = loss_fn(logits, labels) if loss_fn is not None \
            else nn.functional.cross_entropy(logits.float(), labels % logits.shape[1])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip_grad > 0:
            nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
        opt.step()
        sync(clip.device)

    return step


def in_mode(model: nn.Module, training: bool, fn: Step) -> Step:
    """``fn`` with the model switched to train/eval first: inference and training closures of
    one model are interleaved, and ``inference_step``/``train_step`` only set the mode once."""

    def step() -> None:
        model.train(training)
        fn()

    return step


def model_steps(model: nn.Module, clip: torch.Tensor, amp: str = "none") -> dict[str, Step]:
    """``{"infer": ..., "train": ...}`` closures of one model that may be interleaved freely."""
    return {"infer": in_mode(model, False, inference_step(model, clip, amp)),
            "train": in_mode(model, True, train_step(model, clip, amp))}


def time_rounds(steps: dict[str, Step], iters: int = 5, warmup: int = 1) -> dict[str, list[float]]:
    """Seconds of each call of each closure, in ``iters`` rounds that run every closure once.

    The order reverses from one round to the next (A B C, C B A, A B C, ...), so that over two
    rounds every closure has the same average position: a closure that runs after an expensive
    one (cold caches, a fragmented heap) is not always the same one.
    """
    for fn in steps.values():
        for _ in range(warmup):
            fn()
    names = list(steps)
    times: dict[str, list[float]] = {k: [] for k in names}
    for i in range(iters):
        for name in names if i % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            steps[name]()
            times[name].append(time.perf_counter() - start)
    return times


def median_seconds(times: dict[str, list[float]]) -> dict[str, float]:
    """The median of each closure's call times."""
    return {k: statistics.median(v) for k, v in times.items()}


def paired_ratio(num: Sequence[float], den: Sequence[float]) -> float:
    """Median over rounds of ``num[i] / den[i]``: each ratio compares two figures measured back to
    back in one round, so a load change between rounds cancels (unlike a ratio of two medians)."""
    if len(num) != len(den) or not num:
        raise ValueError(f"paired_ratio needs two equally long, non-empty series, got {len(num)} and {len(den)}")
    return statistics.median(a / b for a, b in zip(num, den))
