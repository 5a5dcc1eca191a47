"""GPU checks of the deployment path, for a machine with a CUDA device (``tools/gpu_export_check.sh``):

* eager inference clips/s of ``video_tiny`` (32 x 224^2) in fp32 and bf16 autocast at each batch size,
  runs interleaved, and the bf16 vs fp32 logit gap / argmax agreement;
* the ONNX export (opset 20; trilinear, frame-pair and gather sampling) run by onnxruntime's CUDA provider
  when it is installed: largest logit difference to PyTorch fp32 and clips/s at each batch size.
"""

from __future__ import annotations

import functools
import statistics
import tempfile
from pathlib import Path
from typing import Sequence


def _eager(model, batches: Sequence[int], iters: int) -> dict:
    import torch

    from .timing import inference_step, time_rounds

    out = {}
    for b in batches:
        clip = torch.randn(b, 3, 32, 224, 224, device="cuda")  # (B, C, T, H, W)
        steps = {"fp32": inference_step(model, clip), "bf16": inference_step(model, clip, "bf16")}
        times = time_rounds(steps, iters=iters, warmup=2)
        with torch.inference_mode():
            ref = model(clip[:4]).float()
            with torch.autocast("cuda", dtype=torch.bfloat16):
                low = model(clip[:4]).float()
        out[f"batch{b}"] = {k: b / statistics.median(v) for k, v in times.items()}
        out[f"batch{b}"]["bf16_vs_fp32_max_abs"] = (low - ref).abs().max().item()
        out[f"batch{b}"]["argmax_agreement"] = (low.argmax(-1) == ref.argmax(-1)).float().mean().item()
        print(f"[eager] batch {b}: clips/s {out[f'batch{b}']}")
    return out


def _onnx(model, batches: Sequence[int], iters: int, workdir: Path) -> dict:
    import onnxruntime as ort
    import torch

    from ..deploy.export import export_metadata, export_onnx
    from ..deploy.onnx_runtime import OnnxVideoModel
    from .timing import time_rounds

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return {"skipped": f"onnxruntime has no CUDA provider here ({ort.get_available_providers()}); "
                           "pip install onnxruntime-gpu"}
    out = {}
    for sampling in ("trilinear", "frame_pairs", "gather"):
        path = export_onnx(model.cpu(), workdir / f"video_tiny_{sampling}.onnx",
                           export_metadata(model.protocol, None, {}), sampling=sampling)
        model.cuda()
        session = OnnxVideoModel(path, providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
        res = {"providers": session.session.get_providers()}
        for b in batches:
            x = torch.randn(b, 3, 32, 224, 224)  # (B, C, T, H, W)
            with torch.inference_mode():
                ref = model(x.cuda()).float().cpu().numpy()
            got = session(x.numpy())
            times = time_rounds({"onnx": functools.partial(session, x.numpy())}, iters=iters, warmup=1)["onnx"]
            res[f"batch{b}"] = {"clips_s": b / statistics.median(times), "max_abs_diff": float(abs(got - ref).max())}
        out[sampling] = res
        print(f"[onnxruntime cuda] {sampling}: {res}")
    return out


def gpu_export_checks(batches: Sequence[int] = (1, 32), iters: int = 10) -> dict | None:
    """Both checks on ``video_tiny`` (random weights); None without a CUDA device."""
    import torch

    if not torch.cuda.is_available():
        return None
    from ..models import create_model

    model = create_model("video_tiny", num_classes=400).cuda().eval()
    report = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
              "eager": _eager(model, batches, iters)}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            report["onnxruntime"] = _onnx(model, batches, iters, Path(tmp))
    except ImportError as err:
        report["onnxruntime"] = {"skipped": f"{err}"}
    return report
