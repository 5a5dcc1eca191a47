"""Export a video model to ONNX (or a ``torch.export`` program) with what inference needs inside.

ONNX: how the model's trilinear read of the feature volume is written
(``sfvideo.models.ops.VOLUME_SAMPLING``, all the same function to float rounding): from opset 20
by default as eight corner reads of channels-last rows (``gather``: ONNX Gather and arithmetic,
which onnxruntime runs faster on CPU than its GridSample); below 20, for runtimes whose
GridSample is 4-D only (TensorRT, OpenVINO), as two 4-D bilinear samples of neighbouring frames
blended in time (``frame_pairs``); ``trilinear`` keeps one 5-D GridSample (opset 20+). Opset 23
adds ONNX's fused Attention, which onnxruntime runs faster than its MatMul/Softmax/MatMul form
(``onnxruntime_cpu_opset``). The batch axis is dynamic; frames and crop size are fixed by the
input protocol.

Metadata (ONNX ``metadata_props``, torch.export ``extra_files``): ``sfvideo.protocol`` (JSON of
``InputProtocol``: frames, sampling rate, crop size, mean/std, test views), ``sfvideo.class_names``
(JSON list or null), ``sfvideo.model`` (JSON of the ``MODEL.*`` keys), ``sfvideo.input``
(the input contract). ``sfvideo.deploy.onnx_runtime`` reads them back without torch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from ..models.protocol import INPUT_CONTRACT

FORMATS = ("onnx", "torch-export")
MIN_VOLUME_OPSET = 20  # GridSample on 5-D input (ONNX opset 20)
MIN_OPSET = 16  # GridSample itself (4-D)
ATTENTION_OPSET = 23  # ONNX Attention; onnxruntime has a CPU kernel for it from 1.23
DYNAMO_MIN_OPSET = 18  # the opset torch's dynamo exporter writes natively
INPUT_NAME, OUTPUT_NAME, ROIS_NAME = "clip", "logits", "rois"
# What an exported file's second output is, appended to the model's input contract in its metadata.
ROIS_CONTRACT = "rois (ONNX): (B, N, 6), the last layer's token RoIs (x0, y0, t0, x1, y1, t1) in [0, 1] of the clip"


def export_metadata(protocol, class_names: Sequence[str] | None, model_keys: dict[str, Any]) -> dict[str, str]:
    """String key/value pairs describing the model's input protocol, classes and architecture."""
    return {
        "sfvideo.protocol": json.dumps(protocol.to_dict()),
        "sfvideo.class_names": json.dumps(list(class_names) if class_names else None),
        "sfvideo.model": json.dumps(model_keys),
        "sfvideo.input": f"{INPUT_CONTRACT}; {ROIS_CONTRACT}",
    }


def volume_sampling_for(opset: int) -> str:
    """The default 3-D sampling of an opset: gather from 20 (onnxruntime's fastest on CPU), frame
    pairs (4-D GridSample, what TensorRT and OpenVINO run) below."""
    if opset < MIN_OPSET:
        raise ValueError(f"opset {opset} has no GridSample; use {MIN_OPSET} or above (20+ for 5-D GridSample)")
    return "gather" if opset >= MIN_VOLUME_OPSET else "frame_pairs"


def opset_range() -> tuple[int, int]:
    """The opsets an ONNX export can be made at: from GridSample's (``MIN_OPSET``) to the newest
    the installed ``onnx`` knows (torch's exporter silently writes another for a newer one)."""
    import onnx

    return MIN_OPSET, onnx.defs.onnx_opset_version()


def onnxruntime_cpu_opset() -> int:
    """The opset whose export the installed onnxruntime runs fastest on CPU: 23, whose fused
    Attention it runs faster than the MatMul/Softmax/MatMul of opset 20 (it has the kernel from
    1.23 on), else 20."""
    import onnxruntime

    version = tuple(int(p) for p in onnxruntime.__version__.split(".")[:2] if p.isdigit())
    return ATTENTION_OPSET if version >= (1, 23) else MIN_VOLUME_OPSET


