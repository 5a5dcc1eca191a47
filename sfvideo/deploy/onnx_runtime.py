"""Run an exported ``.onnx`` video model with onnxruntime and numpy only (no torch, no model code).

The file's metadata (written by ``sfvideo.deploy.export``) supplies the input protocol (frames,
sampling rate, crop size, mean/std, test views) and the class names, so a deployment needs
this module, ``preprocess``, onnxruntime, numpy and a decoder.
"""

from __future__ import annotations

import json
import os
from typing import Any, Sequence

import numpy as np

from .preprocess import model_input, torch_available


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def ensemble_np(logits: np.ndarray, method: str = "softmax_mean") -> np.ndarray:
    """``engine.evaluate.ensemble``'s probabilities in numpy, for where torch is absent: (K,) of
    one video from its view logits (V, K)."""
    if method == "softmax_mean":
        return softmax(logits.astype(np.float64)).mean(0)
    if method == "logit_mean":
        return softmax(logits.astype(np.float64).mean(0))
    if method == "logit_max":
        return softmax(logits.astype(np.float64).max(0))
    raise ValueError(f"TEST.ENSEMBLE_METHOD {method!r}; expected one of ['softmax_mean', 'logit_mean', 'logit_max']")


def ensemble_probs(logits: np.ndarray, method: str = "softmax_mean") -> np.ndarray:
    """Probabilities (K,) of one video from its view logits (V, K): ``engine.evaluate.ensemble``
    (what ``sfvideo test`` uses) where torch is importable, else its numpy twin ``ensemble_np``."""
    if not torch_available():
        return ensemble_np(logits, method)
    import torch

    from ..engine.evaluate import ensemble

    return ensemble(torch.from_numpy(np.ascontiguousarray(logits)), method)[1].double().numpy()


# The protocol fields this module and ``stream.test_views`` read (``sfvideo.models.protocol.
# InputProtocol``'s; importing that package would import torch).
REQUIRED_PROTOCOL = ("num_frames", "sampling_rate", "target_fps", "crop_size", "mean", "std", "num_clips")
_METADATA = {"protocol": ("sfvideo.protocol", None), "class_names": ("sfvideo.class_names", "null"),
             "model": ("sfvideo.model", "{}")}


def open_session(path: str, options, providers: Sequence[str]):
    """An onnxruntime session of ``path``; a ``ValueError`` naming the file when there is none to
    open (missing, empty, truncated, not ONNX)."""
    import onnxruntime as ort

    if not os.path.isfile(path):
        raise ValueError(f"{path}: the ONNX file does not exist")
    if os.path.getsize(path) == 0:
        raise ValueError(f"{path}: the ONNX file is empty (0 bytes)")
    try:
        return ort.InferenceSession(path, options, providers=list(providers))
    except Exception as err:  # onnxruntime raises its own types (InvalidProtobuf, Fail, ...)
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0].rsplit("failed:", 1)[-1]
        raise ValueError(f"{path}: not a readable ONNX model ({reason.strip()}); truncated, or not a file from "
                         "`sfvideo export`?") from None


def read_onnx_metadata(session, path: str = "this ONNX file") -> dict[str, Any]:
    """``{"protocol": dict, "class_names": list | None, "model": dict}`` from a session's metadata.

    Raises:
        ValueError: no sfvideo metadata, a value that is not JSON, or a protocol without a field
            the runtime reads (the file and the key are named).
    """
    meta = session.get_modelmeta().custom_metadata_map
    if "sfvideo.protocol" not in meta:
        raise ValueError(f"{path} has no sfvideo metadata (export it with `sfvideo export`)")
    out = {}
    for name, (key, default) in _METADATA.items():
        try:
            out[name] = json.loads(meta.get(key, default))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: its {key} metadata is not valid JSON ({err.msg}); export it again with "
                             "`sfvideo export`") from None
    lacking = [k for k in REQUIRED_PROTOCOL if not isinstance(out["protocol"], dict) or k not in out["protocol"]]
    if lacking:
        raise ValueError(f"{path}: its sfvideo.protocol metadata lacks {', '.join(lacking)}; export it again with "
                         "`sfvideo export`")
    return out


