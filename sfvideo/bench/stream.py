"""Live-stream checks, run by ``tools/benchmark_stream.py`` (not by the test suite):

* speed: a 320p 30 fps video served over loopback by FFmpeg (``-re``: in real time, MPEG-TS over
  HTTP), ``sfvideo stream`` run against it for some minutes per setting in its own process, and
  its input rate, inference rate, dropped windows, latency quantiles (whole run, first and last
  minute), RSS over time and real-time factor;
* accuracy: a video of glued toy segments (``bench.timeline.segment_video``) served the same
  way through the trained toy model: the fraction of windows inside one segment whose smoothed
  label is the segment's class (the timeline benchmark's measure on smoothed labels).

``FFmpegServer`` (FFmpeg serving a file on loopback) is shared with the tests.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

SERVE_KINDS = ("http", "tcp", "udp", "mjpeg")


def free_port() -> int:
    """A TCP port free on loopback now (the OS's pick)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    """Whether a socket listens on TCP ``port`` (read from /proc/net/tcp*: no connection made,
    which would use up a one-client server)."""
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                return True
    return False


def serve_command(video: str | os.PathLike, kind: str, port: int, loop: bool = False) -> list[str]:
    """FFmpeg serving ``video`` in real time on loopback: ``http`` (MPEG-TS, one client), ``tcp``
    (MPEG-TS, one client), ``udp`` (MPEG-TS sent to the port) or ``mjpeg`` (multipart JPEG over
    HTTP). ``loop``: over and over."""
    if kind not in SERVE_KINDS:
        raise ValueError(f"serve kind {kind!r}; expected one of {SERVE_KINDS}")
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-re"]
    cmd += ["-stream_loop", "-1"] if loop else []
    cmd += ["-i", str(video), "-an"]
    if kind == "mjpeg":
        return cmd + ["-c:v", "mjpeg", "-q:v", "5", "-f", "mpjpeg", "-listen", "1", f"http://127.0.0.1:{port}"]
    cmd += ["-c:v", "copy", "-f", "mpegts"]
    return cmd + {"http": ["-listen", "1", f"http://127.0.0.1:{port}"],
                  "tcp": [f"tcp://127.0.0.1:{port}?listen=1"],
                  "udp": [f"udp://127.0.0.1:{port}?pkt_size=1316"]}[kind]


class FFmpegServer:
    """FFmpeg serving a file on loopback (``serve_command``) while the context is open; ``url`` is
    where a client reads it. Entering waits until the port listens (TCP kinds)."""

    def __init__(self, video: str | os.PathLike, kind: str = "http", port: int | None = None, loop: bool = False,
                 ready_timeout: float = 30.0):
        if shutil.which("ffmpeg") is None:
            raise FileNotFoundError("ffmpeg is not on the PATH (make ffmpeg installs it)")
        self.kind, self.port = kind, port or free_port()
        self.command = serve_command(video, kind, self.port, loop)
        scheme = {"http": "http", "mjpeg": "http", "tcp": "tcp", "udp": "udp"}[kind]
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.ready_timeout = ready_timeout
        self.process: subprocess.Popen | None = None

    def start(self) -> "FFmpegServer":
        self.process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + self.ready_timeout
        while self.kind != "udp" and not listening(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                err = self.process.stderr.read() if self.process.poll() is not None else "no listening socket"
                self.stop()
                raise RuntimeError(f"{' '.join(self.command)}: did not start serving: {err}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        if self.process is not None:
            self.process.wait()
            self.process.stderr.close()

    def __enter__(self) -> "FFmpegServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