def example_clip(protocol, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """A random normalised clip (B, 3, T, S, S) of the protocol's shape."""
    g = torch.Generator().manual_seed(seed)
    t, s = protocol.num_frames, protocol.crop_size
    return torch.randn(batch, 3, t, s, s, generator=g)  # (B, C, T, H, W)


class LogitsAndRois(nn.Module):
    """A model as its ONNX export runs it: the logits, and the last layer's token RoIs that
    ``sfvideo stream --out-video`` draws (a second output; consumers of the first need not read it)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tokens, rois = self.model.forward_tokens(x)  # (B, N, D), (B, N, 2S)
        return self.model.forward_head(tokens), rois


def _batch_dim():
    return {0: torch.export.Dim("batch", min=1, max=4096)}


def export_onnx(model: nn.Module, out: str | os.PathLike, metadata: dict[str, str], opset: int = 20,
                sampling: str | None = None) -> Path:
    """Write ``model`` (eval mode, fp32) as ONNX with a dynamic batch axis and ``metadata``; its
    outputs are the logits and the last layer's token RoIs (``LogitsAndRois``).

    ``sampling``: how the feature volume is read (``sfvideo.models.ops.VOLUME_SAMPLING``); default
    ``volume_sampling_for(opset)``."""
    import warnings

    import onnx

    from ..models import ops
    from .onnx_graph import fuse_attention_heads

    model = model.eval().float()
    clip = example_clip(model.protocol)  # batch 2: a batch of 1 could be specialised away
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    mode = volume_sampling_for(opset) if sampling is None else sampling
    if mode == "trilinear" and opset < MIN_VOLUME_OPSET:
        raise ValueError(f"trilinear (5-D) sampling needs opset {MIN_VOLUME_OPSET}+, not {opset}")
    net, outputs = LogitsAndRois(model).eval(), [OUTPUT_NAME, ROIS_NAME]
    with ops.volume_sampling(mode), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if opset >= DYNAMO_MIN_OPSET:
            torch.onnx.export(net, (clip,), str(out), dynamo=True, opset_version=opset, input_names=[INPUT_NAME],
                              output_names=outputs, dynamic_shapes=(_batch_dim(),), external_data=False,
                              verbose=False)
        else:  # the dynamo exporter writes opset 18 and its down-conversion fails on Reduce* axes inputs
            torch.onnx.export(net, (clip,), str(out), dynamo=False, opset_version=opset, input_names=[INPUT_NAME],
                              output_names=outputs, dynamic_axes={name: {0: "batch"} for name in [INPUT_NAME, *outputs]})
    proto = onnx.load(str(out))
    written = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=opset)
    if written != opset:  # the exporter converts down from its own opset and only warns when it cannot
        raise RuntimeError(f"{out}: the exporter wrote opset {written}, not the requested {opset}")
    fuse_attention_heads(proto)  # opset 23+: the heads packed into ONNX Attention, no layout copies
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(out))
    return out


def export_torch_program(model: nn.Module, out: str | os.PathLike, metadata: dict[str, str]) -> Path:
    """Save a ``torch.export`` program of ``model`` (dynamic batch), the metadata as extra files."""
    model = model.eval().float()
    clip = example_clip(model.protocol)
    with torch.no_grad():
        program = torch.export.export(model, (clip,), dynamic_shapes=(_batch_dim(),))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.export.save(program, str(out), extra_files=dict(metadata))
    return out


def load_torch_program(path: str | os.PathLike) -> tuple[Any, dict[str, str]]:
    """A saved ``torch.export`` program and its metadata."""
    extra = {k: "" for k in ("sfvideo.protocol", "sfvideo.class_names", "sfvideo.model", "sfvideo.input")}
    program = torch.export.load(str(path), extra_files=extra)
    return program, extra


@torch.no_grad()
def max_logit_difference(model: nn.Module, run, clips: Sequence[torch.Tensor]) -> float:
    """Largest |PyTorch - other| logit over ``clips`` (each (B, 3, T, H, W)); ``run`` maps a numpy
    batch to numpy logits (an onnxruntime session, a torch.export program, ...)."""
    model = model.eval()
    worst = 0.0
    for clip in clips:
        ref = model(clip.float()).numpy()
        got = run(clip.float().numpy())
        if got.shape != ref.shape:
            raise RuntimeError(f"exported model returned {got.shape}, PyTorch {ref.shape}")
        worst = max(worst, float(abs(got - ref).max()))
    return worst


def model_for_export(cfg, log=print) -> nn.Module:
    """The config's model with ``TEST.CHECKPOINT`` loaded (random weights, with a warning, without one)."""
    from ..checkpoint import load_test_weights
    from ..models import build_model

    model = build_model(cfg)
    if cfg.TEST.CHECKPOINT:
        load_test_weights(model, cfg.TEST.CHECKPOINT, cfg.TEST.USE_EMA, log=log)
    else:
        log("warning: no TEST.CHECKPOINT given: exporting randomly initialised weights")
    return model.eval()


def real_clips(cfg, videos: Sequence[str]) -> list[torch.Tensor]:
    """The test views (V, 3, T, S, S), normalised, of each of ``videos``: the parity check's real clips."""
    from ..data.build import build_test_views
    from .preprocess import model_input

    p = cfg.DATA
    return [model_input(build_test_views(cfg, v), p.MEAN, p.STD) for v in videos]


def _onnx_runner(path: Path):
    from .onnx_runtime import OnnxVideoModel

    session = OnnxVideoModel(path)
    return lambda x: session.session.run(None, {session.input_name: x})[0]


def run_export(cfg, out: str | os.PathLike, *, fmt: str = "onnx", opset: int = 20,
               class_names: Sequence[str] | None = None, videos: Sequence[str] = (), tolerance: float = 1e-4,
               sampling: str | None = None, log=print) -> dict[str, Any]:
    """Export the model of ``cfg`` (weights ``TEST.CHECKPOINT``) and check the exported model against
    PyTorch on random clips (batch 1 and 3) and on the test views of ``videos``.

    Returns:
        ``{"path", "format", "opset", "max_abs_diff", "checked"}``.

    Raises:
        RuntimeError: the largest logit difference is above ``tolerance``.
    """
    from ..checkpoint import model_record

    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}; expected one of {FORMATS}")
    model = model_for_export(cfg, log)
    meta = export_metadata(model.protocol, class_names, model_record(cfg))
    if fmt == "onnx":
        path = export_onnx(model, out, meta, opset, sampling)
        run = _onnx_runner(path)
    else:
        path = export_torch_program(model, out, meta)
        program = load_torch_program(path)[0].module()
        run = lambda x: program(torch.from_numpy(x)).detach().numpy()  # noqa: E731
    clips = [example_clip(model.protocol, b, seed=b) for b in (1, 3)] + real_clips(cfg, videos)
    diff = max_logit_difference(model, run, clips)
    what = f"{len(clips)} batches (random at batch 1 and 3" + (f", test views of {len(videos)} videos)" if videos else ")")
    log(f"{path}: {fmt}{f' opset {opset}' if fmt == 'onnx' else ''}; largest |exported - PyTorch| logit "
        f"over {what}: {diff:.3g}")
    if diff > tolerance:
        raise RuntimeError(f"{path}: exported logits differ from PyTorch by {diff:.3g} > {tolerance:g}")
    return {"path": str(path), "format": fmt, "opset": opset if fmt == "onnx" else None, "max_abs_diff": diff,
            "checked": what}
