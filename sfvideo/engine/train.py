"""The training loop: AdamW + warmup/cosine, AMP, EMA, accumulation, DDP, exact resume.

Entry point: :func:`train` (``tools/train_video.py`` parses the command line and calls it).

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
  (:class:`SeededDataset`), so it does not depend on which worker or process loads it;
  DataLoader workers themselves are seeded from ``(RNG_SEED, e, rank, worker id)``;
* the main process's RNGs (mixup/cutmix, drop path) are reseeded from ``(RNG_SEED, e, rank)``
  at the start of every epoch.

SIGINT/SIGTERM set a flag; at the next optimiser-step boundary every rank agrees to stop, a
checkpoint recording the step within the epoch is written (with the RNG states at that
point), and :func:`train` returns. Resuming skips the batches already done in that epoch (the
sampler starts after them), so the resumed run takes exactly the steps the uninterrupted run
would have taken. A non-finite loss raises :class:`NonFiniteLossError` before the optimiser
step, without writing a checkpoint: ``last.pth`` stays the last good one.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import os
import random
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from sfvideo.checkpoint import atomic_save, safe_load
from sfvideo.data.transforms import batch_to_device
from sfvideo.engine import distributed as du
from sfvideo.engine.evaluate import atomic_write_text, validate
from sfvideo.utils.amp import autocast_context
from sfvideo.utils.benchmark import peak_rss_mb, train_step
from sfvideo.utils.io import atomic_write
from sfvideo.engine.optim import build_optimizer, build_schedule, scaled_lr, total_batch_size

logger = logging.getLogger("sfvideo.engine")


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the run stopped before updating the weights."""


# --------------------------------------------------------------------------------------- logging
class _TqdmHandler(logging.StreamHandler):
    """Console handler that prints through ``tqdm.write`` so progress bars are not torn."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=sys.stdout)
        except Exception:  # pragma: no cover - never let logging kill training
            self.handleError(record)


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(output_dir: str | os.PathLike | None, rank: int = 0, filename: str = "train.log") -> logging.Logger:
    """Console (rank 0: INFO, others: WARNING) and ``output_dir/filename`` (rank 0) handlers."""
    root = logging.getLogger("sfvideo")
    for h in list(root.handlers):
        if getattr(h, "_sfvideo", False):
            root.removeHandler(h)
            h.close()
    root.setLevel(logging.INFO)
    root.propagate = False
    fmt = logging.Formatter(LOG_FORMAT, datefmt="%Y-%m-%d %H:%M:%S")
    console = _TqdmHandler(sys.stdout)
    console.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    console.setFormatter(fmt)
    console._sfvideo = True
    root.addHandler(console)
    if output_dir is not None and rank == 0:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(Path(output_dir) / filename)
        fh.setFormatter(fmt)
        fh._sfvideo = True
        root.addHandler(fh)
    return logger


# ------------------------------------------------------------------------------------------ RNG
def derive_seed(*parts: int) -> int:
    """A 32-bit seed from a tuple of integers (different tuples give unrelated streams)."""
    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(1)[0])


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def get_rng_state() -> dict[str, Any]:
    """Python, numpy, torch and CUDA RNG states as plain data (loadable with weights_only)."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else [],
    }
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"].cpu() if torch.is_tensor(state["torch"]) else torch.as_tensor(state["torch"]))
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextlib.contextmanager
def seeded_rng(seed: int) -> Iterator[None]:
    """Run a block with python/numpy/torch RNGs seeded by ``seed``, then restore their states."""
    saved = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    seed_all(seed)
    try:
        yield
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])
        torch.set_rng_state(saved[2])


class SeededDataset(Dataset):
    """Wraps a training dataset so item ``i`` of epoch ``e`` draws its augmentation from
    RNGs seeded by ``(seed, e, i)`` whichever worker or process loads it; adds ``index``."""

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset = dataset
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.dataset, "set_epoch"):  # substitute choice and failure count are per epoch
            self.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        with seeded_rng(derive_seed(self.seed, self.epoch, index, 0x5EED)):
            item = self.dataset[index]
        if isinstance(item, dict):
            item.setdefault("index", index)
        return item


