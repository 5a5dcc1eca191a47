"""The model benchmark of ``sfvideo benchmark``: GFLOPs, parameters, inference and training-step
throughput and peak memory of sfvideo's video models and pytorchvideo's model-zoo architectures
(``zoo``), inference rows in other runtimes (``torch.compile``, onnxruntime), all timed in one
process with their runs interleaved (``timing``)."""

from __future__ import annotations

import dataclasses
import statistics
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .memory import measure_memory, measure_memory_subprocess
from .results import TABLES, Record, render_table
from .timing import Step, in_mode, inference_step, model_steps, paired_ratio, time_rounds
from .zoo import ModelSpec, make_clip, model_specs

RUNTIMES = ("eager", "compiled", "onnxruntime")
BENCHMARK_COLUMNS = tuple(c.header for c in TABLES["models"].columns)
REFERENCE = "slow_r50"  # the model the speed column compares with


def runtime_step(model: nn.Module, clip: torch.Tensor, runtime: str, threads: int | None = None,
                 workdir: str | None = None) -> Step:
    """An inference closure of ``model`` on ``clip`` in ``runtime``: ``eager`` (PyTorch),
    ``compiled`` (``torch.compile``), ``onnxruntime`` (exported into ``workdir`` the way
    onnxruntime runs fastest on CPU: ``onnxruntime_cpu_opset`` and the default, gather, sampling;
    run by ``sfvideo.deploy.onnx_runtime``); eval mode, fp32."""
    # eval mode set at every call: the eager training step of the same model runs between them
    if runtime == "eager":
        return in_mode(model, False, inference_step(model, clip))
    if runtime == "compiled":
        return in_mode(model, False, inference_step(torch.compile(model), clip))
    if runtime != "onnxruntime":
        raise ValueError(f"runtime {runtime!r}; expected one of {RUNTIMES}")
    import tempfile

    from ..deploy.export import export_metadata, export_onnx, onnxruntime_cpu_opset
    from ..deploy.onnx_runtime import OnnxVideoModel

    model.protocol = dataclasses.replace(model.protocol, num_frames=clip.shape[2], crop_size=clip.shape[-1])
    path = Path(workdir or tempfile.mkdtemp(prefix="sfvideo_bench_")) / f"model_{clip.shape[2]}x{clip.shape[-1]}.onnx"
    export_onnx(model, path, export_metadata(model.protocol, None, {}), opset=onnxruntime_cpu_opset())
    session = OnnxVideoModel(path, threads=threads or torch.get_num_threads())
    x = clip.cpu().numpy()
    return lambda: session(x)


def _measure_all(specs: list[ModelSpec], batch: int, device: str, amp: str, quick: bool, threads: int | None,
                 log: Callable[[str], None]) -> dict[str, dict[str, float]]:
    """Peak memory of every spec: on CPU each in a fresh process."""
    mem = {}
    for spec in specs:
        kw = dict(batch=batch, device=device, amp=amp, frames=spec.frames, size=spec.size if spec.source == "sfvideo"
                  else None, quick=quick, threads=threads)
        mem[spec.key] = measure_memory_subprocess(spec.name, **kw) if device == "cpu" else measure_memory(spec.name, **kw)
        log(f"[memory] {spec.key}: infer {mem[spec.key]['infer']:.0f} MB, train {mem[spec.key]['train']:.0f} MB")
    return mem


def _row_figures(row: dict, sec: dict[str, float], times: dict[str, list[float]], mem: dict, batch: int,
                 step: str) -> None:
    """Clips/s, memory and inference call times of one row, from the timed steps named ``step/...``."""
    eager = row["runtime"] == "eager"  # memory is measured for the eager model only
    row["infer_clips_s"] = batch / sec[f"{step}/infer"]
    row["train_clips_s"] = batch / sec[f"{step}/train"] if f"{step}/train" in sec else float("nan")
    row["infer_mem_mb"] = mem.get(row["key"], {}).get("infer", float("nan")) if eager else float("nan")
    row["train_mem_mb"] = mem.get(row["key"], {}).get("train", float("nan")) if eager else float("nan")
    row["infer_times"] = times[f"{step}/infer"]


