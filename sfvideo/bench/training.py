"""``sfvideo train --benchmark-steps``: time full training steps of the config's model."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from ..engine import distributed as du
from ..engine.determinism import seed_all
from ..engine.losses import classification_loss
from ..engine.optim import build_optimizer
from ..models import build_model
from ..utils.proc import peak_rss_mb
from .timing import time_rounds, train_step


@dataclass
class BenchmarkResult:
    """Training throughput of one configuration."""

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

    def record(self) -> dict:
        """The figures as a results record (``sfvideo.bench.results``)."""
        return dataclasses.asdict(self)


def benchmark_training(cfg, steps: int, warmup: int = 2) -> BenchmarkResult:
    """Time ``steps`` full training steps (forward, loss, backward, clip, AdamW) on random clips
    of the config's shape (``TRAIN.BATCH_SIZE`` x 3 x ``DATA.NUM_FRAMES`` x crop²); no data needed."""
    device = du.resolve_device(cfg.DEVICE)
    seed_all(cfg.RNG_SEED)
    model = build_model(cfg).to(device).train()
    opt = build_optimizer(model, cfg.SOLVER.BASE_LR, cfg.SOLVER.WEIGHT_DECAY, cfg.SOLVER.BETAS)
    b, t, s = cfg.TRAIN.BATCH_SIZE, cfg.DATA.NUM_FRAMES, cfg.DATA.TRAIN_CROP_SIZE
    clips = torch.randn(b, 3, t, s, s, device=device)  # (B, C, T, H, W)
    labels = torch.randint(0, cfg.MODEL.NUM_CLASSES, (b,), device=device)
    one_step = train_step(model, clips, cfg.TRAIN.AMP, optimizer=opt, labels=labels, clip_grad=cfg.TRAIN.CLIP_GRAD,
                          loss_fn=classification_loss(cfg.AUG.LABEL_SMOOTHING))
    elapsed = sum(time_rounds({"train": one_step}, iters=steps, warmup=warmup)["train"])
    return BenchmarkResult(cfg.MODEL.ARCH, b, t, s, steps, elapsed, b * steps / elapsed, peak_rss_mb(), str(device),
                           torch.get_num_threads())