def _worker_init(seed: int, epoch: int, rank: int, worker_id: int) -> None:
    seed_all(derive_seed(seed, epoch, rank, worker_id))


class _WorkerInit:
    """Picklable ``worker_init_fn`` seeding worker ``w`` from ``(seed, epoch, rank, w)``."""

    def __init__(self, seed: int, epoch: int, rank: int):
        self.seed, self.epoch, self.rank = seed, epoch, rank

    def __call__(self, worker_id: int) -> None:
        _worker_init(self.seed, self.epoch, self.rank, worker_id)


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` that can start an epoch after its first ``skip`` indices."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.skip = 0

    def __iter__(self):
        indices = list(super().__iter__())
        return iter(indices[self.skip:])

    def __len__(self) -> int:
        return max(0, self.num_samples - self.skip)


def train_collate(items: list[dict]) -> dict[str, Any]:
    """Stack ``video`` and ``label``; keep every other field as a list (may hold None)."""
    batch: dict[str, Any] = {
        "video": torch.stack([it["video"] for it in items]),  # (B, C, T, H, W)
        "label": torch.as_tensor([int(it["label"]) for it in items], dtype=torch.long),  # (B,)
    }
    for key in items[0]:
        if key not in batch:
            batch[key] = [it.get(key) for it in items]
    return batch


def count_substituted(batch: dict[str, Any]) -> int:
    """Videos that failed to load and were replaced by substitutes while producing ``batch``."""
    if "num_failed" in batch:
        return int(sum(int(v or 0) for v in batch["num_failed"]))
    return 0


def check_failures(num_failed: int, num_items: int, max_fraction: float) -> None:
    """End-of-epoch check of unreadable training videos (the data package's rule when present)."""
    try:
        from sfvideo.data import check_failure_fraction
    except ImportError:
        check_failure_fraction = None
    if check_failure_fraction is not None:
        check_failure_fraction(num_failed, num_items, max_fraction)
    elif num_items and num_failed / num_items > max_fraction:
        raise RuntimeError(f"{num_failed} of {num_items} training videos could not be read this epoch "
                           f"(above DATA.MAX_FAILURE_FRACTION {max_fraction})")


# ------------------------------------------------------------------------------------------ EMA
class ModelEma:
    """Exponential moving average of a model's parameters and buffers (a frozen deep copy)."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for e, m in zip(self.module.state_dict().values(), model.state_dict().values()):
            if e.dtype.is_floating_point:
                e.lerp_(m.detach(), 1.0 - self.decay)
            else:
                e.copy_(m)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state)


# ----------------------------------------------------------------------------------------- loss
def soft_target_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``-sum_k t_k log softmax(logits)_k`` (B, K) x (B, K)."""
    return torch.sum(-targets * F.log_softmax(logits, dim=-1), dim=-1).mean()


def compute_loss(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    """Cross entropy in float32: soft targets (B, K) from mixup/cutmix, or labels (B,) with smoothing."""
    logits = logits.float()
    if targets.ndim == 2:
        return soft_target_cross_entropy(logits, targets.float())
    return F.cross_entropy(logits, targets, label_smoothing=label_smoothing)


# ---------------------------------------------------------------------------------- checkpoints
def copy_atomic(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` through a temporary file and a rename."""
    with open(src, "rb") as fin, atomic_write(dst, "wb") as fout:
        shutil.copyfileobj(fin, fout)


def checkpoint_dir(cfg) -> Path:
    return Path(cfg.OUTPUT_DIR) / "checkpoints"


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


# ------------------------------------------------------------------------------- builders (hooks)
def _default_model_fn(cfg) -> nn.Module:
    from sfvideo.models import build_model

    return build_model(cfg)


def _default_dataset_fn(cfg, split: str) -> Dataset:
    from sfvideo.data import build_dataset

    return build_dataset(cfg, split)


def _default_mixup_fn(cfg):
    try:
        from sfvideo.data import build_mixup
    except ImportError:  # data package without mixup support
        return None
    return build_mixup(cfg)


def load_initial_weights(model: nn.Module, path: str, use_ema: bool, log: Callable[[str], None]) -> None:
    """``TRAIN.CHECKPOINT``: an image checkpoint (inflated, report printed) or a video checkpoint."""
    from sfvideo import checkpoint as ckpt_mod

    loader = getattr(ckpt_mod, "load_pretrained", None)
    if loader is not None:
        loader(model, path, use_ema=use_ema, log=log)
        return
    state = safe_load(path)  # stand-in until the checkpoint adapter lands: a video state dict
    if isinstance(state, dict) and ("model" in state or "ema" in state):
        state = state["ema"] if use_ema and state.get("ema") else state["model"]
    model.load_state_dict(state)
    log(f"loaded {path} ({len(state)} tensors)")


# ---------------------------------------------------------------------------------------- state
@dataclass
class EpochStats:
    """Sums over the epoch so far, over all ranks (partial epochs are checkpointed)."""

    loss_sum: float = 0.0
    clips: float = 0.0
    failed: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {"loss_sum": self.loss_sum, "clips": self.clips, "failed": self.failed}


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    status: str  # "finished" or "interrupted"
    epoch: int  # completed epochs
    step: int  # optimiser steps taken in total
    best_top1: float | None
    output_dir: Path
    history: list[dict[str, Any]] = field(default_factory=list)


class _StopFlag:
    """Set by SIGINT/SIGTERM; a second SIGINT interrupts at once."""

    def __init__(self):
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def install(self) -> None:
        import threading

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


class Trainer:
    """Holds everything one training run needs; :func:`train` drives it."""

    def __init__(self, cfg, model_fn=None, dataset_fn=None, mixup_fn=None):
        self.cfg = cfg
        self.model_fn = model_fn or _default_model_fn
        self.dataset_fn = dataset_fn or _default_dataset_fn
        self.mixup_fn = mixup_fn or _default_mixup_fn
        self.device = du.resolve_device(cfg.DEVICE)
        du.init_distributed(self.device)
        self.rank, self.world = du.get_rank(), du.get_world_size()
        self.main = self.rank == 0
        self.out = Path(cfg.OUTPUT_DIR)
        self.ckpt_dir = checkpoint_dir(cfg)
        self.stop = _StopFlag()
        self.writer = None
        self.history: list[dict[str, Any]] = []

    # ----------------------------------------------------------------------------- building
    def build(self) -> None:
        cfg = self.cfg
        if self.main:
            self.ckpt_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.out / "config.yaml", cfg.dump())
        setup_logging(self.out, self.rank)
        logger.info("output dir %s, world size %d, device %s", self.out, self.world, self.device)
        amp = cfg.TRAIN.AMP
        if amp == "fp16" and self.device.type != "cuda":
            raise ValueError("TRAIN.AMP fp16 needs CUDA; use TRAIN.AMP bf16 or none on the CPU")

        seed_all(cfg.RNG_SEED)  # identical initial weights on every rank
        model = self.model_fn(cfg)
        resume_path = self.ckpt_dir / "last.pth"
        self.resuming = bool(cfg.TRAIN.AUTO_RESUME) and resume_path.is_file()
        if cfg.TRAIN.CHECKPOINT and not self.resuming:
            load_initial_weights(model, cfg.TRAIN.CHECKPOINT, cfg.TRAIN.CHECKPOINT_USE_EMA,
                                 log=logger.info if self.main else (lambda s: None))
        model.to(self.device)
        self.model_without_ddp = model
        n_params = sum(p.numel() for p in model.parameters())
        logger.info("model %s: %.2fM parameters", cfg.MODEL.ARCH, n_params / 1e6)

        self.train_set = SeededDataset(self.dataset_fn(cfg, "train"), cfg.RNG_SEED)
        self.val_set = self.dataset_fn(cfg, "val") if cfg.TRAIN.EVAL_PERIOD > 0 else None
        self.mixup = self.mixup_fn(cfg)
        bs, accum = cfg.TRAIN.BATCH_SIZE, cfg.TRAIN.ACCUM_STEPS
        self.sampler = ResumableSampler(self.train_set, num_replicas=self.world, rank=self.rank, shuffle=True,
                                        seed=cfg.RNG_SEED, drop_last=False)
        micro = self.sampler.num_samples // bs
        self.steps_per_epoch = micro // accum
        if cfg.TRAIN.MAX_STEPS_PER_EPOCH > 0:
            self.steps_per_epoch = min(self.steps_per_epoch, cfg.TRAIN.MAX_STEPS_PER_EPOCH)
        if self.steps_per_epoch < 1:
            raise ValueError(
                f"the training set ({len(self.train_set)} clips) is smaller than one optimiser step "
                f"(TRAIN.BATCH_SIZE {bs} x {self.world} processes x TRAIN.ACCUM_STEPS {accum})")

        self.total_batch = total_batch_size(bs, self.world, accum)
        self.peak_lr = scaled_lr(cfg.SOLVER.BASE_LR, self.total_batch, cfg.SOLVER.LR_BASE_BATCH)
        self.optimizer = build_optimizer(model, self.peak_lr, cfg.SOLVER.WEIGHT_DECAY, cfg.SOLVER.BETAS,
                                         cfg.SOLVER.LAYER_DECAY)
        self.schedule = build_schedule(cfg, self.optimizer, self.steps_per_epoch, self.peak_lr)
        logger.info("total batch %d (%d x %d processes x %d accumulation), peak LR %.3g, %d steps/epoch",
                    self.total_batch, bs, self.world, accum, self.peak_lr, self.steps_per_epoch)
        self.scaler = torch.amp.GradScaler("cuda") if amp == "fp16" else None
        self.ema = ModelEma(model, cfg.TRAIN.EMA_DECAY) if cfg.TRAIN.EMA_DECAY > 0 else None

        if self.world > 1:
            ddp_kwargs = {"device_ids": [self.device.index]} if self.device.type == "cuda" else {}
            self.model = nn.parallel.DistributedDataParallel(
                model, find_unused_parameters=cfg.TRAIN.FIND_UNUSED_PARAMETERS, **ddp_kwargs)
        else:
            self.model = model

        self.start_epoch, self.start_step, self.global_step = 0, 0, 0
        self.best_top1: float | None = None
        self.stats = EpochStats()
        if self.resuming:
            self._resume(resume_path)
        if self.main:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(self.out / "tensorboard"))
            except Exception:  # tensorboard not installed: metrics.jsonl is the record
                self.writer = None

    def _resume(self, path: Path) -> None:
        ckpt = safe_load(path)
        self.model_without_ddp.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.schedule.load_state_dict(ckpt["scheduler"])
        if self.scaler is not None and ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        if self.ema is not None:
            if ckpt.get("ema"):
                self.ema.load_state_dict(ckpt["ema"])
            else:
                logger.warning("%s has no EMA weights; the EMA restarts from the current weights", path)
                self.ema = ModelEma(self.model_without_ddp, self.cfg.TRAIN.EMA_DECAY)
        self.start_epoch = int(ckpt["epoch"])
        self.start_step = int(ckpt.get("step_in_epoch", 0))
        self.global_step = int(ckpt["step"])
        self.best_top1 = ckpt.get("best_top1")
        rng = ckpt.get("rng") or []
        if len(rng) == self.world:
            set_rng_state(rng[self.rank])
            if rng[self.rank].get("mixup") is not None and isinstance(getattr(self.mixup, "rng", None), random.Random):
                m = rng[self.rank]["mixup"]
                self.mixup.rng.setstate((m[0], tuple(m[1]), m[2]))
        else:
            logger.warning("%s was written by %d processes, this run has %d: RNG states not restored, "
                           "so this run will not repeat the original exactly", path, len(rng), self.world)
        if self.start_step and ckpt.get("world_size") != self.world:
            logger.warning("resuming mid-epoch with a different number of processes: the rest of epoch %d "
                           "starts from its beginning", self.start_epoch + 1)
            self.start_step = 0
        if self.start_step:
            st = ckpt.get("epoch_stats") or {}
            if self.main:  # sums over all ranks live on rank 0 only, so the epoch all-reduce stays right
                self.stats = EpochStats(st.get("loss_sum", 0.0), st.get("clips", 0.0), st.get("failed", 0.0))
        logger.info("resumed from %s: %d epochs done, step %d of epoch %d, global step %d",
                    path, self.start_epoch, self.start_step, self.start_epoch + 1, self.global_step)

    # --------------------------------------------------------------------------- checkpoints
    def _rng_state(self) -> dict[str, Any]:
        state = get_rng_state()
        mix_rng = getattr(self.mixup, "rng", None)
        state["mixup"] = mix_rng.getstate() if isinstance(mix_rng, random.Random) else None
        return state

    def save_checkpoint(self, epoch: int, step_in_epoch: int = 0, numbered: bool = False,
                        best: bool = False) -> None:
        """Collective: every rank contributes its RNG state; rank 0 writes ``last.pth`` atomically.

        Args:
            epoch: completed epochs.
            step_in_epoch: optimiser steps already done in epoch ``epoch`` (mid-epoch stop), else 0.
        """
        rng = du.all_gather_object(self._rng_state())
        stats = self.stats
        if step_in_epoch:
            s = du.all_reduce_sum([stats.loss_sum, stats.clips, stats.failed]).tolist()
            stats = EpochStats(*s)
        if not self.main:
            du.barrier()
            return
        state = {
            "model": self.model_without_ddp.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "epoch": epoch,
            "step": self.global_step,
            "step_in_epoch": step_in_epoch,
            "epoch_stats": stats.as_dict(),
            "best_top1": self.best_top1,
            "rng": rng,
            "world_size": self.world,
            "cfg": self.cfg.to_dict(),
        }
        last = atomic_save(state, self.ckpt_dir / "last.pth")
        if numbered:
            copy_atomic(last, self.ckpt_dir / f"epoch_{epoch:04d}.pth")
        if best:
            copy_atomic(last, self.ckpt_dir / "best.pth")
        du.barrier()

    # ----------------------------------------------------------------------------- training
    def _loader(self, epoch: int) -> DataLoader:
        cfg = self.cfg
        self.sampler.set_epoch(epoch)
        self.sampler.skip = self.start_step * cfg.TRAIN.BATCH_SIZE * cfg.TRAIN.ACCUM_STEPS if epoch == self.start_epoch else 0
        self.train_set.set_epoch(epoch)
        gen = torch.Generator().manual_seed(derive_seed(cfg.RNG_SEED, epoch, self.rank, 0xDA7A))
        return DataLoader(
            self.train_set, batch_size=cfg.TRAIN.BATCH_SIZE, sampler=self.sampler,
            num_workers=cfg.DATA.NUM_WORKERS, collate_fn=train_collate, drop_last=True,
            pin_memory=cfg.DATA.PIN_MEMORY and self.device.type == "cuda",
            worker_init_fn=_WorkerInit(cfg.RNG_SEED, epoch, self.rank), generator=gen,
            persistent_workers=False)

    def train_epoch(self, epoch: int) -> bool:
        """Run the optimiser steps of ``epoch`` (0-based). Returns False when stopped by a signal."""
        cfg = self.cfg
        accum = cfg.TRAIN.ACCUM_STEPS
        first = self.start_step if epoch == self.start_epoch else 0
        if first == 0:
            seed_all(derive_seed(cfg.RNG_SEED, epoch, self.rank, 0x7A1))
            if isinstance(getattr(self.mixup, "rng", None), random.Random):  # mixup/cutmix's own RNG
                self.mixup.rng.seed(derive_seed(cfg.RNG_SEED, epoch, self.rank, 0x313))
            self.stats = EpochStats()
        loader = self._loader(epoch)
        batches = iter(loader)
        self.model.train()
        show_bar = self.main and sys.stdout.isatty()
        from tqdm import tqdm

        bar = tqdm(total=self.steps_per_epoch, initial=first, desc=f"epoch {epoch + 1}/{cfg.SOLVER.MAX_EPOCH}",
                   disable=not show_bar, dynamic_ncols=True, file=sys.stdout, leave=False)
        t0 = time.perf_counter()
        clips_here = 0
        for step in range(first, self.steps_per_epoch):
            nonfinite = 0.0
            for micro in range(accum):
                batch = next(batches)
                # uint8 clips are normalised on the device (K clips per video flattened: B*K)
                clips, labels = batch_to_device(batch["video"], batch["label"], self.device,
                                                cfg.DATA.MEAN, cfg.DATA.STD)  # (B, C, T, H, W) float, (B,)
                targets = labels
                if self.mixup is not None:
                    clips, targets = self.mixup(clips, labels)  # targets (B, K)
                sync = contextlib.nullcontext()
                if micro < accum - 1 and isinstance(self.model, nn.parallel.DistributedDataParallel):
                    sync = self.model.no_sync()  # all-reduce gradients once per optimiser step
                with sync:
                    with autocast_context(self.device, cfg.TRAIN.AMP):
                        logits = self.model(clips)  # (B, K)
                    loss = compute_loss(logits, targets, cfg.AUG.LABEL_SMOOTHING)
                    scaled = loss / accum
                    if self.scaler is not None:
                        scaled = self.scaler.scale(scaled)
                    scaled.backward()
                value = float(loss.detach())
                if not math.isfinite(value):
                    nonfinite = 1.0
                n = clips.shape[0]
                self.stats.loss_sum += value * n
                self.stats.clips += n
                self.stats.failed += count_substituted(batch)
                clips_here += n
            flags = du.all_reduce_max([nonfinite, float(self.stop.signum is not None)])
            if flags[0] > 0:
                bar.close()
                raise NonFiniteLossError(
                    f"non-finite training loss at epoch {epoch + 1}, step {step + 1} of {self.steps_per_epoch} "
                    f"(global step {self.global_step + 1}); stopped before updating the weights. "
                    f"{self.ckpt_dir / 'last.pth'} is the last good checkpoint (epoch {epoch}); "
                    "try a lower SOLVER.BASE_LR, TRAIN.CLIP_GRAD, or TRAIN.AMP none")
            if self.scaler is not None:
                self.scaler.unscale_(self.optimizer)
            if cfg.TRAIN.CLIP_GRAD > 0:
                nn.utils.clip_grad_norm_(self.model_without_ddp.parameters(), cfg.TRAIN.CLIP_GRAD)
            if self.scaler is not None:
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.schedule.step()
            self.global_step += 1
            if self.ema is not None:
                self.ema.update(self.model_without_ddp)

            elapsed = max(time.perf_counter() - t0, 1e-9)
            rate = clips_here * self.world / elapsed
            lr = self.optimizer.param_groups[-1]["lr"]
            bar.set_postfix(loss=f"{value:.4f}", lr=f"{lr:.3g}", clips_s=f"{rate:.1f}", refresh=False)
            bar.update(1)
            if self.main and ((step + 1) % cfg.TRAIN.LOG_PERIOD == 0 or step + 1 == self.steps_per_epoch):
                if not show_bar:
                    logger.info("epoch %d/%d step %d/%d loss %.4f lr %.4g clips/s %.2f", epoch + 1,
                                cfg.SOLVER.MAX_EPOCH, step + 1, self.steps_per_epoch, value, lr, rate)
                if self.writer is not None:
                    self.writer.add_scalar("train/loss", value, self.global_step)
                    self.writer.add_scalar("train/lr", lr, self.global_step)
            if flags[1] > 0 and step + 1 < self.steps_per_epoch:
                bar.close()
                self.save_checkpoint(epoch, step_in_epoch=step + 1)
                logger.warning("stopped by %s at epoch %d, step %d/%d: resumable checkpoint written to %s",
                               self._signame(), epoch + 1, step + 1, self.steps_per_epoch,
                               self.ckpt_dir / "last.pth")
                return False
        bar.close()
        self.epoch_time = time.perf_counter() - t0
        self.epoch_rate = clips_here * self.world / max(self.epoch_time, 1e-9)
        return True

    def _signame(self) -> str:
        try:
            return signal.Signals(self.stop.signum).name
        except Exception:
            return "a signal (on another process)"

    def end_epoch(self, epoch: int, t_start: float) -> None:
        """Validate, checkpoint, and append the epoch's metrics line (``epoch`` is 0-based)."""
        cfg = self.cfg
        loss_sum, clips, failed = du.all_reduce_sum([self.stats.loss_sum, self.stats.clips, self.stats.failed]).tolist()
        done = epoch + 1
        record: dict[str, Any] = {
            "epoch": done, "train_loss": loss_sum / max(clips, 1.0),
            "lr": self.schedule.get_lr(), "clips_per_s": self.epoch_rate,
            "val_top1": None, "val_top5": None, "val_loss": None, "failed_videos": int(failed),
        }
        check_failures(int(failed), int(clips), cfg.DATA.MAX_FAILURE_FRACTION)
        is_best = False
        last_epoch = done == cfg.SOLVER.MAX_EPOCH
        if self.val_set is not None and (done % cfg.TRAIN.EVAL_PERIOD == 0 or last_epoch):
            kw = dict(batch_size=cfg.TEST.BATCH_SIZE, num_workers=cfg.DATA.NUM_WORKERS, amp=cfg.TRAIN.AMP,
                      norm=(cfg.DATA.MEAN, cfg.DATA.STD),
                      max_views=cfg.TEST.MAX_VIEWS_PER_BATCH)
            val = validate(self.model_without_ddp, self.val_set, self.device, **kw)
            record.update(val_top1=val["top1"], val_top5=val["top5"], val_loss=val["loss"],
                          val_failed_videos=val["failed_videos"])
            if self.ema is not None:
                ema_val = validate(self.ema.module, self.val_set, self.device, **kw)
                record.update(ema_val_top1=ema_val["top1"], ema_val_top5=ema_val["top5"],
                              ema_val_loss=ema_val["loss"])
            if self.best_top1 is None or val["top1"] > self.best_top1:
                self.best_top1, is_best = val["top1"], True
            logger.info("epoch %d validation: top1 %.2f top5 %.2f loss %.4f%s", done, val["top1"], val["top5"],
                        val["loss"], f" (EMA top1 {record['ema_val_top1']:.2f})" if self.ema is not None else "")
        numbered = cfg.TRAIN.CHECKPOINT_PERIOD > 0 and (done % cfg.TRAIN.CHECKPOINT_PERIOD == 0 or last_epoch)
        self.save_checkpoint(done, 0, numbered=numbered, best=is_best)
        record["time"] = time.time() - t_start
        self.history.append(record)
        if self.main:
            append_metrics(self.out / "metrics.jsonl", record)
            if self.writer is not None:
                for k, v in record.items():
                    if isinstance(v, (int, float)) and k != "epoch":
                        self.writer.add_scalar(f"epoch/{k}", v, done)
                self.writer.flush()
            logger.info("epoch %d done: train loss %.4f, %.2f clips/s, %.0f s", done, record["train_loss"],
                        record["clips_per_s"], record["time"])

    def run(self) -> TrainResult:
        self.stop.install()
        completed, status = self.start_epoch, "finished"
        try:
            for epoch in range(self.start_epoch, self.cfg.SOLVER.MAX_EPOCH):
                t_start = time.time()
                if not self.train_epoch(epoch):
                    status = "interrupted"
                    break
                self.end_epoch(epoch, t_start)
                completed = epoch + 1
                stop = du.all_reduce_max([float(self.stop.signum is not None)])[0] > 0
                if stop and completed < self.cfg.SOLVER.MAX_EPOCH:
                    logger.warning("stopped by %s after epoch %d: resume with the same command",
                                   self._signame(), completed)
                    status = "interrupted"
                    break
            return TrainResult(status, completed, self.global_step, self.best_top1, self.out, self.history)
        finally:
            self.stop.restore()
            if self.writer is not None:
                self.writer.close()


