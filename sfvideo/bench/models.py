"""Timing helpers for tools/benchmark.py: inference and training-step throughput, peak memory,
and loading the official SparseFormer code (fetched outside this repository) for side-by-side runs.

Machines are noisy: compare models as ratios measured in one process, with the runs of the
models interleaved (A, B, A, B, ...) and the median taken.
"""

from __future__ import annotations

import dataclasses
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..utils.amp import autocast_context


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def inference_step(model: nn.Module, clip: torch.Tensor, amp: str = "none") -> Callable[[], None]:
    """A closure running one forward pass without gradients."""
    model.eval()

    def step() -> None:
        with torch.inference_mode(), autocast_context(clip.device, amp):
            model(clip)
        _sync(clip.device)

    return step


def train_step(model: nn.Module, clip: torch.Tensor, amp: str = "none", *,
               optimizer: torch.optim.Optimizer | None = None, labels: torch.Tensor | None = None,
               loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
               clip_grad: float = 0.0) -> Callable[[], None]:
    """A closure running one training step: forward, loss, backward, optional gradient clipping,
    optimizer step. Defaults (for comparing architectures): AdamW, random labels, cross-entropy;
    ``tools/train_video.py --benchmark-steps`` passes the config's optimizer, loss and clipping."""
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
        _sync(clip.device)

    return step


def time_rounds(steps: dict[str, Callable[[], None]], iters: int = 5, warmup: int = 1) -> dict[str, list[float]]:
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


def time_interleaved(steps: dict[str, Callable[[], None]], iters: int = 5, warmup: int = 1) -> dict[str, float]:
    """Median seconds per call of each closure, runs interleaved so that load drifts hit all alike."""
    return {k: statistics.median(v) for k, v in time_rounds(steps, iters, warmup).items()}


def paired_ratio(times: dict[str, list[float]], num: str, den: str) -> float:
    """Median over rounds of ``times[num][i] / times[den][i]``: each ratio compares two runs made
    back to back, so a load change between rounds cancels (unlike a ratio of two medians)."""
    return statistics.median(a / b for a, b in zip(times[num], times[den]))


def peak_memory_mb(device: torch.device) -> float:
    """Peak CUDA memory allocated, or the process's peak RSS on CPU (a high-water mark)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_official_media_sparseformer(official_dir: str | Path, variant: str = "tiny", replicates: int = 8,
                                     num_classes: int = 400) -> nn.Module:
    """The official ``MediaSparseFormer`` (github.com/showlab/sparseformer, ``sparseformer/``
    package) with the v1 SF-T/S/B settings. ``official_dir`` is a checkout of that repository;
    it needs ``timm`` importable. Nothing of it is part of sfvideo."""
    root = Path(official_dir)
    pkg = root / "sparseformer" if (root / "sparseformer" / "sparseformer").is_dir() else root
    if not (pkg / "sparseformer" / "media.py").is_file():
        raise FileNotFoundError(f"{official_dir}: no sparseformer/media.py (expected a checkout of showlab/sparseformer)")
    sys.path.insert(0, str(pkg))
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from sparseformer import config as official_config
            from sparseformer.media import MediaSparseFormer
    except ImportError as err:
        raise ImportError(f"the official code needs {err.name}: pip install timm") from err
    kwargs = getattr(official_config, f"sparseformer_v1_{variant}")()
    kwargs.update(proj_dim=num_classes)
    return MediaSparseFormer(replicates=replicates, **kwargs)


# ----------------------------------------------------------------------------- model benchmark
# Everything below serves tools/benchmark.py: a table of GFLOPs, parameters, throughput and peak
# memory for sfvideo's video models and pytorchvideo's model-zoo architectures, and a side-by-side
# of sfvideo with the official MediaSparseFormer.

SFVIDEO_MODELS = ("video_tiny", "video_small", "video_base")
ZOO_MODELS = ("x3d_m", "slowfast_r50", "mvit_b_16x4", "slow_r50")
# sfvideo's own clip (configs/k400_*.yaml: DATA.NUM_FRAMES 32, TEST_CROP_SIZE 224).
SFVIDEO_FRAMES, SFVIDEO_SIZE = 32, 224
# --quick: the sfvideo models see a small clip (the zoo models keep theirs: MViT's positional
# embeddings and X3D's pooling are built for one input size).
QUICK_FRAMES, QUICK_SIZE = 4, 64


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A benchmarked model: how to build it (randomly initialised) and its clip ``(C, T, H, W)``."""

    name: str
    build: Callable[[], nn.Module]
    frames: int
    size: int
    source: str  # "sfvideo" or "pytorchvideo"
    note: str = ""  # how the input differs from a plain (B, 3, T, H, W) clip, if it does

    @property
    def input_desc(self) -> str:
        return self.note or f"{self.frames} x {self.size}^2"


