"""An action timeline over a whole video: clip windows slid over the file, classified in batches.

``run_timeline`` streams the video (``stream.stream_clips``), classifies every window with any
``classify(clips uint8 (B, 3, T, S, S)) -> logits (B, K)`` (a PyTorch model through
:class:`TorchClassifier`, or an ``onnx_runtime.OnnxVideoModel``), and returns per-window top-k
plus a smoothed per-second label track; ``write_timeline`` writes ``timeline.csv``,
``timeline.json`` and ``timeline.png``. numpy only, so the onnxruntime path runs it without torch.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..data.pyav_reader import probe
from .onnx_runtime import softmax
from .preprocess import model_input
from .stream import frame_preparer, plan_windows, stream_clips

Classify = Callable[[np.ndarray], np.ndarray]


class TorchClassifier:
    """A PyTorch model as ``classify``: uint8 clips normalised with the protocol, logits as numpy."""

    def __init__(self, model, mean: Sequence[float], std: Sequence[float], device: str = "cpu"):
        self.model, self.mean, self.std, self.device = model.eval(), mean, std, device

    def __call__(self, clips: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.model(self._input(clips)).float().cpu().numpy()

    def logits_and_rois(self, clips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Logits (B, K) and the last layer's token RoIs (B, N, 2S), as numpy."""
        import torch

        with torch.inference_mode():
            tokens, rois = self.model.forward_tokens(self._input(clips))
            return self.model.forward_head(tokens).float().cpu().numpy(), rois.float().cpu().numpy()

    def _input(self, clips: np.ndarray):
        import torch

        return torch.from_numpy(np.ascontiguousarray(model_input(clips, self.mean, self.std))).to(self.device)


def default_window(protocol: dict[str, Any]) -> float:
    """The protocol's clip span in seconds: ``num_frames * sampling_rate / target_fps``."""
    return protocol["num_frames"] * protocol["sampling_rate"] / float(protocol["target_fps"])


def _name(names: Sequence[str] | None, k: int) -> str:
    return names[k] if names and 0 <= k < len(names) else str(k)


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", desc="timeline", dynamic_ncols=True, leave=False, file=sys.stderr)


def run_timeline(path: str | os.PathLike, classify: Classify, protocol: dict[str, Any], *,
                 window_s: float | None = None, stride_s: float | None = None,
                 class_names: Sequence[str] | None = None, topk: int = 5, batch: int = 8,
                 resize: str = "auto", progress: bool = False) -> dict[str, Any]:
    """Classify windows of ``window_s`` seconds every ``stride_s`` seconds (defaults: the protocol's
    clip span, half of it) over the whole of ``path``; the video is decoded once, streaming.

    Returns:
        ``{"video", "duration_s", "fps", "window_s", "stride_s", "classes", "windows": [{start_s,
        end_s, top1, top1_prob, topk: [[name, prob], ...]}], "per_second": [...], "segments":
        [...]}`` and, under ``"probs"``, the (W, K) window probabilities (not written to JSON).
    """
    num_frames, fps = probe(path)
    window_s = window_s or default_window(protocol)
    stride_s = stride_s or window_s / 2
    windows = plan_windows(num_frames, fps, window_s, stride_s, protocol["num_frames"])
    prep = frame_preparer(protocol["crop_size"], resize)
    bar = _progress(num_frames, progress)
    seen = [0]

    def on_frame(idx: int) -> None:
        if bar is not None and idx - seen[0] >= 25:
            bar.update(idx - seen[0])
            seen[0] = idx

    probs = []
    for _, clips in stream_clips(path, windows, prep, batch=batch, on_frame=on_frame):
        probs.append(softmax(classify(clips).astype(np.float64)))  # (B, K)
    if bar is not None:
        bar.close()
    probs = np.concatenate(probs, 0)  # (W, K)
    result = _window_rows(windows, probs, class_names, topk)
    duration = num_frames / fps
    per_second = per_second_track(windows, probs, duration)
    result.update(video=str(path), duration_s=duration, fps=fps, window_s=window_s, stride_s=stride_s,
                  classes=list(class_names) if class_names else None,
                  per_second=[{"second": s, "label": _name(class_names, k), "index": k, "prob": p}
                              for s, (k, p) in enumerate(per_second)],
                  segments=_segments(per_second, class_names), probs=probs)
    return result


