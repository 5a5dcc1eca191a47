"""Peak memory of one inference step and one training step of a model, and running a measurement
in a fresh process (a CPU high-water mark is per process)."""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from ..utils.proc import peak_rss_mb, rss_mb
from .timing import inference_step, model_steps, train_step
from .zoo import make_clip, model_spec


def in_fresh_process(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` in a freshly spawned Python process (``fn`` and its arguments
    must pickle): its peak RSS belongs to that call alone."""
    import concurrent.futures
    import multiprocessing

    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args, **kwargs).result()


def _touch_cpu_code_paths() -> None:
    """Run a tiny model through the operators the benchmarked models use, so that the pages
    of torch's libraries they touch the first time (~150 MB of code and one-off buffers) are
    resident before the baseline and not billed to the model."""
    import gc

    from ..models import create_model

    tiny = nn.Sequential(nn.Conv3d(3, 8, 3, padding=1), nn.BatchNorm3d(8), nn.ReLU(), nn.MaxPool3d(2),
                         nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.LayerNorm(8), nn.Dropout(0.1), nn.Linear(8, 4))
    for model in (create_model("video_test", num_classes=4), tiny):
        clip = torch.randn(2, 3, 4, 32, 32)  # (B, C, T, H, W)
        inference_step(model, clip)()
        train_step(model, clip)()
    del model, tiny
    gc.collect()


def _cpu_rss_mb() -> float:
    mb = rss_mb()
    if mb is None:
        raise RuntimeError("peak memory on CPU is read from /proc/self/status (Linux); run with --no-memory")
    return mb


def measure_memory(name: str, batch: int, device: str = "cpu", amp: str = "none", frames: int | None = None,
                   size: int | None = None, quick: bool = False, threads: int | None = None) -> dict[str, float]:
    """Peak memory (MB) of one inference step and one training step (weights, activations,
    gradients and AdamW state included; the idle interpreter excluded).

    On CUDA: ``max_memory_allocated`` above what was allocated before the model was built.
    On CPU: the peak RSS of this process above its RSS before the model was built, so call it
    in a fresh process (``measure_memory_subprocess``) for a figure that belongs to one model.
    """
    dev = torch.device(device)
    if threads:
        torch.set_num_threads(threads)
    spec = model_spec(name, frames, size, quick)
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        base = torch.cuda.memory_allocated(dev) / 2**20
    else:
        _touch_cpu_code_paths()
        base = _cpu_rss_mb()
    model = spec.build().to(dev)
    steps = model_steps(model, make_clip(spec, batch, dev), amp)
    out = {}
    for kind in ("infer", "train"):  # inference first: on CPU the peak only ever rises
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        steps[kind]()
        peak = torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else peak_rss_mb()
        out[kind] = peak - base
    return out


def measure_memory_subprocess(name: str, **kwargs: Any) -> dict[str, float]:
    """``measure_memory`` in a freshly spawned Python process (the CPU high-water mark is per process)."""
    return in_fresh_process(measure_memory, name, **kwargs)