class _PackedSlowFast(nn.Module):
    """SlowFast taking the fast-pathway clip ``(B, 3, alpha*T, H, W)`` and deriving the slow
    one (every alpha-th frame; pytorchvideo's ``PackPathway`` picks T evenly spaced frames,
    the same amount of work), so that every model here takes one tensor. The strided view
    costs nothing next to the network."""

    def __init__(self, net: nn.Module, alpha: int = 4):
        super().__init__()
        self.net, self.alpha = net, alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 3, alpha*T, H, W)
        return self.net([x[:, :, :: self.alpha], x])


def _zoo_builder(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pytorchvideo.models import hub
        if name == "x3d_m":
            return hub.x3d_m(pretrained=False)
        if name == "slowfast_r50":
            return _PackedSlowFast(hub.slowfast_r50(pretrained=False), alpha=4)
        if name == "mvit_b_16x4":
            return hub.mvit_base_16x4(pretrained=False)
        if name == "slow_r50":
            return hub.slow_r50(pretrained=False)
        raise KeyError(name)

    return build


def model_spec(name: str, frames: int | None = None, size: int | None = None, quick: bool = False,
               num_classes: int = 400) -> ModelSpec:
    """The spec of a benchmarkable model: an sfvideo variant (``video_*``, at ``frames`` x
    ``size``^2, default 32 x 224^2) or a pytorchvideo model-zoo architecture at its standard
    input: ``x3d_m`` (16 x 224^2), ``slowfast_r50`` (8x8: slow 8 + fast 32 frames, 224^2),
    ``mvit_b_16x4`` (16 x 224^2), ``slow_r50`` (8 x 224^2)."""
    from ..models import create_model, list_models

    if name in ZOO_MODELS:
        if name == "slowfast_r50":
            return ModelSpec(name, _zoo_builder(name), 32, 224, "pytorchvideo", "8 (slow) + 32 (fast) x 224^2")
        return ModelSpec(name, _zoo_builder(name), 8 if name == "slow_r50" else 16, 224, "pytorchvideo")
    if name.startswith("video_") and name in list_models():
        t = frames or (QUICK_FRAMES if quick else SFVIDEO_FRAMES)
        s = size or (QUICK_SIZE if quick else SFVIDEO_SIZE)
        return ModelSpec(name, lambda: create_model(name, num_classes=num_classes), t, s, "sfvideo")
    raise KeyError(f"unknown model {name!r}; available: {benchmark_model_names()}")


def benchmark_model_names() -> list[str]:
    from ..models import list_models

    return [n for n in list_models() if n.startswith("video_")] + list(ZOO_MODELS)


def make_clip(spec: ModelSpec, batch: int, device: torch.device) -> torch.Tensor:
    return torch.randn(batch, 3, spec.frames, spec.size, spec.size, device=device)  # (B, C, T, H, W)


def _in_mode(model: nn.Module, training: bool, fn: Callable[[], None]) -> Callable[[], None]:
    """``fn`` with the model switched to train/eval first: inference and training closures of
    one model are interleaved, and ``inference_step``/``train_step`` only set the mode once."""

    def step() -> None:
        model.train(training)
        fn()

    return step


def model_steps(model: nn.Module, clip: torch.Tensor, amp: str = "none") -> dict[str, Callable[[], None]]:
    """``{"infer": ..., "train": ...}`` closures of one model that may be interleaved freely."""
    return {"infer": _in_mode(model, False, inference_step(model, clip, amp)),
            "train": _in_mode(model, True, train_step(model, clip, amp))}


def proc_status_kb(field: str, pid: int | str = "self") -> int | None:
    """A memory field of ``/proc/<pid>/status`` (``VmRSS``, ``VmHWM``, ...) in KiB; ``None``
    where it cannot be read (no such process, not Linux)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def rss_mb() -> float:
    """Current resident set size of this process."""
    kb = proc_status_kb("VmRSS")
    return peak_memory_mb(torch.device("cpu")) if kb is None else kb / 1024


def peak_rss_mb() -> float:
    """This process image's peak RSS. ``VmHWM`` rather than ``ru_maxrss``: the latter survives
    ``exec`` and so may report the parent's size in a freshly spawned child."""
    kb = proc_status_kb("VmHWM")
    return peak_memory_mb(torch.device("cpu")) if kb is None else kb / 1024


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
        base = torch.cuda.memory_allocated(dev)
    else:
        _touch_cpu_code_paths()
        base = rss_mb()
    model = spec.build().to(dev)
    clip = make_clip(spec, batch, dev)
    steps = model_steps(model, clip, amp)
    out = {}
    for kind in ("infer", "train"):  # inference first: on CPU the peak only ever rises
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        steps[kind]()
        out[kind] = (torch.cuda.max_memory_allocated(dev) / 2**20 - base / 2**20) if dev.type == "cuda" \
            else peak_rss_mb() - base
    return out


def measure_memory_subprocess(name: str, **kwargs) -> dict[str, float]:
    """``measure_memory`` in a freshly spawned Python process (the CPU high-water mark is per process)."""
    import concurrent.futures
    import multiprocessing

    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(measure_memory, name, **kwargs).result()


RUNTIMES = ("eager", "compiled", "onnxruntime")


def _specs(names: list[str], frames: int | list[int] | None, size: int | None, quick: bool) -> list[ModelSpec]:
    """One spec per zoo model, one per (sfvideo model, frame count)."""
    counts = frames if isinstance(frames, (list, tuple)) else [frames]
    specs = []
    for n in names:
        specs += [model_spec(n, t, size, quick) for t in counts] if n not in ZOO_MODELS else [model_spec(n, quick=quick)]
    return specs


def runtime_step(model: nn.Module, clip: torch.Tensor, runtime: str, threads: int | None = None,
                 workdir: str | None = None) -> Callable[[], None]:
    """An inference closure of ``model`` on ``clip`` in ``runtime``: ``eager`` (PyTorch),
    ``compiled`` (``torch.compile``), ``onnxruntime`` (exported into ``workdir`` the way
    onnxruntime runs fastest on CPU: ``onnxruntime_cpu_opset`` and the default, gather, sampling;
    run by ``sfvideo.deploy.onnx_runtime``); eval mode, fp32."""
    # eval mode set at every call: the eager training step of the same model runs between them
    if runtime == "eager":
        return _in_mode(model, False, inference_step(model, clip))
    if runtime == "compiled":
        return _in_mode(model, False, inference_step(torch.compile(model), clip))
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


def _measure_all(specs, batch, device, amp, quick, threads, log) -> dict[str, dict[str, float]]:
    mem = {}
    for spec in specs:
        kw = dict(batch=batch, device=device, amp=amp, frames=spec.frames, size=spec.size if spec.source == "sfvideo"
                  else None, quick=quick, threads=threads)
        mem[spec_key(spec)] = measure_memory_subprocess(spec.name, **kw) if device == "cpu" \
            else measure_memory(spec.name, **kw)
        log(f"[memory] {spec_key(spec)}: infer {mem[spec_key(spec)]['infer']:.0f} MB, "
            f"train {mem[spec_key(spec)]['train']:.0f} MB")
    return mem


def spec_key(spec: ModelSpec) -> str:
    return f"{spec.name}@{spec.frames}" if spec.source == "sfvideo" else spec.name


def benchmark_models(names: list[str], batch: int = 1, iters: int = 2, warmup: int = 1, device: str = "cpu",
                     amp: str = "none", compile: bool = False, frames: int | list[int] | None = None,
                     size: int | None = None, quick: bool = False, memory: bool = True, threads: int | None = None,
                     runtimes: tuple[str, ...] = ("eager",), log: Callable[[str], None] | None = print) -> list[dict]:
    """GFLOPs per view, parameters, inference and training-step clips/s and peak memory of each model.

    All models are timed in one process, their inference and training steps interleaved
    (``time_interleaved``), on the same input size and batch. GFLOPs come from one counter
    (``count_gflops``: multiply-adds of matmuls, convolutions and attention) at batch 1.
    ``frames`` may list several frame counts (one row per sfvideo model and count); ``runtimes``
    adds inference-only rows of the sfvideo models in ``compiled`` / ``onnxruntime``.
    """
    from ..utils.flops import count_gflops, count_params

    log = log or (lambda _msg: None)
    dev = torch.device(device)
    specs = _specs(names, frames, size, quick)
    mem = _measure_all(specs, batch, device, amp, quick, threads, log) if memory else {}
    rows, steps = [], {}
    for spec in specs:
        log(f"[build] {spec.name} ({spec.input_desc})")
        model = spec.build().to(dev)
        gflops = count_gflops(model, make_clip(spec, 1, dev))
        timed = torch.compile(model) if compile else model
        clip = make_clip(spec, batch, dev)
        base = {"model": spec.name, "source": spec.source, "input": spec.input_desc, "gflops": gflops,
                "params_m": count_params(model) / 1e6, "key": spec_key(spec)}
        for kind, fn in model_steps(timed, clip, amp).items():
            steps[f"{spec_key(spec)}/eager/{kind}"] = fn
        rows.append({**base, "runtime": "eager" if not compile else "compiled"})
        for runtime in runtimes if spec.source == "sfvideo" else ():
            if runtime != "eager":
                steps[f"{spec_key(spec)}/{runtime}/infer"] = runtime_step(model, clip, runtime, threads)
                rows.append({**base, "runtime": runtime})
    log(f"[time] {len(steps)} steps interleaved, {warmup} warmup + {iters} timed calls each")
    times = time_rounds(steps, iters=iters, warmup=warmup)
    sec = {k: statistics.median(v) for k, v in times.items()}
    log("[time] s/call: " + ", ".join(f"{k} {v:.3f}" for k, v in sec.items()))
    for row in rows:
        step = f"{row['key']}/{'eager' if row['runtime'] == 'compiled' and compile else row['runtime']}"
        row["infer_clips_s"] = batch / sec[f"{step}/infer"]
        row["train_clips_s"] = batch / sec[f"{step}/train"] if f"{step}/train" in sec else float("nan")
        row["infer_mem_mb"] = mem.get(row["key"], {}).get("infer", float("nan")) if row["runtime"] == "eager" \
            else float("nan")
        row["train_mem_mb"] = mem.get(row["key"], {}).get("train", float("nan")) if row["runtime"] == "eager" \
            else float("nan")
        row["infer_times"] = times[f"{step}/infer"]
    return rows


def ratio_to(rows: list[dict], reference: str = "slow_r50") -> dict[str, float]:
    """Each row's inference speed over ``reference``'s, the median of per-round time ratios
    (``paired_ratio``): > 1 faster than the reference."""
    ref = next((r for r in rows if r["model"] == reference), None)
    if ref is None:
        return {}
    return {f"{r['key']}/{r['runtime']}": statistics.median(a / b for a, b in zip(ref["infer_times"], r["infer_times"]))
            for r in rows}


BENCHMARK_COLUMNS = ("model", "input (T x H x W)", "runtime", "GFLOPs / view", "params (M)", "infer clips/s",
                     "infer speed vs slow_r50", "train clips/s", "infer peak mem (MB)", "train peak mem (MB)")


def machine_description(device: str = "cpu") -> str:
    """CPU model, threads, torch version and device, for a table header."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        import platform

        cpu = platform.processor() or cpu
    dev = device
    if device.startswith("cuda") and torch.cuda.is_available():
        dev = f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return f"{cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}, device {dev}"


def format_benchmark_table(rows: list[dict], header: str) -> str:
    """Markdown table of ``benchmark_models`` rows under a one-line header."""

    def mem(v: float) -> str:
        return "n/a" if v != v else f"{v:.0f}" if v >= 10 else f"{v:.1f}"  # NaN: not measured

    lines = [header, "", "| " + " | ".join(BENCHMARK_COLUMNS) + " |", "|" + "---|" * len(BENCHMARK_COLUMNS)]
    ratios = ratio_to(rows)
    for r in rows:
        ratio = ratios.get(f"{r.get('key', r['model'])}/{r.get('runtime', 'eager')}")
        train = "n/a" if r["train_clips_s"] != r["train_clips_s"] else f"{r['train_clips_s']:.3f}"
        lines.append(f"| {r['model']} | {r['input']} | {r.get('runtime', 'eager')} | {r['gflops']:.2f} | "
                     f"{r['params_m']:.2f} | {r['infer_clips_s']:.3f} | "
                     f"{'n/a' if ratio is None else f'{ratio:.2f}x'} | {train} | {mem(r['infer_mem_mb'])} | "
                     f"{mem(r['train_mem_mb'])} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- official comparison
# The fixtures' small architecture (tests/fixtures/official_sparseformer/README.md).
FIXTURE_SMALL_ARCH = dict(num_classes=10, temporal_replicates=2, conv_dim=16, num_tokens=9, num_points=9,
                          widths=(64, 128, 128), repeats=(2, 1, 1), num_heads=64)
FIXTURES_DIR = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "official_sparseformer"


def zero_official_drop_path(model: nn.Module) -> None:
    """Drop path off in the official model: each ``SFUnit`` keeps ``drop_path`` as a float or a
    list with one rate per repeat, applied in ``forward`` whatever the module's mode."""
    for m in model.modules():
        rate = getattr(m, "drop_path", None)
        if isinstance(rate, (list, tuple)):
            m.drop_path = [0.0] * len(rate)
        elif isinstance(rate, float):
            m.drop_path = 0.0


def official_and_sfvideo_tiny(official_dir: str | Path, device: torch.device,
                              num_classes: int = 400) -> tuple[nn.Module, nn.Module]:
    """The official MediaSparseFormer (SF-T, 8 replicates) and sfvideo's ``video_tiny``, both
    without drop path, with the official model holding sfvideo's (random) weights."""
    from ..models import create_model

    ours = create_model("video_tiny", num_classes=num_classes, drop_path_rate=0.0)
    official = load_official_media_sparseformer(official_dir, "tiny", replicates=8, num_classes=num_classes)
    zero_official_drop_path(official)
    official.load_state_dict(ours.state_dict(), strict=True)
    return official.to(device), ours.to(device)


def max_abs_diff(a: nn.Module, b: nn.Module, clip: torch.Tensor) -> float:
    """Largest difference of two models' logits on ``clip`` (eval mode, fp32)."""
    a.eval(), b.eval()
    with torch.inference_mode():
        return (a(clip).float() - b(clip).float()).abs().max().item()


def bf16_agreement_on_fixture(fixtures_dir: str | Path = FIXTURES_DIR) -> dict[str, float]:
    """sfvideo's small video model with the official fixture weights (``media_small_r2.pth``)
    on the fixture clips, fp32 vs bf16 autocast (CPU): argmax agreement and logit gaps."""
    from ..models import VideoSparseFormer

    fixtures_dir = Path(fixtures_dir)
    model = VideoSparseFormer(**FIXTURE_SMALL_ARCH).eval()
    state = torch.load(fixtures_dir / "media_small_r2.pth", map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    ref = torch.load(fixtures_dir / "media_small_r2_logits.pt", map_location="cpu", weights_only=True)
    video = ref["video"]  # (B, 3, T, H, W)
    with torch.inference_mode():
        fp32 = model(video)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = model(video).float()
    return {"clips": video.shape[0],
            "argmax_agreement": (fp32.argmax(-1) == bf16.argmax(-1)).float().mean().item(),
            "bf16_vs_fp32_max_abs": (bf16 - fp32).abs().max().item(),
            "fp32_vs_official_max_abs": (fp32 - ref["logits"]).abs().max().item()}


def compare_with_official(official_dir: str | Path, frames: tuple[int, ...] = (8, 32), batch: int = 2,
                          size: int = 224, iters: int = 2, warmup: int = 1, device: str = "cpu",
                          log: Callable[[str], None] | None = print) -> dict:
    """Official MediaSparseFormer (SF-T, 8 replicates) vs sfvideo's ``video_tiny`` on identical
    weights and input, in one process with runs interleaved.

    Returns ``{"max_abs_diff": ..., "rows": [...], "fixture": ...}``; each row holds, at one
    frame count, ratios official time / sfvideo time (> 1: sfvideo faster) for fp32 inference,
    fp32 training steps, and sfvideo bf16-autocast inference against official fp32 inference.
    """
    log = log or (lambda _msg: None)
    dev = torch.device(device)
    official, ours = official_and_sfvideo_tiny(official_dir, dev)
    check = torch.randn(batch, 3, frames[0], size, size, device=dev)  # (B, C, T, H, W)
    diff = max_abs_diff(official, ours, check)
    log(f"[check] identical weights, {tuple(check.shape)}: max |official - sfvideo| = {diff:.2e}")
    if diff > 1e-3:
        raise RuntimeError(f"official and sfvideo outputs differ by {diff:.3g} on identical weights: "
                           "the timings would compare different functions")
    rows = []
    for t in frames:
        clip = torch.randn(batch, 3, t, size, size, device=dev)  # (B, C, T, H, W)
        off, sf = model_steps(official, clip), model_steps(ours, clip)
        fp32 = {"official/infer": off["infer"], "sfvideo/infer": sf["infer"],
                "official/train": off["train"], "sfvideo/train": sf["train"]}
        log(f"[time] {t} frames: {len(fp32)} fp32 steps interleaved, {warmup} warmup + {iters} timed calls each")
        times = time_rounds(fp32, iters=iters, warmup=warmup)
        # bf16 in its own rounds: its much slower calls (on CPUs without native bf16) would
        # otherwise sit between the fp32 runs being compared.
        log(f"[time] {t} frames: sfvideo bf16 inference vs official fp32 inference, {iters} rounds")
        bf16 = time_rounds({"official/infer": off["infer"],
                            "sfvideo_bf16/infer": _in_mode(ours, False, inference_step(ours, clip, "bf16"))},
                           iters=iters, warmup=warmup)
        sec = {k: statistics.median(v) for k, v in times.items()}
        sec["sfvideo_bf16/infer"] = statistics.median(bf16["sfvideo_bf16/infer"])
        rows.append({"frames": t, "batch": batch, "size": size, "seconds": sec,
                     "infer_ratio": paired_ratio(times, "official/infer", "sfvideo/infer"),
                     "train_ratio": paired_ratio(times, "official/train", "sfvideo/train"),
                     "bf16_infer_ratio": paired_ratio(bf16, "official/infer", "sfvideo_bf16/infer")})
        r = rows[-1]
        log(f"[result] {t} frames: official/sfvideo time, inference {r['infer_ratio']:.2f}, train step "
            f"{r['train_ratio']:.2f}, sfvideo bf16 inference vs official fp32 {r['bf16_infer_ratio']:.2f}")
    return {"max_abs_diff": diff, "rows": rows, "fixture": bf16_agreement_on_fixture()}


def format_official_table(result: dict, header: str) -> str:
    """Markdown table of ``compare_with_official``'s ratios and seconds per step."""
    lines = [header, "",
             f"Identical weights: max |official - sfvideo| logits = {result['max_abs_diff']:.2e}. "
             "Ratios are official time / sfvideo time (> 1: sfvideo faster), the median over rounds of "
             "back-to-back runs; seconds are medians.", "",
             "| input (B x T x H x W) | inference fp32 | train step fp32 | sfvideo bf16 inference vs official fp32 "
             "| s/step official infer / sfvideo infer / sfvideo bf16 infer / official train / sfvideo train |",
             "|---|---|---|---|---|"]
    for r in result["rows"]:
        s = r["seconds"]
        secs = " / ".join(f"{s[k]:.3f}" for k in ("official/infer", "sfvideo/infer", "sfvideo_bf16/infer",
                                                  "official/train", "sfvideo/train"))
        lines.append(f"| {r['batch']} x {r['frames']} x {r['size']}^2 | {r['infer_ratio']:.2f} | "
                     f"{r['train_ratio']:.2f} | {r['bf16_infer_ratio']:.2f} | {secs} |")
    f = result["fixture"]
    lines += ["", f"bf16 vs fp32 on the fixture clips (media_small_r2, {f['clips']} clips): argmax agreement "
              f"{f['argmax_agreement']:.0%}, max |bf16 - fp32| logits {f['bf16_vs_fp32_max_abs']:.3g} "
              f"(fp32 vs official reference logits {f['fp32_vs_official_max_abs']:.2e})."]
    return "\n".join(lines)
