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


def read_onnx_metadata(session) -> dict[str, Any]:
    """``{"protocol": dict, "class_names": list | None, "model": dict}`` from a session's metadata."""
    meta = session.get_modelmeta().custom_metadata_map
    if "sfvideo.protocol" not in meta:
        raise ValueError("this ONNX file has no sfvideo metadata (export it with `sfvideo export`)")
    return {"protocol": json.loads(meta["sfvideo.protocol"]),
            "class_names": json.loads(meta.get("sfvideo.class_names", "null")),
            "model": json.loads(meta.get("sfvideo.model", "{}"))}


class OnnxVideoModel:
    """An exported model in an onnxruntime session: ``model(clips)`` -> logits (V, K), numpy.

    Args:
        path: the ``.onnx`` file.
        threads: intra-op threads (None: onnxruntime's default).
        providers: execution providers (default CPU; e.g. ``["CUDAExecutionProvider", ...]``).
        max_batch: clips per session run (0: all at once).
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None,
                 providers: Sequence[str] | None = None, max_batch: int = 0):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        self.path = os.fspath(path)
        self.session = ort.InferenceSession(self.path, opts, providers=list(providers or ["CPUExecutionProvider"]))
        meta = read_onnx_metadata(self.session)
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
