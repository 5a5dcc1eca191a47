"""Checks of the whole-video timeline that need a trained model or minutes of video, run by
``tools/benchmark_timeline.py`` (not by the test suite):

* accuracy: a video of toy-dataset val clips, ``clips_per_segment`` clips of one class back to back
  per segment, segments of shuffled classes, through a trained toy model with ``--window``: the
  fraction of windows whose top-1 is the class of the segment under the window's centre (and of
  windows lying wholly inside one segment);
* memory: the peak RSS of a fresh process running the timeline over a long 320p video (made
  here, streaming, never held in memory), against a short one and a stated bound.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from ..data.lists import read_class_names


def _encode(path: Path, frames: Iterator[np.ndarray], fps: int = 30, gop: int = 60) -> Path:
    """Encode a stream of (H, W, 3) uint8 frames to H.264 without holding them."""
    from ..data.encode import write_video

    return write_video(path, frames, fps=fps, gop=gop, crf=23, options={"preset": "ultrafast"})


def _read_all(path: str) -> np.ndarray:
    """Every frame of a toy clip, (T, H, W, 3) uint8, as the data pipeline decodes it."""
    from ..data.decoding import decode_video

    return decode_video(path, lambda meta: range(meta.num_frames), "pyav")[0].numpy()


def segment_video(toy_dir: str | os.PathLike, out: str | os.PathLike, num_segments: int = 24,
                  clips_per_segment: int = 10, seed: int = 0, fps: int = 30) -> list[dict[str, Any]]:
    """Write a video of ``num_segments`` segments of toy val clips (one class per segment, classes
    shuffled, every class used); returns the segments ``{start_s, end_s, label, name}``."""
    toy = Path(toy_dir)
    names = read_class_names(toy / "classes.txt")
    by_class: dict[int, list[str]] = {}
    for line in (toy / "val.txt").read_text().splitlines():
        rel, label = line.rsplit(maxsplit=1)
        by_class.setdefault(int(label), []).append(str(toy / rel))
    rng = random.Random(seed)
    order = [k for _ in range(-(-num_segments // len(names))) for k in rng.sample(range(len(names)), len(names))]
    segments, t = [], 0.0

    def frames() -> Iterator[np.ndarray]:
        nonlocal t
        for label in order[:num_segments]:
            start, cuts = t, []
            for path in rng.sample(by_class[label], clips_per_segment):
                clip = _read_all(path)
                cuts.append(t)
                t += len(clip) / fps
                yield from clip
            segments.append({"start_s": start, "end_s": t, "label": label, "name": names[label], "clip_starts": cuts})

    _encode(Path(out), frames(), fps)
    return segments


def window_accuracy(result: dict[str, Any], segments: list[dict[str, Any]]) -> dict[str, float]:
    """Fractions of windows whose top-1 is the segment under the window's centre (``centre``) and,
    among windows inside one segment, that segment's class (``inside``)."""
    def segment_at(t: float) -> dict[str, Any]:
        return next((s for s in segments if s["start_s"] <= t < s["end_s"]), segments[-1])

    centre = inside = n_inside = one_clip = n_one_clip = 0
    for w in result["windows"]:
        seg = segment_at((w["start_s"] + w["end_s"]) / 2)
        hit = w["top1_index"] == seg["label"]
        centre += hit
        if seg["start_s"] <= w["start_s"] + 1e-6 and w["end_s"] <= seg["end_s"] + 1e-6:
            inside += hit
            n_inside += 1
            if not any(w["start_s"] + 1e-6 < c < w["end_s"] - 1e-6 for c in seg["clip_starts"]):
                one_clip += hit
                n_one_clip += 1
    n = len(result["windows"])
    return {"windows": n, "centre": centre / max(n, 1), "inside_windows": n_inside,
            "inside": inside / max(n_inside, 1), "one_clip_windows": n_one_clip,
            "one_clip": one_clip / max(n_one_clip, 1)}


def moving_frames(num_frames: int, width: int, height: int) -> Iterator[np.ndarray]:
    """Cheap synthetic content for long videos: a drifting gradient with a moving square."""
    yy, xx = np.mgrid[0:height, 0:width]
    base = (xx + yy) % 256  # (H, W) int
    for t in range(num_frames):
        frame = np.empty((height, width, 3), np.uint8)
        frame[..., 0] = (base + t) % 256
        frame[..., 1] = (base[:, ::-1] - 2 * t) % 256
        frame[..., 2] = 128
        x0, y0 = (7 * t) % (width - 40), (3 * t) % (height - 40)
        frame[y0:y0 + 40, x0:x0 + 40] = 255
        yield frame