def append_metrics(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line per epoch; a line for the same epoch (a re-run after a crash) is replaced."""
    lines = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                if json.loads(line).get("epoch") == record["epoch"]:
                    continue
            except json.JSONDecodeError:
                continue
            lines.append(line)
    lines.append(json.dumps(record))
    atomic_write_text(path, "\n".join(lines) + "\n")


def train(cfg, model_fn: Callable | None = None, dataset_fn: Callable | None = None,
          mixup_fn: Callable | None = None) -> TrainResult:
    """Train as ``cfg`` says, resuming from ``OUTPUT_DIR/checkpoints/last.pth`` when allowed.

    Args:
        cfg: a frozen config from :func:`sfvideo.config.load_config`.
        model_fn, dataset_fn, mixup_fn: replace ``build_model(cfg)``, ``build_dataset(cfg, split)``
            and ``build_mixup(cfg)`` (tests, custom models).

    Returns:
        A :class:`TrainResult`; ``status`` is ``"interrupted"`` after SIGINT/SIGTERM.

    Raises:
        NonFiniteLossError: the loss became NaN/inf (``last.pth`` is left as it was).
    """
    trainer = Trainer(cfg, model_fn, dataset_fn, mixup_fn)
    trainer.build()
    return trainer.run()


# ------------------------------------------------------------------------------------ benchmark
@dataclass
class BenchmarkResult:
    arch: str
    batch_size: int
    frames: int
    crop: int
    steps: int
    seconds: float
    clips_per_s: float
    peak_rss_mib: float
    device: str
    threads: int

    def format(self) -> str:
        return (f"{self.arch}: {self.clips_per_s:.3f} clips/s training ({self.steps} steps of batch {self.batch_size}, "
                f"{self.frames}x{self.crop}x{self.crop}, {self.seconds:.1f} s, {self.device}, {self.threads} threads); "
                f"peak RSS {self.peak_rss_mib:.0f} MiB")


def benchmark_training(cfg, steps: int, warmup: int = 2) -> BenchmarkResult:
    """Time ``steps`` full training steps (forward, loss, backward, clip, AdamW) on random clips
    of the config's shape (``TRAIN.BATCH_SIZE`` x 3 x ``DATA.NUM_FRAMES`` x crop²); no data needed."""
    device = du.resolve_device(cfg.DEVICE)
    seed_all(cfg.RNG_SEED)
    model = _default_model_fn(cfg).to(device).train()
    opt = build_optimizer(model, cfg.SOLVER.BASE_LR, cfg.SOLVER.WEIGHT_DECAY, cfg.SOLVER.BETAS)
    b, t, s = cfg.TRAIN.BATCH_SIZE, cfg.DATA.NUM_FRAMES, cfg.DATA.TRAIN_CROP_SIZE
    clips = torch.randn(b, 3, t, s, s, device=device)  # (B, C, T, H, W)
    labels = torch.randint(0, cfg.MODEL.NUM_CLASSES, (b,), device=device)

    one_step = train_step(model, clips, cfg.TRAIN.AMP, optimizer=opt, labels=labels, clip_grad=cfg.TRAIN.CLIP_GRAD,
                          loss_fn=lambda logits, y: compute_loss(logits, y, cfg.AUG.LABEL_SMOOTHING))
    for _ in range(warmup):
        one_step()
    t0 = time.perf_counter()
    for _ in range(steps):
        one_step()  # (synchronises CUDA after each step)
    elapsed = time.perf_counter() - t0
    rss = peak_rss_mb()
    return BenchmarkResult(cfg.MODEL.ARCH, b, t, s, steps, elapsed, b * steps / elapsed, rss, str(device),
                           torch.get_num_threads())
