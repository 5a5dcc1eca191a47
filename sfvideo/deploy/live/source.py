"""A live video source: a file, an RTSP/HTTP(S)/TCP/UDP stream or a V4L2 camera, opened with
PyAV (``data.pyav_reader.open_video``), decoded frame by frame with stream times, and reopened
with back-off when it is lost.

Stream time is seconds since the first frame read. Within one connection it follows the frames'
timestamps (on a live source whose format has none, such as MJPEG over HTTP, the frames' arrival
times); after a reconnect it goes on from the last frame by the wall time the outage took, so it
stays "seconds since the first frame" on a live source. A timestamp that goes backwards
continues one frame after the last. Packets FFmpeg flags as corrupt, and packets the decoder
rejects, are skipped and counted.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator, NamedTuple

from ...data.pyav_reader import DecodeError, open_video

log = logging.getLogger("sfvideo.stream")

KINDS = ("file", "rtsp", "http", "tcp", "udp", "camera")
TRANSPORTS = ("tcp", "udp")
MAX_BACKOFF_S = 8.0
AVFMT_NOTIMESTAMPS = 0x0080  # FFmpeg's flag of formats whose timestamps are made up (multipart JPEG, ...)


class SourceLost(RuntimeError):
    """A source that went away and did not come back within the reconnect attempts."""


@dataclass(frozen=True)
class SourceOptions:
    """How a source is opened and kept.

    Attributes:
        rtsp_transport: ``tcp`` (default: no packet loss, works through NAT) or ``udp``.
        open_timeout: seconds an open may wait for the source before it fails.
        read_timeout: seconds a read may wait for data before the source counts as lost.
        reconnect: reopen attempts after the source is lost (0: a lost source ends the run).
        backoff_s: the wait before the first attempt; each further attempt waits twice as long
            (at most ``MAX_BACKOFF_S``).
        ffmpeg_options: further FFmpeg input options (``{"probesize": "32768"}``, ...).
    """

    rtsp_transport: str = "tcp"
    open_timeout: float = 10.0
    read_timeout: float = 10.0
    reconnect: int = 5
    backoff_s: float = 0.5
    ffmpeg_options: dict[str, str] = field(default_factory=dict)


class SourceFrame(NamedTuple):
    t: float  # stream time, seconds since the first frame read
    frame: object  # av.VideoFrame
    restarted: bool  # the first frame after a reconnect (an outage lies before it)


def source_kind(source: str) -> str:
    """``file``, ``rtsp``, ``http``, ``tcp``, ``udp`` or ``camera`` (``/dev/videoN``)."""
    scheme = source.split("://", 1)[0].lower() if "://" in source else ""
    if scheme in ("rtsp", "rtsps"):
        return "rtsp"
    if scheme in ("http", "https"):
        return "http"
    if scheme in ("tcp", "udp"):
        return scheme
    if scheme:
        raise ValueError(f"{source}: unsupported source; expected a file, /dev/videoN, rtsp://, http(s)://, tcp:// "
                         "or udp://")
    if re.fullmatch(r"/dev/video\d+", source):
        return "camera"
    return "file"


def input_arguments(source: str, kind: str, opts: SourceOptions) -> tuple[str | None, dict[str, str]]:
    """FFmpeg's input format (or None: probe) and options for a source of ``kind``."""
    if opts.rtsp_transport not in TRANSPORTS:
        raise ValueError(f"rtsp transport {opts.rtsp_transport!r}; expected one of {TRANSPORTS}")
    options: dict[str, str] = {}
    fmt = None
    if kind == "rtsp":
        options["rtsp_transport"] = opts.rtsp_transport
    elif kind == "udp":
        options["overrun_nonfatal"] = "1"  # a burst that overflows the socket buffer loses packets, not the stream
    elif kind == "camera":
        fmt = "v4l2"
    return fmt, {**options, **opts.ffmpeg_options}