def benchmark_models(names: list[str], batch: int = 1, iters: int = 2, warmup: int = 1, device: str = "cpu",
                     amp: str = "none", compile: bool = False, frames: int | list[int] | None = None,
                     size: int | None = None, quick: bool = False, memory: bool = True, threads: int | None = None,
                     runtimes: tuple[str, ...] = ("eager",), log: Callable[[str], None] | None = print) -> list[dict]:
    """GFLOPs per view, parameters, inference and training-step clips/s and peak memory of each model.

    All models are timed in one process, their inference and training steps interleaved
    (``time_rounds``), on the same input size and batch. GFLOPs come from one counter
    (``count_gflops``: multiply-adds of matmuls, convolutions and attention) at batch 1.
    ``frames`` may list several frame counts (one row per sfvideo model and count); ``runtimes``
    adds inference-only rows of the sfvideo models in ``compiled`` / ``onnxruntime``.
    """
    from ..utils.flops import count_gflops, count_params

    log = log or (lambda _msg: None)
    dev = torch.device(device)
    specs = model_specs(names, frames, size, quick)
    mem = _measure_all(specs, batch, device, amp, quick, threads, log) if memory else {}
    rows, steps = [], {}
    for spec in specs:
        log(f"[build] {spec.name} ({spec.input_desc})")
        model = spec.build().to(dev)
        gflops = count_gflops(model, make_clip(spec, 1, dev))
        timed = torch.compile(model) if compile else model
        clip = make_clip(spec, batch, dev)
        base = {"model": spec.name, "source": spec.source, "input": spec.input_desc, "frames": spec.frames,
                "size": spec.size, "batch": batch, "amp": amp, "gflops": gflops,
                "params_m": count_params(model) / 1e6, "key": spec.key}
        for kind, fn in model_steps(timed, clip, amp).items():
            steps[f"{spec.key}/eager/{kind}"] = fn
        rows.append({**base, "runtime": "eager" if not compile else "compiled"})
        for runtime in runtimes if spec.source == "sfvideo" else ():
            if runtime != "eager":
                steps[f"{spec.key}/{runtime}/infer"] = runtime_step(model, clip, runtime, threads)
                rows.append({**base, "runtime": runtime})
    log(f"[time] {len(steps)} steps interleaved, {warmup} warmup + {iters} timed calls each")
    times = time_rounds(steps, iters=iters, warmup=warmup)
    sec = {k: statistics.median(v) for k, v in times.items()}
    log("[time] s/call: " + ", ".join(f"{k} {v:.3f}" for k, v in sec.items()))
    for row in rows:
        _row_figures(row, sec, times, mem, batch,
                     f"{row['key']}/{'eager' if row['runtime'] == 'compiled' and compile else row['runtime']}")
    return rows


def ratio_to(rows: list[dict], reference: str = REFERENCE) -> dict[str, float]:
    """Each row's inference speed over ``reference``'s, keyed ``key/runtime``: the median of
    per-round time ratios (``paired_ratio``); > 1 faster than the reference."""
    ref = next((r for r in rows if r["model"] == reference), None)
    if ref is None:
        return {}
    return {f"{r['key']}/{r['runtime']}": paired_ratio(ref["infer_times"], r["infer_times"]) for r in rows}


def model_records(rows: list[dict]) -> list[Record]:
    """``benchmark_models`` rows as results records: the figures, and the speed ratio to ``REFERENCE``."""
    ratios = ratio_to(rows)
    drop = ("key", "infer_times")
    return [{**{k: v for k, v in r.items() if k not in drop},
             "infer_speed_vs_slow_r50": ratios.get(f"{r['key']}/{r['runtime']}", float("nan"))} for r in rows]


def format_benchmark_table(rows: list[dict], header: str) -> str:
    """Markdown table of ``benchmark_models`` rows under a one-line header."""
    return f"{header}\n\n{render_table(model_records(rows), 'models')}"
