"""What ``sfvideo predict`` runs: a classifier from a config/checkpoint (PyTorch) or from an
``.onnx`` file alone (onnxruntime), then top-k of one video or a whole-video timeline.

The onnxruntime branch needs onnxruntime, numpy, PyAV and this package's torch-free modules
(``deploy.onnx_runtime``, ``deploy.stream``, ``deploy.timeline``, ``data.pyav_reader``,
``data.sampling``). Where torch is importable it uses the data pipeline's test views
(``build_test_views``, PyAV decoder) and ``engine.evaluate.ensemble``, so its input pixels are
those of ``sfvideo test``; without torch, their numpy twins (``stream.stream_test_views`` with
``deploy.resize``, ``onnx_runtime.ensemble_np``).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

RUNTIMES = ("auto", "eager", "onnxruntime")


@dataclass
class Runner:
    """A loaded model as ``classify(clips uint8 or normalised (B, 3, T, S, S)) -> logits (B, K)``."""

    classify: Callable[[np.ndarray], np.ndarray]
    protocol: dict[str, Any]
    class_names: list[str] | None
    runtime: str
    cfg: Any = None  # the config (PyTorch runtime)
    model: Any = None  # the nn.Module (PyTorch runtime)


def onnx_runner(path: str, threads: int | None = None, providers=None, spin_wait: bool = True) -> Runner:
    """``path`` in onnxruntime (``spin_wait``: see ``OnnxVideoModel``)."""
    from .onnx_runtime import OnnxVideoModel

    model = OnnxVideoModel(path, threads=threads, providers=providers, spin_wait=spin_wait)
    return Runner(model, model.protocol, model.class_names, "onnxruntime")


def torch_runner(cfg, class_names: list[str] | None = None, threads: int | None = None) -> Runner:
    """The config's model with ``TEST.CHECKPOINT`` loaded, in eval mode on ``cfg.DEVICE``."""
    import logging

    import torch

    from ..checkpoint import load_test_weights
    from ..data.build import class_names_from_cfg
    from ..engine.distributed import resolve_device
    from ..models import build_model
    from ..models.protocol import InputProtocol
    from .timeline import TorchClassifier

    if threads:
        torch.set_num_threads(threads)
    device = resolve_device(cfg.DEVICE)
    model = build_model(cfg)
    load_test_weights(model, cfg.TEST.CHECKPOINT, cfg.TEST.USE_EMA, log=logging.getLogger("sfvideo").info)
    model = model.to(device).eval()
    protocol = InputProtocol.from_config(cfg).to_dict()
    names = class_names or class_names_from_cfg(cfg)
    if names and len(names) != cfg.MODEL.NUM_CLASSES:  # e.g. a checkpoint whose names were never recorded
        names = None
    return Runner(TorchClassifier(model, protocol["mean"], protocol["std"], str(device)), protocol, names, "eager",
                  cfg, model)


# Variants for which onnxruntime (``export.onnxruntime_cpu_opset``, gather sampling) runs fastest on CPU
# (results/onnx_cpu.csv: ``sfvideo benchmark --runtimes eager onnxruntime``); the tiny test/toy
# variants stay eager, where an export would cost more than it saves.
ORT_FASTEST = ("video_tiny", "video_small", "video_base")


def cache_dir() -> Path:
    """sfvideo's cache folder: ``SFVIDEO_CACHE``, else ``~/.cache/sfvideo``."""
    return Path(os.environ.get("SFVIDEO_CACHE", Path.home() / ".cache" / "sfvideo"))


def onnx_cache_dir() -> Path:
    return cache_dir() / "onnx"


