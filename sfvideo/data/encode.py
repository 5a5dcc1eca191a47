"""Writing frames to H.264 video files (synthetic data, benchmarks, tests)."""

from __future__ import annotations

import contextlib
import itertools
import os
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from ..utils.io import atomic_path

# libx264's lookahead and macroblock tree make its output depend on what else runs at the same
# time (even with threads=1), so concurrent encoders would give different bytes for the same
# frames and the toy dataset, with every number trained on it, would change from one generation
# to the next. Without them, and on one thread, the output is the same every time.
X264_DETERMINISTIC = "threads=1:rc-lookahead=0:mbtree=0"


@contextlib.contextmanager
def same_thread_scheduling() -> Iterator[None]:
    """Restore the calling thread's scheduling class and priority when the block ends.

    SVT-AV1 (PyAV's ``libsvtav1``), run as root, moves the thread that opens it to SCHED_FIFO at
    priority 99 and leaves it there; every thread the process starts afterwards inherits that
    class and can keep all cores from everything else. Encoders run inside this block.
    """
    if not hasattr(os, "sched_getscheduler"):  # not Linux: nothing to keep
        yield
        return
    policy, param = os.sched_getscheduler(0), os.sched_getparam(0)
    try:
        yield
    finally:
        if (os.sched_getscheduler(0), os.sched_getparam(0)) != (policy, param):
            os.sched_setscheduler(0, policy, param)


def write_video(
    path: str | os.PathLike,
    frames: np.ndarray | Iterable[np.ndarray],
    fps: float = 30.0,
    codec: str = "libx264",
    gop: int = 12,
    crf: int = 18,
    options: dict[str, str] | None = None,
) -> Path:
    """Encode uint8 RGB frames into a video file with PyAV.

    ``frames`` is a (T, H, W, 3) array, or any iterable of (H, W, 3) frames, which is encoded as
    it is produced (a long video never sits in memory). H and W must be even for yuv420p.
    ``gop`` is the keyframe interval in frames (YouTube uses about 2-5 s; decoders must seek
    from the previous keyframe). ``options`` are extra encoder options (e.g.
    ``{"sc_threshold": "0"}`` for a fixed GOP, ``{"preset": "ultrafast"}``).
    The file is written under a temporary name and renamed (``utils.io.atomic_path``), so a crash
    never leaves a partial file.
    """
    import av  # local import: decoders are an optional dependency

    frames = iter(frames)
    first = next(frames, None)
    if first is None or first.dtype != np.uint8 or first.ndim != 3 or first.shape[-1] != 3:
        got = "no frames" if first is None else f"{first.dtype} {first.shape}"
        raise ValueError(f"frames must be uint8 (H, W, 3) each, got {got}")
    h, w, _ = first.shape
    if h % 2 or w % 2:
        raise ValueError(f"frame size must be even for yuv420p, got {h}x{w}")
    path = Path(path)
    with same_thread_scheduling(), atomic_path(path) as tmp, av.open(str(tmp), mode="w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height = w, h
        stream.pix_fmt = "yuv420p"
        opts = {"crf": str(crf), "g": str(gop), "keyint_min": str(gop), "preset": "veryfast"}
        if codec == "libx264":  # the same bytes on every run (see X264_DETERMINISTIC)
            opts["x264-params"] = X264_DETERMINISTIC
        stream.options = {**opts, **(options or {})}
        for frame in itertools.chain([first], frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
