"""One training epoch as a free function of explicit objects (no config inside the step loop).

:func:`train_one_epoch` has torchvision's shape (model, criterion, optimizer, schedule, loader,
device, epoch) plus an :class:`EpochOptions` for the rest, all explicit. It runs optimiser steps
``start_step .. num_steps - 1`` of one epoch: ``accum_steps`` micro-batches per step (gradients all-reduced once per step under DDP), AMP through
an optional gradient scaler, gradient clipping, the schedule's step, the EMA update. At every step
boundary all ranks agree on three flags with one all-reduce: a non-finite loss on any rank raises
:class:`NonFiniteLossError` *before* the optimiser step, a stop request (SIGINT/SIGTERM on any
rank) ends the epoch early so the caller can write a resumable checkpoint, and a periodic
checkpoint due (by rank 0's clock: ``checkpoint_due``) has every rank call ``on_checkpoint``
after the step.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence

import torch
from torch import nn

from sfvideo.data.transforms import batch_to_device
from sfvideo.engine import distributed as du
from sfvideo.engine.ema import ModelEma
from sfvideo.engine.loaders import start_loader, worker_death
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


def _never() -> bool:
    return False


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside ``DistributedDataParallel`` (the model itself otherwise)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def count_substituted(batch: dict[str, Any]) -> int:
    """Videos that failed to load and were replaced by substitutes while producing ``batch``."""
    if "num_failed" in batch:
        return int(sum(int(v or 0) for v in batch["num_failed"]))
    return 0


@dataclass
class EpochOptions:
    """What :func:`train_one_epoch` needs beyond the model, loss, optimiser, schedule and data.

    Attributes:
        num_steps: optimiser steps in the whole epoch.
        start_step: the first step to run (a resumed epoch skips the steps done; the loader must
            already start there).
        global_step: optimiser steps taken before this call.
        accum_steps: micro-batches per optimiser step.
        amp: autocast mode (``none``, ``bf16``, ``fp16``).
        norm: (mean, std) normalising uint8 clips on the device; float clips pass as they are;
            (B, K, C, T, H, W) batches (K clips per video) become B*K clips, labels repeated.
        mixup: ``mixup(clips, labels) -> (clips, soft targets)``, or None.
        clip_grad: max gradient norm (0: no clipping).
        stats: sums updated in place (loss, clips, substituted videos).
        should_stop: polled at every step boundary; any rank's True stops every rank.
        num_epochs: the run's epochs, for messages and the progress bar.
        log_period: log every ``log_period`` steps (main process only).
        writer: a TensorBoard ``SummaryWriter``, or None.
        world_size, is_main: processes in the run, and whether this one reports.
        checkpoint_due: polled at every step boundary (rank 0's answer counts for all ranks).
        on_checkpoint: ``on_checkpoint(next_step, global_step)`` on every rank after a step at
            whose boundary a checkpoint was due (not after the epoch's last step).
    """

    num_steps: int
    start_step: int = 0
    global_step: int = 0
    accum_steps: int = 1
    amp: str = "none"
    norm: Norm | None = None
    mixup: Callable | None = None
    clip_grad: float = 0.0
    stats: EpochStats = field(default_factory=EpochStats)
    should_stop: Callable[[], bool] = _never
    num_epochs: int = 1
    log_period: int = 10
    writer: Any = None
    world_size: int = 1
    is_main: bool = True
    checkpoint_due: Callable[[], bool] = _never
    on_checkpoint: Callable[[int, int], None] | None = None


def _micro_batch(model: nn.Module, criterion: LossFn, batch: dict[str, Any], device: torch.device,
                 options: EpochOptions, scaler: torch.amp.GradScaler | None, sync_grads: bool) -> tuple[float, int]:
    """Forward and backward of one micro-batch; returns (loss value, clips in the batch)."""
    mean, std = options.norm if options.norm is not None else (None, None)
    # uint8 clips become float on the device: a quarter of the bytes through the loader and the copy
    clips, labels = batch_to_device(batch["video"], batch["label"], device, mean, std)  # (B, C, T, H, W), (B,)
    targets = labels
    if options.mixup is not None:
        clips, targets = options.mixup(clips, labels)  # targets (B, K)
    sync = contextlib.nullcontext()
    if not sync_grads and isinstance(model, nn.parallel.DistributedDataParallel):
        sync = model.no_sync()  # all-reduce gradients once per optimiser step, not per micro-batch
    with sync:
        with autocast_context(device, options.amp):
            logits = model(clips)  # (B, K)
        loss = criterion(logits, targets)
        scaled = loss / options.accum_steps  # gradients of the step's mean loss
        if scaler is not None:
            scaled = scaler.scale(scaled)
        scaled.backward()
    return float(loss.detach()), clips.shape[0]


def _accumulate(model: nn.Module, criterion: LossFn, batches: Iterator[dict[str, Any]], device: torch.device,
                options: EpochOptions, scaler: torch.amp.GradScaler | None) -> tuple[float, float, int]:
    """The ``accum_steps`` micro-batches of one optimiser step (gradients summed, stats updated).

    Returns:
        The last micro-batch's loss, 1.0 if any loss was non-finite (else 0.0), and the clips seen.
    """
    nonfinite, clips, stats = 0.0, 0, options.stats
    for micro in range(options.accum_steps):
        batch = next(batches)
        value, n = _micro_batch(model, criterion, batch, device, options, scaler,
                                sync_grads=micro == options.accum_steps - 1)
        nonfinite = 1.0 if not math.isfinite(value) else nonfinite
        stats.loss_sum += value * n
        stats.clips += n
        stats.failed += count_substituted(batch)
        clips += n
    return value, nonfinite, clips


def _agree_to_stop(nonfinite: float, options: EpochOptions, epoch: int, step: int,
                   global_step: int) -> tuple[bool, bool]:
    """Collective: one all-reduce of the three flags. Raises on any rank's non-finite loss (before
    the optimiser step); returns (some rank was asked to stop, a periodic checkpoint is due)."""
    due = float(options.is_main and options.checkpoint_due())
    flags = du.all_reduce_max([nonfinite, float(options.should_stop()), due])
    if flags[0] > 0:
        raise NonFiniteLossError(f"non-finite training loss at epoch {epoch + 1}, step {step + 1} of "
                                 f"{options.num_steps} (global step {global_step + 1}); stopped before updating "
                                 "the weights.")
    return flags[1] > 0, flags[2] > 0


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


class _Throughput:
    """Clips per second over all ranks since the epoch (or its resumed part) began."""

    def __init__(self, world_size: int):
        self.world_size, self.clips, self.t0 = world_size, 0, time.perf_counter()

    def seconds(self) -> float:
        return time.perf_counter() - self.t0

    def rate(self) -> float:
        return self.clips * self.world_size / max(self.seconds(), 1e-9)


def _progress_bar(show: bool, total: int, initial: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, disable=not show, dynamic_ncols=True, file=sys.stdout,
                leave=False)


def train_one_epoch(model: nn.Module, criterion: LossFn, optimizer: torch.optim.Optimizer, schedule: Any,
                    loader: Iterable[dict[str, Any]], device: torch.device, epoch: int, options: EpochOptions,
                    ema: ModelEma | None = None, scaler: torch.amp.GradScaler | None = None) -> EpochOutcome:
    """Run optimiser steps ``options.start_step .. options.num_steps - 1`` of epoch ``epoch`` (0-based).

    Args:
        model: the model to train (possibly wrapped in DDP).
        criterion: ``criterion(logits, targets)``; targets are labels (B,) or soft targets (B, K).
        optimizer: the optimiser.
        schedule: the per-step LR schedule (``.step()``), stepped after each optimiser step.
        loader: yields batches ``{"video": (B, C, T, H, W), "label": (B,), ...}``, starting at
            ``options.start_step``.
        device: where to run.
        epoch: the epoch's index, for messages.
        options: the epoch's span, numerics and reporting (:class:`EpochOptions`).
        ema: updated after every optimiser step, or None.
        scaler: the fp16 gradient scaler, or None.

    Raises:
        NonFiniteLossError: the loss was NaN/inf on some rank (no weights were updated by that step).
        LoaderWorkerError: a loader worker died (the message names it and how).
        LoaderStartError: the loader's workers could not be started (``start_loader``).
    """
    batches, global_step = start_loader(loader), options.global_step
    model.train()
    show_bar = options.is_main and sys.stdout.isatty()
    desc = f"epoch {epoch + 1}/{options.num_epochs}"
    bar = _progress_bar(show_bar, options.num_steps, options.start_step, desc)
    meter = _Throughput(options.world_size)
    step = options.start_step
    try:
        for step in range(options.start_step, options.num_steps):
            value, nonfinite, n = _accumulate(model, criterion, batches, device, options, scaler)
            meter.clips += n
            stop, due = _agree_to_stop(nonfinite, options, epoch, step, global_step)
            _optimizer_step(model, optimizer, schedule, scaler, options.clip_grad, ema)
            global_step += 1
            rate = meter.rate()
            _report_step(bar, options, desc, step, value, optimizer.param_groups[-1]["lr"], rate, global_step,
                         console=not show_bar)
            if stop and step + 1 < options.num_steps:
                return EpochOutcome(step + 1, True, global_step, meter.seconds(), rate)
            if due and options.on_checkpoint is not None and step + 1 < options.num_steps:
                options.on_checkpoint(step + 1, global_step)
    except RuntimeError as err:
        dead = worker_death(err, batches, f"during epoch {epoch + 1}, step {step + 1} of {options.num_steps}")
        if dead is None:
            raise
        raise dead from None
    finally:
        bar.close()
    return EpochOutcome(options.num_steps, False, global_step, meter.seconds(), meter.rate())


def _report_step(bar: Any, options: EpochOptions, desc: str, step: int, loss: float, lr: float, rate: float,
                 global_step: int, console: bool) -> None:
    """Advance the progress bar; every ``log_period`` steps (and at the last) the main process also
    logs the step: a console line (when no progress bar shows it) and TensorBoard scalars."""
    bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.3g}", clips_s=f"{rate:.1f}", refresh=False)
    bar.update(1)
    if not options.is_main or ((step + 1) % options.log_period and step + 1 != options.num_steps):
        return
    if console:
        logger.info("%s step %d/%d loss %.4f lr %.4g clips/s %.2f", desc, step + 1, options.num_steps, loss, lr, rate)
    if options.writer is not None:
        options.writer.add_scalar("train/loss", loss, global_step)
        options.writer.add_scalar("train/lr", lr, global_step)