def export_code_digest() -> str:
    """A digest of the code an exported file comes from: the model package, the exporter and its
    graph rewrites, and torch's version (its exporter)."""
    import torch

    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha1(torch.__version__.encode())
    for path in sorted((root / "models").glob("*.py")) + [root / "deploy" / "export.py", root / "deploy" / "onnx_graph.py"]:
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def cached_onnx_export(cfg, class_names: list[str] | None = None, log=print) -> Path:
    """The checkpoint of ``cfg`` exported to ONNX once (parity-checked against PyTorch, 1e-4), then
    reused: the cache key covers the checkpoint file (path, size, mtime), the model and protocol,
    the export's form (opset, volume sampling) and the code it comes from (``export_code_digest``:
    an export made by another sfvideo or torch is made again).

    Raises:
        RuntimeError: the export is not cached and the cache folder cannot be written (checked
            before the export's work).
    """
    from ..checkpoint.hub import resolve_checkpoint, weights_file
    from ..models.protocol import InputProtocol
    from ..utils.io import atomic_path, folder_write_problem
    from .export import onnxruntime_cpu_opset, run_export, volume_sampling_for

    ckpt = weights_file(resolve_checkpoint(cfg.TEST.CHECKPOINT)).resolve()  # a directory's or Hub's model.safetensors
    st = ckpt.stat()
    opset = onnxruntime_cpu_opset()
    ident = json.dumps([str(ckpt), st.st_size, st.st_mtime_ns, cfg.TEST.USE_EMA, dict(cfg.MODEL),
                        InputProtocol.from_config(cfg).to_dict(), class_names, opset, volume_sampling_for(opset),
                        export_code_digest()], sort_keys=True, default=str)
    path = onnx_cache_dir() / f"{ckpt.stem}-{hashlib.sha1(ident.encode()).hexdigest()[:16]}.onnx"
    problem = "" if path.is_file() else folder_write_problem(path.parent)
    if problem:
        raise RuntimeError(f"the ONNX cache {path.parent} {problem}: set SFVIDEO_CACHE to a folder you can write, "
                           "or use --runtime eager")
    if not path.is_file():
        log(f"exporting {ckpt.name} to {path} for onnxruntime (once; later runs reuse it)")
        with atomic_path(path) as tmp:
            run_export(cfg, tmp, opset=opset, class_names=class_names, log=log)
    return path


def checkpoint_runner(cfg, class_names: list[str] | None = None, runtime: str = "auto",
                      threads: int | None = None, log=print, spin_wait: bool = True) -> Runner:
    """The runner of the config's checkpoint in ``runtime`` (``auto``: :func:`auto_runtime`); for
    onnxruntime the checkpoint is exported once into a cache (:func:`cached_onnx_export`) and run
    with ``spin_wait`` (see ``OnnxVideoModel``)."""
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime {runtime!r}; expected one of {RUNTIMES}")
    runtime = auto_runtime(cfg) if runtime == "auto" else runtime
    if runtime == "onnxruntime":
        path = cached_onnx_export(cfg, class_names or class_names_of(cfg), log=log)
        return onnx_runner(str(path), threads, spin_wait=spin_wait)
    return torch_runner(cfg, class_names, threads)


def class_names_of(cfg) -> list[str] | None:
    """The names ``DATA.CLASS_NAMES`` lists, when it lists one per class; else None."""
    from ..data.build import class_names_from_cfg

    try:
        names = class_names_from_cfg(cfg)
    except FileNotFoundError:
        return None
    return names if names and len(names) == cfg.MODEL.NUM_CLASSES else None


def auto_runtime(cfg) -> str:
    """``onnxruntime`` where it is the fastest path (CPU, a K400-size variant, onnxruntime
    installed, a checkpoint to export), else ``eager``."""
    import importlib.util

    if cfg.MODEL.ARCH not in ORT_FASTEST or not cfg.TEST.CHECKPOINT or str(cfg.DEVICE) not in ("cpu", "auto"):
        return "eager"
    if importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnxscript") is None:
        return "eager"
    if str(cfg.DEVICE) == "auto":
        import torch

        if torch.cuda.is_available():
            return "eager"
    return "onnxruntime"


def top_classes(runner: Runner, video: str, topk: int = 5) -> list[tuple[int, str, float]]:
    """Top-``topk`` (index, name, probability) over the protocol's test views of ``video``."""
    if runner.runtime == "eager":  # the config's own views and decoder
        from ..engine.evaluate import predict_video

        return predict_video(runner.cfg, video, model=runner.model, topk=topk, class_names=runner.class_names)
    from .onnx_runtime import OnnxVideoModel
    from .stream import test_views

    model: OnnxVideoModel = runner.classify
    return model.topk(test_views(video, runner.protocol), topk)


def timeline(runner: Runner, video: str, out_dir: str, *, window_s: float | None, stride_s: float | None,
             topk: int = 5, batch: int = 8, progress: bool = True, picture: bool = True) -> dict[str, Any]:
    """Run and write the timeline of ``video`` into ``out_dir``; returns the result."""
    from .timeline import run_timeline, write_timeline

    result = run_timeline(video, runner.classify, runner.protocol, window_s=window_s, stride_s=stride_s,
                          class_names=runner.class_names, topk=topk, batch=batch, progress=progress)
    result["files"] = [str(p) for p in write_timeline(result, out_dir, picture=picture)]
    return result
