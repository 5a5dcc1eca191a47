"""Helpers for ``sfvideo benchmark-loader``: Kinetics-like synthetic videos (a smooth set and a
high-entropy set), loader timing, decode-only replay of the pipeline's exact clip spans, and the
memory (RSS) of a process tree sampled in the background."""

from __future__ import annotations

import os
import random
import threading
import time
from pathlib import Path
from typing import Callable, Iterable, NamedTuple

import numpy as np

from ..data.encode import write_video
from ..utils.proc import rss_mb

# (height, width) of landscape Kinetics videos after the usual short-side 256-320 preparation.
KINETICS_LIKE_SIZES = ((256, 340), (288, 384), (320, 426), (240, 320), (320, 568))


def _texture(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth random RGB texture (H, W, 3) float in [0, 255], twice the frame size for panning."""
    small = rng.uniform(0, 255, (height // 16 + 2, width // 16 + 2, 3)).astype(np.float32)
    big = np.kron(small, np.ones((32, 32, 1), np.float32))  # (~2H, ~2W, 3), blocky
    # soften the blocks with a cheap separable box blur so the encoder sees natural-ish gradients
    for axis in (0, 1):
        big = (np.roll(big, 8, axis) + big + np.roll(big, -8, axis)) / 3
    return big


def kinetics_like_frames(seconds: float, fps: float, height: int, width: int, seed: int) -> np.ndarray:
    """uint8 (T, H, W, 3): a panning textured background, a moving square and sensor-like noise."""
    rng = np.random.default_rng(seed)
    tex = _texture(height, width, rng)
    n = int(round(seconds * fps))
    frames = np.empty((n, height, width, 3), np.uint8)
    vy, vx = rng.uniform(-1.5, 1.5, 2)
    for t in range(n):
        y0 = int(abs(vy * t)) % (tex.shape[0] - height)
        x0 = int(abs(vx * t)) % (tex.shape[1] - width)
        f = tex[y0 : y0 + height, x0 : x0 + width].copy()  # (H, W, 3)
        cy = int((0.5 + 0.4 * np.sin(t / fps)) * (height - 40))
        cx = int((0.5 + 0.4 * np.cos(t / fps * 1.3)) * (width - 40))
        f[cy : cy + 40, cx : cx + 40] = (255, 60, 30)
        f += rng.normal(0, 4, (height, width, 1)).astype(np.float32)
        frames[t] = np.clip(f, 0, 255).astype(np.uint8)
    return frames


def high_entropy_frames(seconds: float, fps: float, height: int, width: int, seed: int) -> np.ndarray:
    """uint8 (T, H, W, 3): fine multi-scale texture panning at a few pixels per frame, plus
    strong per-frame sensor noise: a hard file for the encoder and so for the decoder (about
    10x the bitrate of ``kinetics_like_frames`` at the same quality setting)."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * fps))
    th, tw = height + 4 * n // 3 + 8, width + 2 * n + 8  # room to pan
    tex = rng.uniform(0, 255, (th, tw, 3)).astype(np.float32)
    coarse = rng.uniform(0, 255, (th // 8 + 1, tw // 8 + 1, 3)).astype(np.float32)
    tex = 0.5 * tex + 0.5 * np.kron(coarse, np.ones((8, 8, 1), np.float32))[:th, :tw]  # (TH, TW, 3)
    frames = np.empty((n, height, width, 3), np.uint8)
    for t in range(n):
        y0, x0 = (4 * t) // 3, 2 * t
        f = tex[y0 : y0 + height, x0 : x0 + width] + rng.normal(0, 12, (height, width, 3)).astype(np.float32)
        frames[t] = np.clip(f, 0, 255).astype(np.uint8)
    return frames


FILE_SETS = ("smooth", "high_entropy")


def generate_videos(out_dir: str | os.PathLike, num_videos: int, seconds: float = 10.0, fps: float = 30.0,
                    gop_seconds: tuple[float, float] = (2.0, 4.0), seed: int = 0, kind: str = "smooth") -> list[Path]:
    """Synthetic H.264 mp4s, ``seconds`` long at ``fps``.

    ``kind="smooth"``: Kinetics-like (short side 240-320, keyframe every 2-4 s, a panning smooth
    texture with a moving square). ``kind="high_entropy"``: textured and noisy, 256x340, a fixed
    150-frame GOP (scene-cut keyframes off). Existing files are reused, so a cache directory makes
    repeated runs start at once.
    """
    if kind not in FILE_SETS:
        raise ValueError(f"kind must be one of {FILE_SETS}, got {kind!r}")
    out_dir = Path(out_dir)
    paths = []
    for i in range(num_videos):
        if kind == "smooth":
            h, w = KINETICS_LIKE_SIZES[i % len(KINETICS_LIKE_SIZES)]
            gop = int(round(fps * random.Random(seed + i).uniform(*gop_seconds)))
            path = out_dir / f"video_{i:03d}_{h}x{w}_{seconds:g}s.mp4"
            if not path.exists():
                write_video(path, kinetics_like_frames(seconds, fps, h, w, seed + i), fps=fps, gop=gop, crf=23)
        else:
            h, w, gop = 256, 340, 150
            path = out_dir / f"entropy_{i:03d}_{h}x{w}_{seconds:g}s_gop{gop}.mp4"
            if not path.exists():
                write_video(path, high_entropy_frames(seconds, fps, h, w, seed + 1000 + i), fps=fps, gop=gop, crf=23,
                            options={"sc_threshold": "0"})
        paths.append(path)
    return paths


# ----------------------------------------------------------------------------- memory
def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def tree_rss_mb(pid: int | None = None, include_children: bool = True) -> float:
    """RSS of a process and all its descendants (DataLoader workers), in MiB.

    Shared copy-on-write pages are counted once per process, so this over-states the true
    footprint, but it grows if and only if some process grows.
    """
    pid = os.getpid() if pid is None else pid
    total, stack = 0.0, [pid]
    while stack:
        p = stack.pop()
        total += rss_mb(p) or 0.0  # a worker that exited meanwhile counts nothing
        if include_children:
            stack.extend(_children(p))
    return total


class RssSampler:
    """Samples ``tree_rss_mb`` every ``interval`` seconds in a background thread."""

    def __init__(self, interval: float = 0.25):
        self.interval = interval
        self.samples: list[tuple[float, float]] = []  # (seconds since start, MiB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._t0 = 0.0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.perf_counter() - self._t0, tree_rss_mb()))
            self._stop.wait(self.interval)

    def __enter__(self) -> "RssSampler":
        self._t0 = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak(self) -> float:
        return max((m for _, m in self.samples), default=0.0)


# ----------------------------------------------------------------------------- timing
class Throughput(NamedTuple):
    """Clips timed (after a warm-up batch, which pays for worker start-up), their wall-clock
    seconds and the process CPU seconds they took (nan where not measured)."""

    clips: int
    seconds: float
    cpu_seconds: float = float("nan")

    @property
    def clips_per_s(self) -> float:
        return self.clips / self.seconds if self.seconds > 0 else float("nan")


def batch_size_of(batch) -> int:
    """Clips in a batch: (B, C, T, H, W), or (B, K, C, T, H, W) with ``DATA.CLIPS_PER_DECODE`` K."""
    video = batch["video"] if isinstance(batch, dict) else batch[0]
    return int(video.shape[0] * (video.shape[1] if video.ndim == 6 else 1))


def time_batches(batches: Iterable, num_clips: int, after_warmup: Callable[[], object] | None = None) -> Throughput:
    """Consume batches until ``num_clips`` clips after the first batch, timing them (wall clock and
    process CPU); ``after_warmup`` runs once between the first batch and the timed ones."""
    it = iter(batches)
    next(it)  # warm-up: worker start, first file opens
    if after_warmup is not None:
        after_warmup()
    t0, cpu0, clips = time.perf_counter(), time.process_time(), 0
    for batch in it:
        clips += batch_size_of(batch)
        if clips >= num_clips:
            break
    return Throughput(clips, time.perf_counter() - t0, time.process_time() - cpu0)


class SpanRecorder:
    """Records the exact (path, frame indices) of every decode a ``VideoDataset`` makes, so the
    decode-only rate can be measured on the very spans the pipeline asked for."""

    def __init__(self, dataset):
        self.dataset = dataset
        self.spans: list[tuple[str, list[int]]] = []
        self._decode = dataset.decode

        def recording(path, index_fn):
            def fn(meta):
                idx = [int(i) for i in index_fn(meta)]
                self.spans.append((path, idx))
                return idx

            return self._decode(path, fn)

        dataset.decode = recording  # this process only: run the loader with num_workers=0

    def close(self) -> None:
        self.dataset.decode = self._decode  # back to the dataset's decode callable


def decode_only(spans: Iterable[tuple[str, list[int]]], backend: str, seek_mode: str = "exact") -> Throughput:
    """Decode each recorded span alone (no transforms, no collation): clips per second."""
    from ..data.decoding import decode_video

    spans = list(spans)
    t0, cpu0 = time.perf_counter(), time.process_time()
    for path, idx in spans:
        decode_video(path, lambda meta, idx=idx: idx, backend, fallback=False, seek_mode=seek_mode)
    return Throughput(len(spans), time.perf_counter() - t0, time.process_time() - cpu0)
