"""What ``sfvideo stream`` writes: JSON lines (flushed one by one), the terminal status line, and
bounded running statistics (latency quantiles, rates) for the summary.

A prediction line::

    {"stream_start_s", "stream_end_s", "wall_time", "latency_s", "top": [[class, prob], ... 5],
     "smoothed": [[class, prob], ... 3], "dropped_windows", "input_fps"}

``wall_time`` is Unix time when the line is written; ``latency_s`` the wall time from the
decoding of the window's last frame to the line being written; ``dropped_windows`` the windows
skipped so far because inference was behind. Event lines are ``{"event", "class", "stream_s",
"prob"}`` (``sfvideo.deploy.live.smoothing``).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections import deque
from typing import IO, Any, Sequence

import numpy as np


class JsonlSink:
    """One JSON object per line to ``path`` (``-``: standard output), flushed as it is written."""

    def __init__(self, path: str | os.PathLike | None):
        self.path = None if path is None else os.fspath(path)
        self._file: IO[str] | None = None
        if self.path == "-":
            self._file = sys.stdout
        elif self.path is not None:
            self._file = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 (closed by close())
        self.lines = 0

    def write(self, record: dict[str, Any]) -> None:
        if self._file is not None:
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()
        self.lines += 1

    def close(self) -> None:
        if self._file is not None and self._file is not sys.stdout:
            self._file.close()
        self._file = None


def ranked(probs: np.ndarray, names: Sequence[str], k: int) -> list[list[Any]]:
    """``[[name, prob], ...]``: the ``k`` most probable classes, best first."""
    order = np.argsort(-probs, kind="stable")[:k]
    return [[names[i], round(float(probs[i]), 4)] for i in order]


def prediction_line(start_s: float, end_s: float, latency_s: float, probs: np.ndarray, smoothed: np.ndarray,
                    names: Sequence[str], dropped: int, input_fps: float) -> dict[str, Any]:
    """The JSON object of one window's prediction (see the module's docstring)."""
    return {"stream_start_s": round(start_s, 3), "stream_end_s": round(end_s, 3), "wall_time": round(time.time(), 3),
            "latency_s": round(latency_s, 4), "top": ranked(probs, names, 5), "smoothed": ranked(smoothed, names, 3),
            "dropped_windows": dropped, "input_fps": round(input_fps, 2)}


class RateMeter:
    """Events per second over the last ``span`` seconds (at most ``keep`` events remembered)."""

    def __init__(self, span: float = 2.0, keep: int = 256):
        self.span = span
        self._times: deque[float] = deque(maxlen=keep)

    def tick(self, now: float | None = None) -> None:
        self._times.append(time.monotonic() if now is None else now)

    def rate(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        recent = [t for t in list(self._times) if now - t <= self.span]
        if len(recent) < 2:
            return 0.0
        return (len(recent) - 1) / max(recent[-1] - recent[0], 1e-9)


class LatencyStats:
    """Count, mean, maximum and quantiles of positive durations in fixed memory: a histogram with
    bins 1% wide from 1 ms (quantiles within 1%)."""

    LOW, STEP, BINS = 1e-3, math.log(1.01), 2000  # 1 ms .. ~440 s

    def __init__(self):
        self.counts = np.zeros(self.BINS + 1, np.int64)
        self.count, self.total, self.max = 0, 0.0, 0.0

    def add(self, seconds: float) -> None:
        i = 0 if seconds <= self.LOW else min(int(math.log(seconds / self.LOW) / self.STEP) + 1, self.BINS)
        self.counts[i] += 1
        self.count += 1
        self.total += seconds
        self.max = max(self.max, seconds)

    def quantile(self, q: float) -> float:
        """The ``q`` quantile (the upper edge of its bin, at most the maximum); NaN when empty."""
        if self.count == 0:
            return float("nan")
        i = int(np.searchsorted(np.cumsum(self.counts), q * self.count))
        return min(self.LOW * math.exp(self.STEP * i), self.max)

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else float("nan")


class StatusLine:
    """A one-line status on a terminal, rewritten in place at most ``every`` seconds."""

    def __init__(self, stream: IO[str] | None = None, every: float = 0.25):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.every = every
        self._last = 0.0
        self._shown = False

    def show(self, text: str, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self._last < self.every):
            return
        width = os.get_terminal_size(self.stream.fileno()).columns if self.stream.isatty() else 120
        self.stream.write("\r\033[K" + text[:max(width - 1, 20)])
        self.stream.flush()
        self._last, self._shown = now, True

    def clear(self) -> None:
        """Leave the line (before log messages and at the end)."""
        if self.enabled and self._shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._shown = False


def status_text(smoothed: np.ndarray, names: Sequence[str], input_fps: float, infer_rate: float, latency: float,
                dropped: int) -> str:
    top = "  ".join(f"{n} {p:.0%}" for n, p in ranked(smoothed, names, 3))
    return (f"{top} | input {input_fps:.1f} fps | {infer_rate:.2f} windows/s | latency {latency:.2f} s | "
            f"dropped {dropped}")
