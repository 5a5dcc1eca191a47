"""Reading a video file with PyAV: the one way sfvideo opens, probes and decodes a file with PyAV.

Used by ``decoding``'s PyAV backend (and its decord corrections) and by ``sfvideo.deploy.stream``
(predict, timelines, features). numpy and PyAV only, no torch, so the onnxruntime deployment
path can use it.

* ``open_video``: the container and its first video stream (threaded decoding) of a file, a
  network stream or a device, with FFmpeg's input options and open/read time-outs.
* ``index_frames``: one demuxing pass (no decoding) giving every frame's timestamp in
  presentation order and the rate; a frame's index is its position in that order, counted from
  the first displayed frame, as every decoding backend counts it. The count is exact where the
  header has none (Matroska/WebM) or a wrong one, and positions stay exact on variable-rate files.
* ``decoded_frames``: (index, frame) pairs decoded from the keyframe at or before a given index.
* ``to_rgb``: a decoded frame as an (H, W, 3) uint8 array, upright: the display rotation of
  phone videos (a display matrix instead of rotated pixels) applied.

Errors (missing, empty, unreadable files, no video stream, no timestamps) raise ``DecodeError``
naming the file.
"""

from __future__ import annotations

import io
import math
import os
from typing import Iterator, NamedTuple

import numpy as np


class DecodeError(RuntimeError):
    """A video that cannot be read; the message names the file and the reason."""


class VideoMeta(NamedTuple):
    """What sampling needs to know about a video."""

    num_frames: int
    fps: float


class FrameIndex(NamedTuple):
    """Every frame's timestamp (stream time base) in presentation order, and the rate."""

    pts: np.ndarray  # (N,) int64
    fps: float

    @property
    def meta(self) -> VideoMeta:
        return VideoMeta(len(self.pts), self.fps)


def check_source(path: str, data: bytes | None = None) -> None:
    """A ``DecodeError`` for a missing or empty file (or empty ``data``), before any decoder sees it."""
    if data is not None:
        if not data:
            raise DecodeError(f"{path}: no bytes (empty video)")
        return
    if not os.path.isfile(path):
        raise DecodeError(f"{path}: file not found")
    if os.path.getsize(path) == 0:
        raise DecodeError(f"{path}: file is empty (0 bytes)")


def is_stream_url(path: str) -> bool:
    """Whether ``path`` names a network stream (``scheme://...``) rather than a file."""
    return "://" in path and not path.startswith("file://")