class LiveSource:
    """One source, opened (``open``) then read (``frames``) across reconnects.

    Counters (read by the status line and the summary): ``frames_decoded``, ``corrupt_packets``,
    ``reconnects``, ``discontinuities``; ``fps`` is the source's nominal rate.
    """

    def __init__(self, source: str, opts: SourceOptions | None = None):
        self.source = os.fspath(source)
        self.opts = opts or SourceOptions()
        self.kind = source_kind(self.source)
        self.fps = 30.0
        self.arrival_times = False  # stream time from when frames arrive: the format has no timestamps
        self.frames_decoded = self.corrupt_packets = self.reconnects = self.discontinuities = 0
        self._container = self._stream = None

    @property
    def live(self) -> bool:
        return self.kind != "file"

    def open(self) -> None:
        """Open the source (once); a ``DecodeError`` naming it and FFmpeg's reason when it cannot."""
        fmt, options = input_arguments(self.source, self.kind, self.opts)
        timeout = (self.opts.open_timeout, self.opts.read_timeout) if self.live else None
        self._container, self._stream = open_video(self.source, fmt=fmt, options=options, timeout=timeout)
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.fps = float(rate) if rate else self.fps
        self.arrival_times = self.live and bool(self._container.format.flags & AVFMT_NOTIMESTAMPS)

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = self._stream = None

    def frames(self, stop: threading.Event) -> Iterator[SourceFrame]:
        """Every decoded frame with its stream time, reopening a lost live source; ends at the end
        of a file, when ``stop`` is set, or (raising ``SourceLost``) when the attempts run out.
        The source must be open; it is closed when the iteration ends."""
        clock = _StreamClock(1.0 / self.fps)
        try:
            while True:
                reason = yield from self._connection(clock)
                self.close()
                if stop.is_set() or not self.live or (self.opts.reconnect == 0 and reason == "end of stream"):
                    return
                self._reconnect(reason, stop)
                if stop.is_set():
                    return
                clock.restart(1.0 / self.fps)
        finally:
            self.close()

    def _connection(self, clock: "_StreamClock"):
        """Frames of the open connection; returns why it ended (``end of stream`` or an error)."""
        import av

        try:
            for frame in self._decoded():
                t, rebased = clock.time_of(frame, time.monotonic() if self.arrival_times else None)
                self.discontinuities += rebased
                yield SourceFrame(t, frame, clock.take_restart())
        except (av.FFmpegError, OSError) as err:
            if not self.live:
                raise DecodeError(f"{self.source}: PyAV failed to read: {err}") from None
            if isinstance(err, av.ExitError):  # FFmpeg's interrupt: the read time-out ran out
                return f"no data within the {self.opts.read_timeout:g} s read time-out"
            return f"read failed: {err}"
        return "end of stream"

    def _decoded(self) -> Iterator[object]:
        """Decoded frames of the open connection; corrupt or undecodable packets skipped, counted."""
        import av

        for packet in self._container.demux(self._stream):
            if packet.is_corrupt:
                self.corrupt_packets += 1
                continue
            try:
                frames = self._stream.decode(packet)
            except (av.InvalidDataError, av.error.UndefinedError) as err:
                self.corrupt_packets += 1
                log.warning("%s: skipped a packet the decoder rejected (%s)", self.source, err)
                continue
            self.frames_decoded += len(frames)
            yield from frames

    def _reconnect(self, reason: str, stop: threading.Event) -> None:
        """Reopen with back-off, each attempt logged; ``SourceLost`` when all fail."""
        attempts = self.opts.reconnect
        if attempts == 0:
            raise SourceLost(f"{self.source}: lost ({reason}); not reconnecting (--reconnect 0)")
        last = reason
        for attempt in range(1, attempts + 1):
            wait = min(self.opts.backoff_s * 2 ** (attempt - 1), MAX_BACKOFF_S)
            log.warning("%s: %s; reconnect attempt %d/%d in %.1f s", self.source, last, attempt, attempts, wait)
            if stop.wait(wait):
                return
            try:
                self.open()
            except DecodeError as err:
                last = str(err).removeprefix(f"{self.source}: ")
                continue
            self.reconnects += 1
            log.warning("%s: reconnected (attempt %d/%d)", self.source, attempt, attempts)
            return
        raise SourceLost(f"{self.source}: lost ({reason}); {attempts} reconnect attempts failed (last: {last})")


class _StreamClock:
    """Stream times of frames across connections: timestamps within one, the outage's wall time
    between them, one frame on after a timestamp that goes backwards."""

    def __init__(self, frame_s: float):
        self.frame_s = frame_s
        self.offset = 0.0
        self.first_pts: float | None = None
        self.last_t: float | None = None
        self.last_wall = 0.0
        self.restarted = False

    def restart(self, frame_s: float) -> None:
        """A new connection: its first frame comes the outage's wall time after the last one."""
        self.frame_s = frame_s
        self.first_pts = None
        self.restarted = True

    def take_restart(self) -> bool:
        restarted, self.restarted = self.restarted, False
        return restarted

    def time_of(self, frame, arrived: float | None = None) -> tuple[float, bool]:
        """(stream time of ``frame``, whether its timestamp went backwards and was rebased);
        ``arrived``: a time (seconds) standing for the frame's timestamp."""
        now = time.monotonic()
        pts = frame.pts if frame.pts is not None else frame.dts
        seconds = float(pts * frame.time_base) if pts is not None and frame.time_base else None
        seconds = arrived if arrived is not None else seconds
        rebased = False
        if self.last_t is None:  # the first frame read
            t = 0.0
        elif self.first_pts is None:  # the first frame of a new connection: after the outage
            t = self.last_t + max(self.frame_s, now - self.last_wall)
        elif seconds is None:  # no timestamp: one frame on
            t = self.last_t + self.frame_s
        else:
            t = self.offset + seconds - self.first_pts
            if t <= self.last_t:  # a timestamp going backwards: one frame on from there
                t, rebased, self.first_pts = self.last_t + self.frame_s, True, None
        if self.first_pts is None and seconds is not None:
            self.first_pts, self.offset = seconds, t
        self.last_t, self.last_wall = t, now
        return t, rebased