def check_input_shape(session, protocol: dict[str, Any], path: str) -> None:
    """A ``ValueError`` naming the file when the model's input shape contradicts its metadata's frames
    and crop size (fixed axes only; the batch axis is free)."""
    shape = list(session.get_inputs()[0].shape)  # e.g. ["batch", 3, T, S, S]
    want = [3, protocol["num_frames"], protocol["crop_size"], protocol["crop_size"]]
    if len(shape) != 5 or any(isinstance(g, int) and g != w for g, w in zip(shape[1:], want)):
        raise ValueError(f"{path}: the model's input is {tuple(shape)} but its sfvideo.protocol metadata says "
                         f"{protocol['num_frames']} frames of {protocol['crop_size']}-pixel crops, (batch, 3, "
                         f"{protocol['num_frames']}, {protocol['crop_size']}, {protocol['crop_size']}); export it "
                         "again with `sfvideo export`")


class OnnxVideoModel:
    """An exported model in an onnxruntime session: ``model(clips)`` -> logits (V, K), numpy.

    Args:
        path: the ``.onnx`` file.
        threads: intra-op threads (None: onnxruntime's default).
        providers: execution providers (default CPU; e.g. ``["CUDAExecutionProvider", ...]``).
        max_batch: clips per session run (0: all at once).
        spin_wait: whether onnxruntime's threads spin between tasks (its default: fastest when the
            model has the cores to itself). False when other threads share the cores, as a live
            stream's reader does: spinning threads take the cores from it, and it from them.

    Raises:
        ValueError: a file that is missing, empty, unreadable, without sfvideo metadata, or whose
            input shape contradicts it (one line naming the file).
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None,
                 providers: Sequence[str] | None = None, max_batch: int = 0, spin_wait: bool = True):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if not spin_wait:
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        self.path = os.fspath(path)
        self.session = open_session(self.path, opts, providers or ["CPUExecutionProvider"])
        meta = read_onnx_metadata(self.session, self.path)
        check_input_shape(self.session, meta["protocol"], self.path)
        self.protocol: dict[str, Any] = meta["protocol"]
        self.class_names: list[str] | None = meta["class_names"]
        self.model_keys: dict[str, Any] = meta["model"]
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.max_batch = max_batch

    def __call__(self, clips: np.ndarray) -> np.ndarray:
        """Logits (V, K) of clips (V, 3, T, S, S): uint8 (normalised here) or normalised float."""
        return self._run(clips, self.output_names[:1])[0]

    def logits_and_rois(self, clips: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Logits (V, K) and the last layer's token RoIs (V, N, 6) (None: a file exported without them)."""
        if "rois" not in self.output_names:
            return self(clips), None
        logits, rois = self._run(clips, [self.output_names[0], "rois"])
        return logits, rois

    def _run(self, clips: np.ndarray, outputs: list[str]) -> list[np.ndarray]:
        x = np.ascontiguousarray(model_input(clips, self.protocol["mean"], self.protocol["std"]))
        step = self.max_batch or x.shape[0]
        runs = [self.session.run(outputs, {self.input_name: x[i:i + step]}) for i in range(0, x.shape[0], step)]
        return [np.concatenate([r[j] for r in runs], 0) for j in range(len(outputs))]

    def topk(self, views: np.ndarray, k: int = 5) -> list[tuple[int, str, float]]:
        """Top-``k`` (index, name, probability) of one video's views, ensembled per the protocol."""
        probs = ensemble_probs(self(views), self.protocol.get("ensemble", "softmax_mean"))
        order = np.argsort(-probs, kind="stable")[:k]
        names = self.class_names
        return [(int(i), names[i] if names and i < len(names) else str(int(i)), float(probs[i])) for i in order]