def long_video(out: str | os.PathLike, minutes: float, height: int = 320, width: int = 568, fps: int = 30) -> Path:
    """A ``minutes``-long ``width`` x ``height`` H.264 video (encoded streaming; reused if present)."""
    out = Path(out)
    if not out.is_file():
        _encode(out, moving_frames(int(minutes * 60 * fps), width, height), fps, gop=150)
    return out


def _timeline_peak(make_runner: Callable, video: str, window: float | None, stride: float | None) -> dict[str, float]:
    """Load the model, then run the timeline; RSS after loading and peak RSS (MB)."""
    from ..deploy.timeline import run_timeline
    from ..utils.proc import peak_rss_mb, rss_mb

    runner = make_runner()
    before = rss_mb()
    result = run_timeline(video, runner.classify, runner.protocol, window_s=window, stride_s=stride,
                          class_names=runner.class_names)
    return {"loaded_rss_mb": before, "peak_rss_mb": peak_rss_mb(), "windows": len(result["windows"])}


def timeline_peak_memory(make_runner: Callable, video: str, window: float | None = None,
                         stride: float | None = None) -> dict[str, float]:
    """``_timeline_peak`` in a freshly spawned process (the peak RSS is per process)."""
    from .memory import in_fresh_process

    return in_fresh_process(_timeline_peak, make_runner, video, window, stride)


def load_runner(checkpoint: str, onnx: str | None, threads: int):
    """The model to time: the ``.onnx`` file in onnxruntime when given, else the checkpoint (CPU)."""
    from ..deploy.run import onnx_runner, torch_runner

    if onnx:
        return onnx_runner(onnx, threads)
    from ..checkpoint import config_from_checkpoint

    cfg, names = config_from_checkpoint(checkpoint, ["DEVICE", "cpu"])
    return torch_runner(cfg, names, threads)


def accuracy_check(runner, toy_data: str | os.PathLike, work: str | os.PathLike, segments: int = 24,
                   clips_per_segment: int = 10) -> dict[str, Any]:
    """The timeline of a video of toy segments (written into ``work``) and its window accuracy."""
    import time

    from ..deploy.timeline import run_timeline, write_timeline

    work = Path(work)
    video = work / "segments.mp4"
    truth = segment_video(toy_data, video, segments, clips_per_segment)
    if not runner.class_names:
        runner.class_names = read_class_names(Path(toy_data) / "classes.txt")
    start = time.perf_counter()
    result = run_timeline(str(video), runner.classify, runner.protocol, class_names=runner.class_names)
    result["truth"] = [{"start_s": s["start_s"], "end_s": s["end_s"], "index": s["label"], "label": s["name"]}
                       for s in truth]
    write_timeline(result, work / "segments_timeline")
    return {"video_s": truth[-1]["end_s"], "segments": len(truth), "runtime": runner.runtime,
            "seconds": time.perf_counter() - start, **window_accuracy(result, truth)}


def memory_check(make_runner: Callable, work: str | os.PathLike, minutes: float) -> dict[str, Any]:
    """Peak RSS of the timeline over a 1-minute and a ``minutes``-long 320p video, each in a fresh process."""
    work = Path(work)
    short = timeline_peak_memory(make_runner, str(long_video(work / "long_1min.mp4", 1.0)))
    long = timeline_peak_memory(make_runner, str(long_video(work / f"long_{minutes:g}min.mp4", minutes)))
    return {"memory_1min": short, "memory_long": long, "long_minutes": minutes}


def timeline_record(report: dict[str, Any]) -> dict[str, Any]:
    """The report of ``accuracy_check`` (+ ``memory_check`` and ``bound_mb``) as one results record."""
    record = {k: v for k, v in report.items() if not isinstance(v, dict)}
    if "memory_long" in report:
        record.update(peak_rss_1min_mb=report["memory_1min"]["peak_rss_mb"],
                      peak_rss_long_mb=report["memory_long"]["peak_rss_mb"],
                      loaded_rss_mb=report["memory_long"]["loaded_rss_mb"],
                      long_windows=report["memory_long"]["windows"])
    return record
