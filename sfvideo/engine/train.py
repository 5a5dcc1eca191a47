"""Training orchestration: the config becomes objects once, then epochs, checkpoints and signals.

Entry point: :func:`train` (``tools/train_video.py`` parses the command line and calls it).
The pieces it composes each live where a reader would look for them:

* :func:`sfvideo.engine.loop.train_one_epoch` - the step loop, a function of explicit objects
  (:func:`epoch_options` gathers its :class:`~sfvideo.engine.loop.EpochOptions` from the run);
* :mod:`sfvideo.engine.factories` - the default model, dataset and mixup builders;
* :func:`sfvideo.engine.evaluate.evaluate` - single-view validation;
* :mod:`sfvideo.engine.determinism` - RNG capture/restore, per-item seeding, the resumable sampler;
* :mod:`sfvideo.engine.train_state` - what ``last.pth`` holds, writing it, resuming from it;
* :mod:`sfvideo.engine.ema`, :mod:`sfvideo.engine.losses`, :mod:`sfvideo.engine.optim`.

Single process::

    python tools/train_video.py --cfg k400_tiny.yaml OUTPUT_DIR runs/tiny

One machine, N processes (gloo on CPU, nccl on GPU)::

    torchrun --nproc_per_node N tools/train_video.py --cfg k400_tiny.yaml OUTPUT_DIR runs/tiny

Several machines, through torchrun's rendezvous (the same command on every machine)::

    torchrun --nnodes 2 --nproc_per_node 8 --rdzv_backend c10d --rdzv_endpoint HOST:29500 \\
        --rdzv_id tiny tools/train_video.py --cfg k400_tiny.yaml OUTPUT_DIR /shared/runs/tiny

Exact resume. ``OUTPUT_DIR/checkpoints/last.pth`` holds model, optimiser, schedule position,
gradient scaler, EMA, epoch, global step, every rank's RNG states and the partial-epoch
sums. Randomness is made independent of where a run was interrupted:

* the sample order of epoch ``e`` comes from ``DistributedSampler(seed=RNG_SEED)`` with
  ``set_epoch(e)``;
* each training item's augmentation is drawn from RNGs seeded by ``(RNG_SEED, e, index)``
  (:class:`~sfvideo.engine.determinism.SeededDataset`), so it does not depend on which worker or
  process loads it; DataLoader workers themselves are seeded from ``(RNG_SEED, e, rank, worker id)``;
* the main process's RNGs (mixup/cutmix, drop path) are reseeded from ``(RNG_SEED, e, rank)``
  at the start of every epoch.

SIGINT/SIGTERM set a flag; at the next optimiser-step boundary every rank agrees to stop, a
checkpoint recording the step within the epoch is written (with the RNG states at that
point), and :func:`train` returns a result with ``status == "interrupted"`` and ``signal`` set;
``tools/train_video.py`` then exits with ``result.exit_status``, 128 + the signal number (130
for SIGINT, 143 for SIGTERM), so a scheduler can tell an interrupted run from a finished one.
Resuming skips the batches already done in that epoch (the
sampler starts after them), so the resumed run takes exactly the steps the uninterrupted run
would have taken. ``TRAIN.CHECKPOINT_MINUTES`` also writes such a mid-epoch checkpoint every so
many minutes (rank 0's clock, agreed at a step boundary), so a SIGKILL loses at most that much.

From shards (``DATA.FORMAT shards``, :mod:`sfvideo.data.shards`) the training set is an iterable
dataset whose epoch order is a pure function of ``(RNG_SEED, epoch)`` and the index's sample
counts; the loop records each reading role's stream position (:class:`ConsumedData`) and a
mid-epoch checkpoint keeps it, so a resumed epoch reads on from there and decodes nothing twice.

A non-finite loss raises :class:`NonFiniteLossError` before the optimiser step, without writing
a checkpoint: ``last.pth`` stays the last good one.

Run directory (:mod:`sfvideo.engine.rundir`): rank 0 locks ``OUTPUT_DIR``; ``last.pth`` is checked
against the config before anything is written; a resume repairs what a SIGKILL interrupted.
Resuming with another world size keeps the run's LR curve as a function of epochs (the schedule
is placed by epochs done, the peak LR stays the first start's).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset

from sfvideo.checkpoint import CheckpointError, checkpoint_meta, load_pretrained
from sfvideo.data.build import class_names_from_cfg
from sfvideo.data.kinetics import collate_train
from sfvideo.engine import distributed as du
from sfvideo.engine.determinism import (
    ResumableSampler,
    SeededDataset,
    WorkerInit,
    loader_generator,
    reseed_epoch,
    seed_all,
)
from sfvideo.engine.ema import ModelEma
from sfvideo.engine.evaluate import eval_loader, evaluate
from sfvideo.engine.factories import default_dataset_fn, default_mixup_fn, default_model_fn
from sfvideo.engine.loaders import LoaderStartError, LoaderWorkerError
from sfvideo.engine.loop import EpochOptions, EpochStats, NonFiniteLossError, train_one_epoch, unwrap
from sfvideo.engine.losses import classification_loss
from sfvideo.engine.optim import build_optimizer, build_schedule, scaled_lr, total_batch_size
from sfvideo.engine.plan import planned_epochs, planned_warmup_epochs, steps_line
from sfvideo.engine.rundir import (
    RunDirError,
    append_metrics,
    load_resume_checkpoint,
    lock_run_dir,
    record_config,
    repair_run_dir,
)
from sfvideo.engine.train_state import (
    LAST,
    ConsumedData,
    restore_training_state,
    rng_snapshot,
    training_state,
    write_checkpoint,
)
from sfvideo.utils.lock import DirLock
from sfvideo.utils.logging import setup_logging

__all__ = ["NonFiniteLossError", "RunDirError", "TRAINING_ERRORS", "TrainResult", "TrainingRun", "append_metrics",
           "build_training", "run_training", "train"]

logger = logging.getLogger("sfvideo.engine")

# What ends a training run with a message that says it all (a tool prints it in one line, no traceback).
TRAINING_ERRORS = (NonFiniteLossError, CheckpointError, RunDirError, LoaderWorkerError, LoaderStartError)


# ------------------------------------------------------------------------------------ objects
@dataclass
class TrainResult:
    """What :func:`train` returns."""

    status: str  # "finished" or "interrupted"
    epoch: int  # completed epochs
    step: int  # optimiser steps taken in total
    best_top1: float | None
    output_dir: Path
    history: list[dict[str, Any]] = field(default_factory=list)
    signal: int | None = None  # the signal that interrupted the run (any rank's), else None

    @property
    def exit_status(self) -> int:
        """0 when finished; 128 + the signal number when interrupted (the shell's convention)."""
        return 0 if self.signal is None else 128 + self.signal


class StopFlag:
    """Set by SIGINT/SIGTERM; a second SIGINT interrupts at once."""

    def __init__(self):
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def __call__(self) -> bool:
        return self.signum is not None

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be installed from the main thread
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum

    def restore(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()

    def name(self) -> str:
        try:
            return signal.Signals(self.signum).name
        except Exception:
            return "a signal (on another process)"


@dataclass
class TrainState:
    """What changes as the run goes: position, best score, the current epoch's sums, history."""

    start_epoch: int = 0
    start_step: int = 0  # steps already done in epoch ``start_epoch`` (mid-epoch resume)
    global_step: int = 0
    best_top1: float | None = None
    stats: EpochStats = field(default_factory=EpochStats)
    history: list[dict[str, Any]] = field(default_factory=list)
    epoch_rate: float = 0.0  # clips/s of the last completed epoch
    resumed_data: dict[str, Any] | None = None  # this rank's ConsumedData.state() at a mid-epoch resume
    epoch_running: int = 0  # the epoch the loop is in (0-based)
    consumed: ConsumedData | None = None  # what the current epoch's loop has taken from its loader


class PeriodicCheckpoint:
    """Whether ``TRAIN.CHECKPOINT_MINUTES`` have passed since the last checkpoint (0: never)."""

    def __init__(self, minutes: float):
        self.seconds, self.last = minutes * 60.0, time.monotonic()

    def due(self) -> bool:
        return self.seconds > 0 and time.monotonic() - self.last >= self.seconds

    def written(self) -> None:
        self.last = time.monotonic()


@dataclass
class TrainingRun:
    """Everything one run needs, built once from the config by :func:`build_training`."""

    cfg: Any
    device: torch.device
    rank: int
    world: int
    out: Path
    model: nn.Module  # DDP-wrapped when world > 1
    train_set: SeededDataset | IterableDataset  # IterableDataset: shards (then ``sampler`` is None)
    val_loader: DataLoader | None
    sampler: ResumableSampler | None
    mixup: Callable | None
    optimizer: torch.optim.Optimizer
    schedule: Any
    scaler: torch.amp.GradScaler | None
    ema: ModelEma | None
    steps_per_epoch: int
    meta: dict[str, Any] = field(default_factory=dict)  # model, input protocol, class names (checkpoint_meta)
    state: TrainState = field(default_factory=TrainState)
    stop: StopFlag = field(default_factory=StopFlag)
    writer: Any = None
    lock: DirLock | None = None  # rank 0's lock on OUTPUT_DIR, released when the run ends
    periodic: PeriodicCheckpoint = field(default_factory=lambda: PeriodicCheckpoint(0.0))

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def ckpt_dir(self) -> Path:
        return self.out / "checkpoints"


# ------------------------------------------------------------------------------------ builders
def _build_model(cfg, model_fn: Callable, device: torch.device, resuming: bool, main: bool) -> nn.Module:
    """The model with identical initial weights on every rank, ``TRAIN.CHECKPOINT`` loaded unless resuming."""
    seed_all(cfg.RNG_SEED)
    model = model_fn(cfg)
    if cfg.TRAIN.CHECKPOINT and not resuming:
        # Fine-tuning on another label set re-initialises the classifier; anything else missing fails.
        load_pretrained(model, cfg.TRAIN.CHECKPOINT, use_ema=cfg.TRAIN.CHECKPOINT_USE_EMA,
                        log=logger.info if main else None, allow_new_classifier=True,
                        allow_partial=cfg.TRAIN.ALLOW_PARTIAL_CHECKPOINT)
    model.to(device)
    logger.info("model %s: %.2fM parameters", cfg.MODEL.ARCH, sum(p.numel() for p in model.parameters()) / 1e6)
    return model


def _steps_per_epoch(cfg, samples_per_rank: int, dataset_len: int, world: int) -> int:
    """Optimiser steps per epoch (``TRAIN.MAX_STEPS_PER_EPOCH`` caps it); at least one."""
    bs, accum = cfg.TRAIN.BATCH_SIZE, cfg.TRAIN.ACCUM_STEPS
    steps = samples_per_rank // bs // accum
    if cfg.TRAIN.MAX_STEPS_PER_EPOCH > 0:
        steps = min(steps, cfg.TRAIN.MAX_STEPS_PER_EPOCH)
    if steps < 1:
        raise ValueError(f"the training set ({dataset_len} clips) is smaller than one optimiser step "
                         f"(TRAIN.BATCH_SIZE {bs} x {world} processes x TRAIN.ACCUM_STEPS {accum})")
    return steps


def _training_set(cfg, dataset, rank: int, world: int) -> tuple[Any, ResumableSampler | None]:
    """The training set and its sampler: a map-style dataset seeded per item and sampled by a
    ``ResumableSampler``; an iterable one (shards) orders and splits itself (no sampler)."""
    if isinstance(dataset, IterableDataset):
        return dataset, None
    train_set = SeededDataset(dataset, cfg.RNG_SEED)
    return train_set, ResumableSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=cfg.RNG_SEED,
                                       drop_last=False)


def _build_optimization(cfg, model: nn.Module, steps_per_epoch: int, world: int):
    """AdamW with the LR scaled to the total batch, and its warmup/cosine schedule."""
    bs, accum = cfg.TRAIN.BATCH_SIZE, cfg.TRAIN.ACCUM_STEPS
    total_batch = total_batch_size(bs, world, accum)
    peak_lr = scaled_lr(cfg.SOLVER.BASE_LR, total_batch, cfg.SOLVER.LR_BASE_BATCH)
    optimizer = build_optimizer(model, peak_lr, cfg.SOLVER.WEIGHT_DECAY, cfg.SOLVER.BETAS, cfg.SOLVER.LAYER_DECAY)
    schedule = build_schedule(cfg, optimizer, steps_per_epoch, peak_lr, total_batch)
    logger.info("total batch %d (%d x %d processes x %d accumulation), peak LR %.3g, %s", total_batch, bs, world,
                accum, peak_lr, steps_line(cfg, steps_per_epoch))
    return optimizer, schedule


def _with_planned_epochs(cfg, steps_per_epoch: int):
    """``cfg`` with ``SOLVER.MAX_EPOCH`` raised as ``SOLVER.MIN_STEPS`` asks, and
    ``SOLVER.WARMUP_EPOCHS`` with it (the log says so)."""
    epochs = planned_epochs(cfg, steps_per_epoch)
    if epochs == cfg.SOLVER.MAX_EPOCH:
        return cfg
    warmup = planned_warmup_epochs(cfg, epochs)
    logger.warning("SOLVER.MAX_EPOCH %d raised to %d (and SOLVER.WARMUP_EPOCHS %g to %.3g): %d epochs of %d optimiser "
                   "steps would be %d, fewer than the recipe's SOLVER.MIN_STEPS %d (set SOLVER.MIN_STEPS 0 to train "
                   "%d epochs)", cfg.SOLVER.MAX_EPOCH, epochs, cfg.SOLVER.WARMUP_EPOCHS, warmup, cfg.SOLVER.MAX_EPOCH,
                   steps_per_epoch, cfg.SOLVER.MAX_EPOCH * steps_per_epoch, cfg.SOLVER.MIN_STEPS, cfg.SOLVER.MAX_EPOCH)
    raised = cfg.clone()
    raised.SOLVER.MAX_EPOCH = epochs
    raised.SOLVER.WARMUP_EPOCHS = warmup
    return raised.freeze()


def _wrap_ddp(cfg, model: nn.Module, device: torch.device, world: int) -> nn.Module:
    if world == 1:
        return model
    ddp_kwargs = {"device_ids": [device.index]} if device.type == "cuda" else {}
    return nn.parallel.DistributedDataParallel(model, find_unused_parameters=cfg.TRAIN.FIND_UNUSED_PARAMETERS,
                                               **ddp_kwargs)


def _open_writer(out: Path) -> Any:
    """A TensorBoard writer, or None when tensorboard is not installed (metrics.jsonl is the record)."""
    try:
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(str(out / "tensorboard"))
    except Exception:
        return None


def _prepare_output(cfg, out: Path, rank: int, ckpt: dict[str, Any] | None) -> None:
    """Rank 0: checkpoint folder, ``config.yaml`` (with history), repairs after a kill; then the log."""
    notes = []
    if rank == 0:
        (out / "checkpoints").mkdir(parents=True, exist_ok=True)
        notes.append(record_config(out, cfg.dump()))
        notes += repair_run_dir(out, ckpt)
    setup_logging(out, rank)
    for note in filter(None, notes):
        logger.warning("%s", note)


def _align_schedule(run: TrainingRun, point, saved: dict[str, Any], ckpt_world: int | None) -> None:
    """The LR is a function of progress in epochs, on the curve of the run's first start.

    A resume with another world size (or batch) has another number of steps per epoch: the
    schedule is placed by epochs done, and the peak LR stays the one the run started with.
    """
    cfg, sch = run.cfg, run.schedule
    sch.seek(point.epoch, point.step_in_epoch)
    ref = saved.get("total_batch") or (ckpt_world or run.world) * cfg.TRAIN.BATCH_SIZE * cfg.TRAIN.ACCUM_STEPS
    if ref != sch.total_batch:
        peak = scaled_lr(cfg.SOLVER.BASE_LR, ref, cfg.SOLVER.LR_BASE_BATCH)
        logger.warning("the run started with a total batch of %d clips, this start has %d: its LR curve is kept "
                       "(peak %.3g, not %.3g), as a function of epochs (%d steps per epoch now)", ref,
                       sch.total_batch, peak, sch.peak_lr, run.steps_per_epoch)
        sch.peak_lr, sch.total_batch = peak, ref
        sch.apply()


def _check_data_position(run: TrainingRun, point) -> None:
    """A mid-epoch resume from shards needs each reading role's stream position, recorded with as
    many loader workers as this run has; without them the epoch restarts (a warning says so)."""
    if run.sampler is not None or not point.step_in_epoch:
        return
    positions = (point.data or {}).get("positions")
    workers = run.train_set.reading.workers
    if positions is None or len(positions) != workers:
        logger.warning("the checkpoint's position in epoch %d was recorded with %s shard readers per process, this "
                       "run has %d: the rest of epoch %d starts from its beginning", point.epoch + 1,
                       len(positions) if positions else "no", workers, point.epoch + 1)
        point.step_in_epoch = 0


def _resume(run: TrainingRun, path: Path, ckpt: dict[str, Any]) -> None:
    point = restore_training_state(path, model=unwrap(run.model), optimizer=run.optimizer, schedule=run.schedule,
                                   scaler=run.scaler, ema=run.ema, mixup=run.mixup, rank=run.rank, world=run.world,
                                   ckpt=ckpt)
    _check_data_position(run, point)
    _align_schedule(run, point, ckpt.get("scheduler") or {}, ckpt.get("world_size"))
    st = run.state
    st.resumed_data = point.data
    st.start_epoch, st.start_step, st.global_step, st.best_top1 = (point.epoch, point.step_in_epoch,
                                                                   point.global_step, point.best_top1)
    if st.start_step and run.main:  # sums over all ranks live on rank 0 only, so the epoch all-reduce stays right
        s = point.epoch_stats
        st.stats = EpochStats(s.get("loss_sum", 0.0), s.get("clips", 0.0), s.get("failed", 0.0))


def build_training(cfg, model_fn: Callable | None = None, dataset_fn: Callable | None = None,
                   mixup_fn: Callable | None = None) -> TrainingRun:
    """Turn ``cfg`` into the run's objects (resuming from ``last.pth`` when ``TRAIN.AUTO_RESUME`` allows).

    Before writing anything into ``OUTPUT_DIR``, rank 0 locks it and every rank checks that
    ``last.pth`` fits ``cfg`` (:mod:`sfvideo.engine.rundir`); the lock is released when the run ends.
    """
    device = du.resolve_device(cfg.DEVICE)
    du.set_num_threads(cfg.NUM_THREADS)
    du.init_distributed(device)
    rank, world, out = du.get_rank(), du.get_world_size(), Path(cfg.OUTPUT_DIR)
    lock = lock_run_dir(out) if rank == 0 else None
    try:
        run = _build_run(cfg, device, rank, world, out, model_fn, dataset_fn, mixup_fn)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    run.lock = lock
    return run


def _build_run(cfg, device: torch.device, rank: int, world: int, out: Path, model_fn: Callable | None,
               dataset_fn: Callable | None, mixup_fn: Callable | None) -> TrainingRun:
    resume_path = out / "checkpoints" / LAST
    resuming = bool(cfg.TRAIN.AUTO_RESUME) and resume_path.is_file()
    ckpt = load_resume_checkpoint(resume_path, cfg, out) if resuming else None
    _prepare_output(cfg, out, rank, ckpt)
    logger.info("output dir %s, world size %d, device %s", out, world, device)
    if cfg.TRAIN.AMP == "fp16" and device.type != "cuda":
        raise ValueError("TRAIN.AMP fp16 needs CUDA; use TRAIN.AMP bf16 or none on the CPU")
    model = _build_model(cfg, model_fn or default_model_fn, device, resuming, rank == 0)
    dataset_fn = dataset_fn or default_dataset_fn
    train_set, sampler = _training_set(cfg, dataset_fn(cfg, "train"), rank, world)
    val_set = dataset_fn(cfg, "val") if cfg.TRAIN.EVAL_PERIOD > 0 else None
    mixup = (mixup_fn or default_mixup_fn)(cfg)
    per_rank = sampler.num_samples if sampler is not None else train_set.samples_per_rank
    steps = _steps_per_epoch(cfg, per_rank, len(train_set), world)
    cfg = _with_planned_epochs(cfg, steps)
    optimizer, schedule = _build_optimization(cfg, model, steps, world)
    run = TrainingRun(
        cfg=cfg, device=device, rank=rank, world=world, out=out, model=model, train_set=train_set,
        val_loader=eval_loader(val_set, cfg.TEST.BATCH_SIZE, cfg.DATA.NUM_WORKERS) if val_set is not None else None,
        sampler=sampler, mixup=mixup, optimizer=optimizer, schedule=schedule,
        scaler=torch.amp.GradScaler("cuda") if cfg.TRAIN.AMP == "fp16" else None,
        ema=ModelEma(model, cfg.TRAIN.EMA_DECAY) if cfg.TRAIN.EMA_DECAY > 0 else None, steps_per_epoch=steps,
        meta=checkpoint_meta(cfg, class_names_from_cfg(cfg)), periodic=PeriodicCheckpoint(cfg.TRAIN.CHECKPOINT_MINUTES))
    run.model = _wrap_ddp(cfg, model, device, world)
    if ckpt is not None:
        _resume(run, resume_path, ckpt)
    if run.main:
        run.writer = _open_writer(out)
    return run


# ------------------------------------------------------------------------------------ epochs
def epoch_loader(run: TrainingRun, epoch: int, skip_steps: int = 0, positions: list[int] | None = None,
                 ) -> DataLoader:
    """The training DataLoader of ``epoch``, starting after ``skip_steps`` optimiser steps (from
    shards: each reading role's stream at ``positions``)."""
    cfg = run.cfg
    accum = cfg.TRAIN.ACCUM_STEPS
    if run.sampler is None:
        run.train_set.start_epoch(epoch, run.steps_per_epoch * accum, skip_steps * accum, positions)
    else:
        run.sampler.set_epoch(epoch)
        run.sampler.skip = skip_steps * cfg.TRAIN.BATCH_SIZE * accum
        run.train_set.set_epoch(epoch)
    return DataLoader(
        run.train_set, batch_size=cfg.TRAIN.BATCH_SIZE, sampler=run.sampler, num_workers=cfg.DATA.NUM_WORKERS,
        collate_fn=collate_train, drop_last=True, pin_memory=cfg.DATA.PIN_MEMORY and run.device.type == "cuda",
        worker_init_fn=WorkerInit(cfg.RNG_SEED, epoch, run.rank),
        generator=loader_generator(cfg.RNG_SEED, epoch, run.rank),
        persistent_workers=False)


def epoch_options(run: TrainingRun, start_step: int) -> EpochOptions:
    """The :class:`~sfvideo.engine.loop.EpochOptions` of an epoch of ``run`` that starts at ``start_step``."""
    cfg = run.cfg
    return EpochOptions(
        num_steps=run.steps_per_epoch, start_step=start_step, global_step=run.state.global_step,
        accum_steps=cfg.TRAIN.ACCUM_STEPS, amp=cfg.TRAIN.AMP, norm=(cfg.DATA.MEAN, cfg.DATA.STD), mixup=run.mixup,
        clip_grad=cfg.TRAIN.CLIP_GRAD, stats=run.state.stats, should_stop=run.stop, num_epochs=cfg.SOLVER.MAX_EPOCH,
        log_period=cfg.TRAIN.LOG_PERIOD, writer=run.writer, world_size=run.world, is_main=run.main,
        checkpoint_due=run.periodic.due, on_checkpoint=lambda step, total: _periodic_checkpoint(run, step, total))


def _periodic_checkpoint(run: TrainingRun, next_step: int, global_step: int) -> None:
    """Collective: a ``TRAIN.CHECKPOINT_MINUTES`` checkpoint at a step boundary of the current epoch."""
    run.state.global_step = global_step
    save_checkpoint(run, run.state.epoch_running, step_in_epoch=next_step)
    if run.main:
        logger.info("periodic checkpoint at epoch %d, step %d/%d: %s", run.state.epoch_running + 1, next_step,
                    run.steps_per_epoch, run.ckpt_dir / LAST)


def _kept(run: TrainingRun) -> str:
    """Which checkpoint a run that stops with an error leaves, for the message."""
    last = run.ckpt_dir / LAST
    return f"{last} is the last good checkpoint" if last.is_file() else \
        f"no checkpoint was written yet ({last} does not exist)"


def _worker_stopped(run: TrainingRun, err: LoaderWorkerError) -> LoaderWorkerError:
    """``err`` (a loader worker died) with which checkpoint the stopped run keeps and how to resume."""
    resume = "run the same command to resume from it" if (run.ckpt_dir / LAST).is_file() else "run it again"
    return LoaderWorkerError(f"{err}; training stopped: {_kept(run)}; {resume}")


def run_epoch(run: TrainingRun, epoch: int) -> bool:
    """Run the optimiser steps of ``epoch`` (0-based). Returns False when stopped by a signal."""
    cfg, st = run.cfg, run.state
    first = st.start_step if epoch == st.start_epoch else 0
    resumed = (st.resumed_data or {}) if first else {}
    if first == 0:
        reseed_epoch(cfg.RNG_SEED, epoch, run.rank, run.mixup)
        st.stats = EpochStats()
    positions = None
    if run.sampler is None:  # shards: each reading role's stream position (0s at the epoch's start)
        positions = resumed.get("positions") or [0] * run.train_set.reading.workers
    st.epoch_running = epoch
    st.consumed = ConsumedData(epoch_loader(run, epoch, first, positions), positions, resumed.get("failed"))
    loader = st.consumed
    criterion = classification_loss(cfg.AUG.LABEL_SMOOTHING)
    try:
        outcome = train_one_epoch(run.model, criterion, run.optimizer, run.schedule, loader, run.device, epoch,
                                  epoch_options(run, first), ema=run.ema, scaler=run.scaler)
    except NonFiniteLossError as err:
        raise NonFiniteLossError(f"{err} {_kept(run)}; try a lower SOLVER.BASE_LR, TRAIN.CLIP_GRAD, or TRAIN.AMP "
                                 "none") from None
    except LoaderWorkerError as err:
        raise _worker_stopped(run, err) from None
    st.global_step = outcome.global_step
    if outcome.stopped:
        save_checkpoint(run, epoch, step_in_epoch=outcome.next_step)
        logger.warning("stopped by %s at epoch %d, step %d/%d: resumable checkpoint written to %s", run.stop.name(),
                       epoch + 1, outcome.next_step, run.steps_per_epoch, run.ckpt_dir / LAST)
        return False
    st.epoch_rate = outcome.clips_per_s
    return True


def save_checkpoint(run: TrainingRun, epoch: int, step_in_epoch: int = 0, numbered: bool = False,
                    best: bool = False, record: dict[str, Any] | None = None) -> None:
    """Collective: every rank contributes its RNG state; rank 0 writes ``last.pth`` atomically.

    Args:
        epoch: completed epochs.
        step_in_epoch: optimiser steps already done in epoch ``epoch`` (mid-epoch stop), else 0.
        record: the epoch's metrics line, kept in the checkpoint (restored if a kill loses it).
    """
    consumed = run.state.consumed if step_in_epoch else None
    parts = du.all_gather_object((rng_snapshot(run.mixup), consumed.state() if consumed is not None else None))
    rng, data_state = [p[0] for p in parts], [p[1] for p in parts]
    stats = run.state.stats
    if step_in_epoch:
        stats = EpochStats(*du.all_reduce_sum(stats.as_list()).tolist())
    run.periodic.written()
    if not run.main:
        du.barrier()
        return
    state = training_state(
        model=unwrap(run.model), optimizer=run.optimizer, schedule=run.schedule, scaler=run.scaler, ema=run.ema,
        epoch=epoch, global_step=run.state.global_step, step_in_epoch=step_in_epoch, epoch_stats=stats.as_dict(),
        best_top1=run.state.best_top1, rng=rng, world_size=run.world, cfg=run.cfg.to_dict(), meta=run.meta,
        metrics=record, data_state=data_state if step_in_epoch else None)
    write_checkpoint(state, run.ckpt_dir, numbered=numbered, best=best)
    du.barrier()


def _validate(run: TrainingRun, done: int, record: dict[str, Any]) -> bool:
    """Validate the model (and its EMA) into ``record``; True when the top-1 is the best so far."""
    cfg = run.cfg
    kw = dict(amp=cfg.TRAIN.AMP, max_views=cfg.TEST.MAX_VIEWS_PER_BATCH, norm=(cfg.DATA.MEAN, cfg.DATA.STD))
    val = evaluate(unwrap(run.model), run.val_loader, run.device, **kw)
    record.update(val_top1=val["top1"], val_top5=val["top5"], val_loss=val["loss"],
                  val_failed_videos=val["failed_videos"])
    if run.ema is not None:
        ema_val = evaluate(run.ema.module, run.val_loader, run.device, **kw)
        record.update(ema_val_top1=ema_val["top1"], ema_val_top5=ema_val["top5"], ema_val_loss=ema_val["loss"])
    is_best = run.state.best_top1 is None or val["top1"] > run.state.best_top1
    if is_best:
        run.state.best_top1 = val["top1"]
    logger.info("epoch %d validation: top1 %.2f top5 %.2f loss %.4f%s", done, val["top1"], val["top5"],
                val["loss"], f" (EMA top1 {record['ema_val_top1']:.2f})" if run.ema is not None else "")
    return is_best


def _write_epoch_record(run: TrainingRun, record: dict[str, Any]) -> None:
    """Rank 0: append to ``metrics.jsonl``, TensorBoard scalars, the epoch's log line."""
    append_metrics(run.out / "metrics.jsonl", record)
    if run.writer is not None:
        for k, v in record.items():
            if isinstance(v, (int, float)) and k != "epoch":
                run.writer.add_scalar(f"epoch/{k}", v, record["epoch"])
        run.writer.flush()
    logger.info("epoch %d done: train loss %.4f, %.2f clips/s, %.0f s", record["epoch"], record["train_loss"],
                record["clips_per_s"], record["time"])


def end_epoch(run: TrainingRun, epoch: int, t_start: float) -> None:
    """Validate, checkpoint, and append the epoch's metrics line (``epoch`` is 0-based)."""
    from sfvideo.data import check_failure_fraction

    cfg, st = run.cfg, run.state
    loss_sum, clips, failed = du.all_reduce_sum(st.stats.as_list()).tolist()
    names = du.all_gather_object(st.consumed.failed if st.consumed is not None else [])
    done = epoch + 1
    record: dict[str, Any] = {
        "epoch": done, "train_loss": loss_sum / max(clips, 1.0), "lr": run.schedule.get_lr(),
        "clips_per_s": st.epoch_rate, "val_top1": None, "val_top5": None, "val_loss": None,
        "failed_videos": int(failed), "failed_samples": sorted(n for part in names for n in part),
    }
    # From shards a bad sample is skipped, not replaced: the samples read are the clips plus the skipped
    read = clips + failed if run.sampler is None else clips
    check_failure_fraction(int(failed), int(read), cfg.DATA.MAX_FAILURE_FRACTION)
    last_epoch = done == cfg.SOLVER.MAX_EPOCH
    is_best = False
    if run.val_loader is not None and (done % cfg.TRAIN.EVAL_PERIOD == 0 or last_epoch):
        try:
            is_best = _validate(run, done, record)
        except LoaderWorkerError as err:  # before this epoch's checkpoint: a resume runs the epoch again
            raise _worker_stopped(run, LoaderWorkerError(f"{err} after epoch {done}")) from None
    numbered = cfg.TRAIN.CHECKPOINT_PERIOD > 0 and (done % cfg.TRAIN.CHECKPOINT_PERIOD == 0 or last_epoch)
    record["time"] = time.time() - t_start
    save_checkpoint(run, done, 0, numbered=numbered, best=is_best, record=record)
    st.history.append(record)
    if run.main:
        _write_epoch_record(run, record)


def _agreed_signal(run: TrainingRun) -> int:
    """Collective: the signal that stopped the run on some rank (SIGTERM if none is known)."""
    signum = int(du.all_reduce_max([float(run.stop.signum or 0)])[0])
    return signum or int(signal.SIGTERM)


def run_training(run: TrainingRun) -> TrainResult:
    """Run the remaining epochs of ``run``; stops cleanly (checkpoint written) on SIGINT/SIGTERM."""
    run.stop.install()
    st, max_epoch = run.state, run.cfg.SOLVER.MAX_EPOCH
    completed, status = st.start_epoch, "finished"
    try:
        for epoch in range(st.start_epoch, max_epoch):
            t_start = time.time()
            if not run_epoch(run, epoch):
                status = "interrupted"
                break
            end_epoch(run, epoch, t_start)
            completed = epoch + 1
            stop = du.all_reduce_max([float(run.stop())])[0] > 0
            if stop and completed < max_epoch:
                logger.warning("stopped by %s after epoch %d: resume with the same command", run.stop.name(),
                               completed)
                status = "interrupted"
                break
        signum = _agreed_signal(run) if status == "interrupted" else None
        return TrainResult(status, completed, st.global_step, st.best_top1, run.out, st.history, signum)
    finally:
        run.stop.restore()
        if run.writer is not None:
            run.writer.close()
        if run.lock is not None:
            run.lock.release()


def train(cfg, model_fn: Callable | None = None, dataset_fn: Callable | None = None,
          mixup_fn: Callable | None = None) -> TrainResult:
    """Train as ``cfg`` says, resuming from ``OUTPUT_DIR/checkpoints/last.pth`` when allowed.

    Args:
        cfg: a frozen config from :func:`sfvideo.config.load_config`.
        model_fn: replaces ``build_model(cfg)`` (tests, custom models).
        dataset_fn: replaces ``build_dataset(cfg, split)`` (tests, custom data).
        mixup_fn: replaces ``build_mixup(cfg)``.

    Returns:
        A :class:`TrainResult`; ``status`` is ``"interrupted"`` after SIGINT/SIGTERM.

    Raises:
        NonFiniteLossError: the loss became NaN/inf (``last.pth`` is left as it was).
    """
    return run_training(build_training(cfg, model_fn, dataset_fn, mixup_fn))
