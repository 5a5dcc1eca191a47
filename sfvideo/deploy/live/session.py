"""``run_stream``: a model on a live source, window by window, until the source ends, the
duration is reached or ``stop`` is set.

The calling thread runs inference; a reader thread decodes (``reader.Reader``) and, with
``out_video``, a writer thread encodes. Every thread started here has ended when ``run_stream``
returns or raises, and the source is closed.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..onnx_runtime import softmax
from .outputs import JsonlSink, LatencyStats, RateMeter, StatusLine, prediction_line, status_text
from .reader import Reader
from .smoothing import Ema, EventTracker
from .source import LiveSource, SourceLost, SourceOptions
from .video_out import Overlay, VideoOut
from .windows import FrameRing, Taken, WindowClock

log = logging.getLogger("sfvideo.stream")


@dataclass(frozen=True)
class StreamOptions:
    """What ``run_stream`` does besides running the model.

    Attributes:
        window_s, stride_s: window length and spacing in seconds (None: the model's clip span,
            half of it).
        smooth_s: time constant of the moving average of the probabilities (0: none).
        threshold, min_duration_s, hysteresis: when events start and end (``smoothing.EventTracker``).
        duration_s: seconds of stream to read (None: until the source ends).
        realtime: read a file at its own frame rate, dropping windows inference cannot keep up
            with, as on a live source (otherwise a file is read as fast as inference goes).
        jsonl: where the JSON lines go (``-``: standard output; None: nowhere).
        out_video: the re-encoded stream with the overlay (None: none).
        status: show the status line when standard error is a terminal.
        source: how the source is opened and kept.
    """

    window_s: float | None = None
    stride_s: float | None = None
    smooth_s: float = 1.0
    threshold: float = 0.5
    min_duration_s: float = 1.0
    hysteresis: float = 0.1
    duration_s: float | None = None
    realtime: bool = False
    jsonl: str | None = None
    out_video: str | None = None
    status: bool = True
    source: SourceOptions = field(default_factory=SourceOptions)

    def __post_init__(self):
        for name in ("window_s", "stride_s", "duration_s"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} {value}: must be a positive number of seconds")
        Ema(self.smooth_s)
        EventTracker([], self.threshold, self.min_duration_s, self.hysteresis)  # raises on values out of range
        if self.source.reconnect < 0:
            raise ValueError(f"reconnect {self.source.reconnect}: must be 0 or more")


def predictor(runner) -> tuple[Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]], bool]:
    """``clips uint8 (1, 3, T, S, S) -> (probabilities (K,), last layer's RoIs (N, 6) or None)``
    for a ``deploy.run.Runner``, and whether it gives RoIs (``classify.logits_and_rois``)."""
    with_rois = getattr(runner.classify, "logits_and_rois", None)

    def predict(clip: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        logits, rois = with_rois(clip) if with_rois is not None else (runner.classify(clip), None)
        return softmax(np.asarray(logits, np.float64))[0], None if rois is None else np.asarray(rois)[0]

    return predict, with_rois is not None


class _Loop:
    """The inference side of one run: windows in, lines out, statistics kept."""

    def __init__(self, runner, opts: StreamOptions, reader: Reader, overlay: Overlay, sink: JsonlSink,
                 num_classes: int):
        self.names = runner.class_names or [str(k) for k in range(num_classes)]
        self.predict, has_rois = predictor(runner)
        if opts.out_video and not has_rois:
            log.warning("this model gives no token RoIs (an .onnx file exported without them?): --out-video draws "
                        "the label only")
        self.opts, self.reader, self.overlay, self.sink = opts, reader, overlay, sink
        self.ema = Ema(opts.smooth_s)
        self.events = EventTracker(self.names, opts.threshold, opts.min_duration_s, opts.hysteresis)
        self.latency, self.infer = LatencyStats(), LatencyStats()
        self.rate = RateMeter(span=10.0)
        self.status = StatusLine() if opts.status else None
        self.frames = runner.protocol["num_frames"]
        self.last_centre = 0.0

    def step(self, w: Taken) -> None:
        """Run one window and write its line (and events)."""
        start = time.monotonic()
        probs, rois = self.predict(w.clip)
        self.infer.add(time.monotonic() - start)
        smoothed = self.ema.update(w.end_s, probs)
        top = int(np.argmax(smoothed))
        self.overlay.update(self.names[top], float(smoothed[top]), rois, self.frames)
        fps = self.reader.input_rate.rate()
        dropped = self.reader.ring.skipped_behind
        latency = time.monotonic() - w.last_wall
        self.sink.write(prediction_line(w.start_s, w.end_s, latency, probs, smoothed, self.names, dropped, fps))
        self.latency.add(latency)
        self.rate.tick()
        self.last_centre = (w.start_s + w.end_s) / 2
        for event in self.events.update(self.last_centre, smoothed, probs):
            self.sink.write(event)
            log.info("%s %s at %.2f s (p=%.2f)", event["event"], event["class"], event["stream_s"], event["prob"])
        if self.status is not None:
            self.status.show(status_text(smoothed, self.names, fps, self.rate.rate(), latency, dropped))

    def finish(self) -> None:
        for event in self.events.finish(self.last_centre, self.ema.value):
            self.sink.write(event)
        if self.status is not None:
            self.status.clear()


def warm_up(runner, prep: Callable[[np.ndarray], np.ndarray]) -> int:
    """Prepare one frame and classify one clip, so that imports and the runtimes' first-run set-up
    happen before the source opens, not while its frames pile up; returns the class count."""
    size = runner.protocol["crop_size"]
    frame = prep(np.zeros((size, size, 3), np.uint8))  # ([crops,] 3, S, S)
    clip = np.stack([frame] * runner.protocol["num_frames"], axis=-3)[None]  # (1, [crops,] 3, T, S, S)
    return int(np.asarray(runner.classify(clip)).shape[-1])


def window_and_stride(protocol: dict[str, Any], window_s: float | None, stride_s: float | None) -> tuple[float, float]:
    """The window (default: the protocol's clip span) and stride (default: half the window)."""
    from ..timeline import default_window

    window = window_s or default_window(protocol)
    return window, stride_s or window / 2


def run_stream(source: str, runner, opts: StreamOptions, stop: threading.Event | None = None) -> dict[str, Any]:
    """Run ``runner`` (a ``deploy.run.Runner``) on ``source`` until it ends, ``opts.duration_s``
    is reached or ``stop`` is set; returns the summary (``summary``). A source lost for good
    (the reconnect attempts failed) ends the run as its end does, the summary's ``ended`` being
    ``lost`` and its ``error`` saying why.

    Raises:
        DecodeError: the source cannot be opened (the message names it and FFmpeg's reason), or
            a file cannot be read.
    """
    from ..stream import frame_preparer

    stop = stop or threading.Event()
    window, stride = window_and_stride(runner.protocol, opts.window_s, opts.stride_s)
    clock = WindowClock(window, stride, runner.protocol["num_frames"])
    src = LiveSource(source, opts.source)
    prep = frame_preparer(runner.protocol["crop_size"])
    num_classes = warm_up(runner, prep)
    src.open()
    started = time.monotonic()
    ring = FrameRing(clock, lossless=not src.live and not opts.realtime)
    overlay, sink, video = Overlay(), None, None
    try:
        sink = JsonlSink(opts.jsonl)
        video = VideoOut(opts.out_video, src.fps, overlay) if opts.out_video else None
        reader = Reader(src, ring, prep, threading.Event(), video, opts.duration_s, opts.realtime)
        loop = _Loop(runner, opts, reader, overlay, sink, num_classes)
        _run(loop, reader, stop)
    finally:  # the reader has ended (``_run`` joins it): the source is no longer in use
        src.close()
        _close(video, sink)
    if reader.error is not None and not isinstance(reader.error, SourceLost):
        raise reader.error
    ended = "lost" if reader.error is not None else "stopped" if stop.is_set() else reader.ended_by
    result = summary(source, loop, reader, clock, time.monotonic() - started, ended)
    return {**result, "error": str(reader.error)} if reader.error is not None else result


def _run(loop: _Loop, reader: Reader, stop: threading.Event) -> None:
    """The reader started, windows run as they complete; the reader stopped and joined at the end."""
    ring = reader.ring
    reader.start()
    try:
        while not stop.is_set():
            closed = ring.closed
            w = ring.take(timeout=0.2)
            if w is not None:
                loop.step(w)
            elif closed:
                break
    finally:
        reader.stop.set()
        ring.close()
        reader.join()
        loop.finish()


def _close(video: VideoOut | None, sink: JsonlSink | None) -> None:
    try:
        if video is not None:
            video.close()
    finally:
        if sink is not None:
            sink.close()


def summary(source: str, loop: _Loop, reader: Reader, clock: WindowClock, wall_s: float,
            ended: str) -> dict[str, Any]:
    """Windows run and dropped, latency quantiles, rates and the source's counters of one run;
    ``ended``: ``end`` (of the source), ``duration``, ``stopped`` or ``lost``.

    ``real_time_factor`` is the inference time one second of stream needs at this stride (mean
    inference time / stride): above 1, inference cannot run every window and windows are dropped.
    ``most_lag_s``: the furthest, in stream time, a window taken for inference ended before the
    newest frame read (at most a stride, live); ``most_frames_held``: the ring's largest size.
    """
    ring, src = reader.ring, reader.source
    stream_s = reader.last_t + (1.0 / src.fps if reader.frames_read else 0.0)
    nan_none = lambda v: None if math.isnan(v) else round(v, 4)  # noqa: E731
    return {
        "source": source, "window_s": clock.window_s, "stride_s": clock.stride_s, "smooth_s": loop.opts.smooth_s,
        "frames_read": reader.frames_read,
        "stream_s": round(stream_s, 3), "wall_s": round(wall_s, 3), "windows_run": loop.latency.count,
        "dropped_windows": ring.skipped_behind, "outage_windows": ring.skipped_gaps,
        "most_frames_held": ring.most_frames, "most_lag_s": round(ring.most_lag, 4),
        "latency_p50_s": nan_none(loop.latency.quantile(0.5)), "latency_p95_s": nan_none(loop.latency.quantile(0.95)),
        "latency_max_s": round(loop.latency.max, 4), "inference_mean_s": nan_none(loop.infer.mean),
        "real_time_factor": nan_none(loop.infer.mean / clock.stride_s), "input_fps": round(reader.frames_read / max(
            wall_s, 1e-9), 2), "reconnects": src.reconnects, "corrupt_packets": src.corrupt_packets,
        "timestamp_discontinuities": src.discontinuities, "ended": ended,
    }
