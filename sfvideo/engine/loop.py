"""One training epoch as a free function of explicit objects (no config inside the step loop).

:func:`train_one_epoch` runs optimiser steps ``start_step .. num_steps - 1`` of one epoch:
``accum_steps`` micro-batches per step (gradients all-reduced once per step under DDP), AMP through
an optional gradient scaler, gradient clipping, the schedule's step, the EMA update. At every step
boundary all ranks agree on two flags with one all-reduce: a non-finite loss on any rank raises
:class:`NonFiniteLossError` *before* the optimiser step, and a stop request (SIGINT/SIGTERM on any
rank) ends the epoch early so the caller can write a resumable checkpoint.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

import torch
from torch import nn

from sfvideo.data.transforms import batch_to_device
from sfvideo.engine import distributed as du
from sfvideo.engine.ema import ModelEma
from sfvideo.engine.losses import LossFn
from sfvideo.utils.amp import autocast_context

Norm = tuple[Sequence[float], Sequence[float]]  # (mean, std) of uint8 clips scaled to [0, 1]

logger = logging.getLogger("sfvideo.engine")


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the run stopped before updating the weights."""


@dataclass
class EpochStats:
    """Sums over the epoch so far (this rank's share; partial epochs are checkpointed)."""

    loss_sum: float = 0.0
    clips: float = 0.0
    failed: float = 0.0

    def as_list(self) -> list[float]:
        return [self.loss_sum, self.clips, self.failed]

    def as_dict(self) -> dict[str, float]:
        return {"loss_sum": self.loss_sum, "clips": self.clips, "failed": self.failed}


@dataclass
class EpochOutcome:
    """What :func:`train_one_epoch` did.

    Attributes:
        next_step: the first step not taken (``num_steps`` when the epoch completed).
        stopped: a stop request ended the epoch before ``num_steps``.
        global_step: optimiser steps taken in total after this epoch (or stop).
        seconds, clips_per_s: wall time and throughput (all ranks) of the steps taken here.
    """

    next_step: int
    stopped: bool
    global_step: int
    seconds: float
    clips_per_s: float


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside ``DistributedDataParallel`` (the model itself otherwise)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def count_substituted(batch: dict[str, Any]) -> int:
    """Videos that failed to load and were replaced by substitutes while producing ``batch``."""
    if "num_failed" in batch:
        return int(sum(int(v or 0) for v in batch["num_failed"]))
    return 0


def _micro_batch(model: nn.Module, batch: dict[str, Any], loss_fn: LossFn, *, device: torch.device,
                 norm: Norm | None, amp: str, scaler: torch.amp.GradScaler | None, mixup: Callable | None,
                 accum_steps: int, sync_grads: bool) -> tuple[float, int]:
    """Forward and backward of one micro-batch; returns (loss value, clips in the batch)."""
    mean, std = norm if norm is not None else (None, None)
    # uint8 clips become float on the device: a quarter of the bytes through the loader and the copy
    clips, labels = batch_to_device(batch["video"], batch["label"], device, mean, std)  # (B, C, T, H, W), (B,)
    targets = labels
    if mixup is not None:
        clips, targets = mixup(clips, labels)  # targets (B, K)
    sync = contextlib.nullcontext()
    if not sync_grads and isinstance(model, nn.parallel.DistributedDataParallel):
        sync = model.no_sync()  # all-reduce gradients once per optimiser step, not per micro-batch
    with sync:
        with autocast_context(device, amp):
            logits = model(clips)  # (B, K)
        loss = loss_fn(logits, targets)
        scaled = loss / accum_steps  # gradients of the step's mean loss
        if scaler is not None:
            scaled = scaler.scale(scaled)
        scaled.backward()
    return float(loss.detach()), clips.shape[0]


def _accumulate(model: nn.Module, batches: Iterator[dict[str, Any]], loss_fn: LossFn, stats: EpochStats, *,
                accum_steps: int, **kwargs: Any) -> tuple[float, float, int]:
    """The ``accum_steps`` micro-batches of one optimiser step (gradients summed, stats updated).

    Returns:
        The last micro-batch's loss, 1.0 if any loss was non-finite (else 0.0), and the clips seen.
    """
    nonfinite, clips = 0.0, 0
    for micro in range(accum_steps):
        batch = next(batches)
        value, n = _micro_batch(model, batch, loss_fn, accum_steps=accum_steps, sync_grads=micro == accum_steps - 1,
                                **kwargs)
        nonfinite = 1.0 if not math.isfinite(value) else nonfinite
        stats.loss_sum += value * n
        stats.clips += n
        stats.failed += count_substituted(batch)
        clips += n
    return value, nonfinite, clips


def _optimizer_step(model: nn.Module, optimizer: torch.optim.Optimizer, schedule: Any,
                    scaler: torch.amp.GradScaler | None, clip_grad: float, ema: ModelEma | None) -> None:
    """Unscale, clip, step (through the scaler under fp16), zero the gradients, advance LR and EMA."""
    if scaler is not None:
        scaler.unscale_(optimizer)
    if clip_grad > 0:
        nn.utils.clip_grad_norm_(unwrap(model).parameters(), clip_grad)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    schedule.step()
    if ema is not None:
        ema.update(unwrap(model))