def open_video(path: str, num_threads: int = 0, data: bytes | None = None, *, fmt: str | None = None,
               options: dict[str, str] | None = None, timeout: tuple[float, float] | None = None):
    """``(container, stream)``: ``path`` opened with PyAV and its first video stream, decoded with
    FFmpeg's automatic threading (``num_threads`` > 0: that many threads). Close the container.

    ``path`` is a file, a network URL (``rtsp://``, ``http://``, ...) or, with ``fmt`` (an FFmpeg
    input format such as ``v4l2``), a device. With ``data`` the video is read from those bytes in
    memory and ``path`` only names it. ``options`` are FFmpeg's options for the input
    (``rtsp_transport``, ...); ``timeout`` (open, read) in seconds makes FFmpeg give up on an open
    or a read that waits longer.
    """
    import av

    live = data is None and (fmt is not None or is_stream_url(path))
    if not live:
        check_source(path, data)
    what = "the source" if live else "the file"
    try:
        container = av.open(path if data is None else io.BytesIO(data), format=fmt, options=dict(options or {}),
                            timeout=timeout)
    except av.ExitError as err:  # FFmpeg's interrupt: the open time-out ran out
        waited = f"no answer within the {timeout[0]:g} s open time-out" if timeout else "interrupted"
        raise DecodeError(f"{path}: PyAV cannot open {what}: {waited} (FFmpeg: {err})") from None
    except Exception as err:  # PyAV raises FFmpeg's errors as several exception types
        raise DecodeError(f"{path}: PyAV cannot open {what}: {err}") from None
    if not container.streams.video:
        container.close()
        raise DecodeError(f"{path}: no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    if num_threads > 0:
        stream.thread_count = num_threads
    return container, stream


def _packet_times(path: str, container, stream) -> tuple[np.ndarray, np.ndarray]:
    """Timestamps and durations (N,) of the stream's packets in decode order."""
    import av

    pts, durations = [], []
    try:
        for packet in container.demux(stream):
            if packet.size == 0 or packet.is_discard:  # the flush packet; packets an edit list drops
                continue
            t = packet.pts if packet.pts is not None else packet.dts
            if t is None:
                raise DecodeError(f"{path}: a packet has no timestamp; cannot index frames")
            pts.append(t)
            durations.append(packet.duration or 0)
    except av.FFmpegError as err:
        raise DecodeError(f"{path}: PyAV cannot read the packets: {err}") from None
    if not pts:
        raise DecodeError(f"{path}: no video frames")
    return np.asarray(pts, dtype=np.int64), np.asarray(durations, dtype=np.int64)


def index_frames(path: str, container, stream) -> FrameIndex:
    """Every frame's timestamp from one demuxing pass (no decoding), in presentation order, and
    the rate: frames over the stream's duration, as torchcodec counts it (so every backend samples
    the same indices on variable-rate files), else over the content's span."""
    pts, durations = _packet_times(path, container, stream)  # (N,) decode order
    order = np.sort(pts)  # (N,) presentation order
    if len(order) > 1 and np.any(np.diff(order) == 0):
        raise DecodeError(f"{path}: several frames share a timestamp; cannot index frames")
    if stream.duration and stream.duration > 0:
        end = int(order[0] + stream.duration)
    elif durations.any():
        end = int((pts + durations).max())
    else:  # no durations in the container: one average frame past the last
        end = int(order[-1] + (order[-1] - order[0]) / max(len(order) - 1, 1))
    span = (end - order[0]) * float(stream.time_base)
    fps = len(order) / span if span > 0 else float(stream.guessed_rate or 30)
    return FrameIndex(order, fps)


def probe(path: str | os.PathLike, data: bytes | None = None) -> VideoMeta:
    """Frame count and rate of ``path`` (or of the video bytes ``data``, which ``path`` then names),
    from ``index_frames``: demuxing only, nothing decoded."""
    path = os.fspath(path)
    container, stream = open_video(path, data=data)
    try:
        return index_frames(path, container, stream).meta
    finally:
        container.close()


def decoded_frames(container, stream, pts: np.ndarray, first: int = 0) -> Iterator[tuple[int, object]]:
    """``(index, PyAV frame)`` in decode order from the keyframe at or before frame ``first``;
    frames the index does not list (dropped by an edit list) are skipped. FFmpeg's errors
    (``av.FFmpegError``) reach the caller, which knows what it got."""
    container.seek(int(pts[first]), stream=stream, backward=True, any_frame=False)
    for frame in container.decode(stream):
        t = frame.pts if frame.pts is not None else frame.dts
        if t is None:
            continue
        i = int(np.searchsorted(pts, t))
        if i < len(pts) and pts[i] == t:
            yield i, frame


def rotation_of(frame) -> int:
    """The frame's display rotation in degrees counter-clockwise as a quarter turn: 0, 90, 180 or
    270. An angle between quarter turns goes to the nearest, halves away from zero (45 -> 90,
    -45 -> 270), as torchcodec turns it, so every backend turns a file alike."""
    angle = float(frame.rotation or 0)
    quarters = math.floor(abs(angle) / 90 + 0.5)
    return (quarters if angle >= 0 else -quarters) * 90 % 360


def to_rgb(frame) -> np.ndarray:
    """A decoded frame as (H, W, 3) uint8 RGB, upright (its display rotation applied)."""
    rgb = frame.to_ndarray(format="rgb24")  # (H, W, 3) as coded
    k = rotation_of(frame) // 90
    return np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb
