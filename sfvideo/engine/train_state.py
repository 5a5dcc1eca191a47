"""Training checkpoints: what ``checkpoints/last.pth`` holds, how it is written, how a run resumes.

The file is a plain dict (loadable with ``torch.load(..., weights_only=True)``): ``model``,
``optimizer``, ``scheduler``, ``scaler``, ``ema``, ``epoch`` (completed), ``step`` (optimiser steps
in total), ``step_in_epoch`` (steps done in epoch ``epoch`` when stopped mid-epoch, else 0),
``epoch_stats`` (the partial epoch's sums), ``best_top1``, ``rng`` (every rank's RNG states),
``world_size``, ``cfg``, ``meta`` (the model, input protocol and class names, so the
checkpoint runs without its config: ``sfvideo.checkpoint.checkpoint_meta``) and ``data_state``
(every rank's ``ConsumedData.state()`` of a mid-epoch checkpoint: the stream position of each
shard-reading role, and the samples skipped so far). An end-of-epoch
checkpoint also holds ``metrics`` (its epoch's ``metrics.jsonl`` line) and ``copies`` (the
per-epoch/best copies made from it), so a resume after a SIGKILL can restore them
(:mod:`sfvideo.engine.rundir`). ``last.pth`` is always replaced atomically; per-epoch and best
copies are made from it.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import torch
from torch import nn

from sfvideo.checkpoint import CheckpointError, atomic_save, safe_load
from sfvideo.engine.determinism import get_private_rng_state, get_rng_state, set_private_rng_state, set_rng_state
from sfvideo.engine.ema import ModelEma
from sfvideo.utils.io import atomic_write

logger = logging.getLogger("sfvideo.engine")

LAST = "last.pth"
BEST = "best.pth"


def epoch_checkpoint_name(epoch: int) -> str:
    """``epoch_0003.pth`` for ``epoch`` 3 (completed epochs)."""
    return f"epoch_{epoch:04d}.pth"


def copy_atomic(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` through a temporary file and a rename."""
    with open(src, "rb") as fin, atomic_write(dst, "wb") as fout:
        shutil.copyfileobj(fin, fout)


def rng_snapshot(mixup: Any = None) -> dict[str, Any]:
    """This process's RNG states, plus mixup/cutmix's private RNG (``mixup``: None when it has none)."""
    state = get_rng_state()
    state["mixup"] = get_private_rng_state(mixup)
    return state


def training_state(*, model: nn.Module, optimizer: torch.optim.Optimizer, schedule: Any,
                   scaler: torch.amp.GradScaler | None, ema: ModelEma | None, epoch: int, global_step: int,
                   step_in_epoch: int, epoch_stats: dict[str, float], best_top1: float | None,
                   rng: list[dict[str, Any]], world_size: int, cfg: dict[str, Any],
                   meta: dict[str, Any] | None = None, metrics: dict[str, Any] | None = None,
                   data_state: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The dict written to ``last.pth`` (see the module docstring for the keys)."""
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": schedule.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "ema": ema.state_dict() if ema is not None else None,
        "epoch": epoch,
        "step": global_step,
        "step_in_epoch": step_in_epoch,
        "epoch_stats": epoch_stats,
        "best_top1": best_top1,
        "rng": rng,
        "world_size": world_size,
        "cfg": cfg,
        "meta": meta,
        "metrics": metrics,
        "data_state": data_state,
    }


def write_checkpoint(state: dict[str, Any], ckpt_dir: Path, numbered: bool = False, best: bool = False) -> Path:
    """Write ``ckpt_dir/last.pth`` atomically, then copy it to ``epoch_NNNN.pth`` and/or ``best.pth``.

    ``state["copies"]`` records the copies' names first, so a resume can remake one a kill prevented.
    """
    copies = ([epoch_checkpoint_name(state["epoch"])] if numbered else []) + ([BEST] if best else [])
    state["copies"] = copies
    last = atomic_save(state, Path(ckpt_dir) / LAST)
    for name in copies:
        copy_atomic(last, Path(ckpt_dir) / name)
    return last


@dataclass
class ResumePoint:
    """Where a resumed run continues: after ``epoch`` epochs and ``step_in_epoch`` steps of the next."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    best_top1: float | None = None
    epoch_stats: dict[str, float] | None = None  # the partial epoch's sums over all ranks
    data: dict[str, Any] | None = None  # this rank's ConsumedData.state() in the partial epoch


def _restore_rng(ckpt: dict[str, Any], path: Path, rank: int, world: int, mixup: Any) -> None:
    rng = ckpt.get("rng") or []
    if len(rng) == world:
        set_rng_state(rng[rank])
        set_private_rng_state(mixup, rng[rank].get("mixup"))
    else:
        logger.warning("%s was written by %d processes, this run has %d: RNG states not restored, "
                       "so this run will not repeat the original exactly", path, len(rng), world)


def restore_training_state(path: Path, *, model: nn.Module, optimizer: torch.optim.Optimizer, schedule: Any,
                           scaler: torch.amp.GradScaler | None, ema: ModelEma | None, mixup: Any, rank: int,
                           world: int, ckpt: dict[str, Any] | None = None) -> ResumePoint:
    """Load ``path`` (a ``last.pth``; ``ckpt`` when already loaded) into the run's objects and RNGs.

    Returns where to continue. An EMA missing from the checkpoint restarts from the loaded weights
    (a warning says so). A mid-epoch checkpoint written by a different number of processes
    restarts that epoch.

    Raises:
        CheckpointError: the checkpoint's model does not fit ``model`` (the file is named).
    """
    ckpt = safe_load(path) if ckpt is None else ckpt
    try:
        model.load_state_dict(ckpt["model"])
    except (RuntimeError, KeyError, TypeError) as err:
        raise CheckpointError(f"{path} cannot be resumed into the model of this config: {err}") from None
    optimizer.load_state_dict(ckpt["optimizer"])
    schedule.load_state_dict(ckpt["scheduler"])
    if scaler is not None and ckpt.get("scaler"):
        scaler.load_state_dict(ckpt["scaler"])
    if ema is not None and ckpt.get("ema"):
        ema.load_state_dict(ckpt["ema"])
    elif ema is not None:
        logger.warning("%s has no EMA weights; the EMA restarts from the current weights", path)
        ema.load_state_dict(model.state_dict())
    _restore_rng(ckpt, path, rank, world, mixup)
    data = ckpt.get("data_state") or []
    point = ResumePoint(int(ckpt["epoch"]), int(ckpt.get("step_in_epoch", 0)), int(ckpt["step"]),
                        ckpt.get("best_top1"), ckpt.get("epoch_stats") or {}, data[rank] if len(data) == world else None)
    if point.step_in_epoch and ckpt.get("world_size") != world:
        logger.warning("resuming mid-epoch with a different number of processes: the rest of epoch %d "
                       "starts from its beginning", point.epoch + 1)
        point.step_in_epoch = 0
    logger.info("resumed from %s: %d epochs done, step %d of epoch %d, global step %d",
                path, point.epoch, point.step_in_epoch, point.epoch + 1, point.global_step)
    return point



class ConsumedData:
    """The batches the training loop takes from its loader, and what they say about the epoch so far.

    Iterating yields ``loader``'s batches unchanged while recording, from their items, the stream
    position each shard-reading role has reached (``stream_role``/``stream_pos``) and the names of
    the samples skipped or substituted on the way (``failed_path``). ``state()`` is what a
    mid-epoch checkpoint keeps of it; ``ConsumedData(loader, **state)`` goes on from there.
    """

    def __init__(self, loader: Iterable[dict[str, Any]], positions: list[int] | None = None,
                 failed: list[str] | None = None):
        self.loader = loader
        self.positions = list(positions) if positions is not None else None
        self.failed = list(failed or [])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """The loader's iterator, started here (so a failure to fork its workers surfaces at
        ``iter()``, where ``engine.loaders.start_loader`` retries it), recording each batch."""
        return _Recording(self, iter(self.loader))

    def record(self, batch: dict[str, Any]) -> None:
        for names in batch.get("failed_path") or []:
            self.failed += [n for n in (names or "").split("\n") if n]
        if self.positions is not None:
            for role, pos in zip(batch["stream_role"], batch["stream_pos"]):
                self.positions[role] = max(self.positions[role], int(pos))

    def state(self) -> dict[str, Any]:
        return {"positions": self.positions, "failed": list(self.failed)}


class _Recording:
    """Iterator of :class:`ConsumedData`: the batches of ``inner`` (the loader's own iterator, whose
    workers ``engine.loaders.worker_death`` inspects), each recorded in ``consumed``."""

    def __init__(self, consumed: ConsumedData, inner: Iterator[dict[str, Any]]):
        self.consumed, self.inner = consumed, inner

    def __iter__(self) -> "_Recording":
        return self

    def __next__(self) -> dict[str, Any]:
        batch = next(self.inner)
        self.consumed.record(batch)
        return batch