def _progress_bar(show: bool, total: int, initial: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, disable=not show, dynamic_ncols=True, file=sys.stdout,
                leave=False)


def train_one_epoch(
    model: nn.Module,
    loader: Iterable[dict[str, Any]],
    optimizer: torch.optim.Optimizer,
    schedule: Any,
    loss_fn: LossFn,
    *,
    device: torch.device,
    norm: Norm | None = None,
    num_steps: int,
    start_step: int = 0,
    global_step: int = 0,
    accum_steps: int = 1,
    amp: str = "none",
    scaler: torch.amp.GradScaler | None = None,
    mixup: Callable | None = None,
    clip_grad: float = 0.0,
    ema: ModelEma | None = None,
    stats: EpochStats | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    epoch: int = 0,
    num_epochs: int = 1,
    log_period: int = 10,
    writer: Any = None,
    world_size: int = 1,
    is_main: bool = True,
) -> EpochOutcome:
    """Run optimiser steps ``start_step .. num_steps - 1`` of epoch ``epoch`` (0-based).

    Args:
        model: the model to train (possibly wrapped in DDP).
        loader: yields batches ``{"video": (B, C, T, H, W), "label": (B,), ...}``; it must already
            start at ``start_step`` (the sampler skips the batches a resumed run has done).
        optimizer, schedule: the optimiser and the per-step LR schedule (``.step()``, ``.get_lr()``).
        loss_fn: ``loss_fn(logits, targets)``; targets are labels (B,) or soft targets (B, K).
        device, amp, scaler: where to run, autocast mode, and the fp16 gradient scaler (or None).
        norm: (mean, std) normalising uint8 clips on ``device``; float clips pass as they are;
            (B, K, C, T, H, W) batches (K clips per video) become B*K clips, labels repeated.
        num_steps, start_step, global_step: the epoch's step count, where to start, steps so far.
        accum_steps: micro-batches per optimiser step.
        mixup: ``mixup(clips, labels) -> (clips, soft targets)`` or None.
        clip_grad: max gradient norm (0: no clipping).
        ema: updated after every optimiser step, or None.
        stats: sums updated in place (loss, clips, substituted videos).
        should_stop: polled at every step boundary; any rank's True stops every rank.
        epoch, num_epochs: for messages and the progress bar.
        log_period, writer, world_size, is_main: log every ``log_period`` steps (rank 0), TensorBoard.

    Raises:
        NonFiniteLossError: the loss was NaN/inf on some rank (no weights were updated by that step).
    """
    stats = stats if stats is not None else EpochStats()
    batches = iter(loader)
    model.train()
    show_bar = is_main and sys.stdout.isatty()
    desc = f"epoch {epoch + 1}/{num_epochs}"
    bar = _progress_bar(show_bar, num_steps, start_step, desc)
    t0, clips_here = time.perf_counter(), 0
    try:
        for step in range(start_step, num_steps):
            value, nonfinite, n = _accumulate(model, batches, loss_fn, stats, device=device, norm=norm, amp=amp,
                                              scaler=scaler, mixup=mixup, accum_steps=accum_steps)
            clips_here += n
            flags = du.all_reduce_max([nonfinite, float(should_stop())])
            if flags[0] > 0:
                raise NonFiniteLossError(f"non-finite training loss at epoch {epoch + 1}, step {step + 1} of "
                                         f"{num_steps} (global step {global_step + 1}); stopped before updating "
                                         "the weights.")
            _optimizer_step(model, optimizer, schedule, scaler, clip_grad, ema)
            global_step += 1
            rate = clips_here * world_size / max(time.perf_counter() - t0, 1e-9)
            log_now = is_main and ((step + 1) % log_period == 0 or step + 1 == num_steps)
            _report_step(bar, desc, step, num_steps, value, optimizer.param_groups[-1]["lr"], rate, global_step,
                         writer, log=log_now, console=not show_bar)
            if flags[1] > 0 and step + 1 < num_steps:
                return EpochOutcome(step + 1, True, global_step, time.perf_counter() - t0, rate)
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    return EpochOutcome(num_steps, False, global_step, seconds, clips_here * world_size / max(seconds, 1e-9))


def _report_step(bar: Any, desc: str, step: int, num_steps: int, loss: float, lr: float, rate: float,
                 global_step: int, writer: Any, log: bool, console: bool) -> None:
    """Advance the progress bar; every ``log_period`` steps also log (``log``) the step."""
    bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.3g}", clips_s=f"{rate:.1f}", refresh=False)
    bar.update(1)
    if log:
        _log_step(desc, step, num_steps, loss, lr, rate, global_step, writer, console=console)


def _log_step(desc: str, step: int, num_steps: int, loss: float, lr: float, rate: float, global_step: int,
              writer: Any, console: bool) -> None:
    """The periodic training line (when no progress bar shows it) and the TensorBoard scalars."""
    if console:
        logger.info("%s step %d/%d loss %.4f lr %.4g clips/s %.2f", desc, step + 1, num_steps, loss, lr, rate)
    if writer is not None:
        writer.add_scalar("train/loss", loss, global_step)
        writer.add_scalar("train/lr", lr, global_step)