def _window_rows(windows, probs: np.ndarray, names, topk: int) -> dict[str, Any]:
    rows = []
    for w, p in zip(windows, probs):
        order = np.argsort(-p, kind="stable")[:topk]
        rows.append({"start_s": round(w.start_s, 3), "end_s": round(w.end_s, 3), "top1": _name(names, int(order[0])),
                     "top1_index": int(order[0]), "top1_prob": float(p[order[0]]),
                     "topk": [[_name(names, int(k)), float(p[k])] for k in order]})
    return {"windows": rows}


def per_second_track(windows, probs: np.ndarray, duration: float, smooth: int = 1) -> list[tuple[int, float]]:
    """(class, probability) per second of video: window probabilities averaged over the windows
    overlapping that second (weighted by overlap), then over ``±smooth`` neighbouring seconds."""
    seconds = max(1, math.ceil(duration - 1e-6))
    acc = np.zeros((seconds, probs.shape[1]))
    for w, p in zip(windows, probs):
        for s in range(int(w.start_s), min(seconds, math.ceil(w.end_s))):
            overlap = min(w.end_s, s + 1) - max(w.start_s, s)
            if overlap > 0:
                acc[s] += overlap * p
    acc /= np.maximum(acc.sum(1, keepdims=True), 1e-12)
    if smooth > 0:
        kernel = np.ones(2 * smooth + 1)
        padded = np.pad(acc, ((smooth, smooth), (0, 0)), mode="edge")
        acc = np.stack([np.convolve(padded[:, k], kernel, mode="valid") for k in range(acc.shape[1])], 1) / kernel.sum()
    return [(int(a.argmax()), float(a.max())) for a in acc]


def _segments(track: list[tuple[int, float]], names) -> list[dict[str, Any]]:
    """Runs of equal labels in the per-second track."""
    out: list[dict[str, Any]] = []
    for s, (k, _) in enumerate(track):
        if out and out[-1]["index"] == k:
            out[-1]["end_s"] = s + 1
        else:
            out.append({"start_s": s, "end_s": s + 1, "label": _name(names, k), "index": k})
    return out


def timeline_csv(result: dict[str, Any]) -> str:
    """``start_s,end_s,top1,top1_prob`` then ``top2,top2_prob,...`` per window."""
    k = max((len(w["topk"]) for w in result["windows"]), default=1)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["start_s", "end_s", "top1", "top1_prob"] + [c for i in range(2, k + 1)
                                                                 for c in (f"top{i}", f"top{i}_prob")])
    for w in result["windows"]:
        rest = [v for name, prob in w["topk"][1:] for v in (name, f"{prob:.6f}")]
        writer.writerow([f"{w['start_s']:.3f}", f"{w['end_s']:.3f}", w["top1"], f"{w['top1_prob']:.6f}"] + rest)
    return buf.getvalue()


def write_timeline(result: dict[str, Any], out_dir: str | os.PathLike, picture: bool = True) -> list[Path]:
    """``timeline.csv``, ``timeline.json`` (and ``timeline.png``) in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "timeline.csv").write_text(timeline_csv(result))
    (out / "timeline.json").write_text(json.dumps({k: v for k, v in result.items() if k != "probs"}, indent=1) + "\n")
    paths = [out / "timeline.csv", out / "timeline.json"]
    if picture:
        from .timeline_plot import plot_timeline

        paths.append(plot_timeline(result, out / "timeline.png"))
    return paths
