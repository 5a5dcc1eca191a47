"""Barcode videos for the decoder fidelity suite: every frame shows its own index.

The index is written as ``BITS`` black/white blocks (``CELL`` pixels square, a 2 x 6 grid
in the top-left corner, most significant bit first). A block survives any of the listed codecs
at default quality because only its centre is read and black/white sit 255 levels apart.
A red band on the left edge marks the frame's orientation (for the rotation test).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import numpy as np

CELL = 10
COLS, ROWS = 6, 2
BITS = COLS * ROWS  # up to 4095 frames


class Kind(NamedTuple):
    """One kind of video the decoders must read right."""

    name: str  # also the file name
    codec: str
    num_frames: int = 96
    fps: float = 30.0
    height: int = 64
    width: int = 96
    pix_fmt: str = "yuv420p"
    options: tuple[tuple[str, str], ...] = ()
    vfr: bool = False
    rotation: int = 0  # display-matrix rotation, degrees counter-clockwise


KINDS = (
    Kind("h264_bframes.mp4", "libx264", options=(("bf", "3"), ("g", "32"), ("preset", "veryfast"))),
    Kind("h264_gop250.mp4", "libx264", num_frames=300, options=(("g", "250"), ("keyint_min", "250"),
                                                                  ("sc_threshold", "0"), ("preset", "veryfast"))),
    Kind("h264_odd_size.mp4", "libx264", height=67, width=99, pix_fmt="yuv444p", options=(("preset", "veryfast"),)),
    Kind("h264_25fps.mp4", "libx264", fps=25.0, options=(("g", "25"), ("preset", "veryfast"))),
    Kind("h264_vfr.mp4", "libx264", vfr=True, options=(("g", "30"), ("preset", "veryfast"))),
    Kind("h264.mkv", "libx264", options=(("g", "30"), ("preset", "veryfast"))),
    Kind("hevc.mp4", "libx265", options=(("x265-params", "log-level=none:keyint=30:bframes=3"), ("preset", "ultrafast"))),
    Kind("vp9.webm", "libvpx-vp9", options=(("g", "30"), ("deadline", "realtime"), ("cpu-used", "8"))),
    Kind("vp8.webm", "libvpx", options=(("g", "30"), ("deadline", "realtime"), ("cpu-used", "8"))),
    Kind("av1.mp4", "libsvtav1", options=(("g", "30"), ("preset", "12"))),
    Kind("mpeg4.avi", "mpeg4", options=(("g", "30"), ("qscale", "3"))),
    Kind("mjpeg.avi", "mjpeg", pix_fmt="yuvj420p", options=(("q:v", "3"),)),
)
ROTATED = Kind("rotated90.mp4", "libx264", num_frames=40, options=(("g", "10"), ("preset", "veryfast")), rotation=90)


def barcode_frame(index: int, height: int, width: int) -> np.ndarray:
    """uint8 (H, W, 3): grey background, ``index`` in black/white blocks, a red band on the left."""
    frame = np.full((height, width, 3), 128, np.uint8)
    for bit in range(BITS):
        r, c = divmod(bit, COLS)
        on = (index >> (BITS - 1 - bit)) & 1
        y, x = 2 + r * CELL, 12 + c * CELL
        frame[y : y + CELL, x : x + CELL] = 255 if on else 0
    frame[:, :6] = (255, 0, 0)
    return frame


def read_barcode(frame) -> int:
    """The index in a decoded (H, W, 3) frame, read from the centre of each block."""
    frame = np.asarray(frame)
    value = 0
    for bit in range(BITS):
        r, c = divmod(bit, COLS)
        y, x = 2 + r * CELL + CELL // 2, 12 + c * CELL + CELL // 2
        value = (value << 1) | int(frame[y - 2 : y + 2, x - 2 : x + 2].mean() > 128)
    return value


def red_band_side(frame) -> str:
    """Which edge of a decoded frame carries the red band: left, right, top or bottom."""
    f = np.asarray(frame).astype(np.int16)
    redness = f[..., 0] - (f[..., 1] + f[..., 2]) // 2  # (H, W)
    edges = {"left": redness[:, :3], "right": redness[:, -3:], "top": redness[:3], "bottom": redness[-3:]}
    return max(edges, key=lambda k: float(edges[k].mean()))


def vfr_durations(num_frames: int) -> list[int]:
    """Frame durations in ms for the variable-rate kind: bursts at 60 fps, pauses at 10-20 fps."""
    pattern = [17, 17, 17, 17, 50, 33, 100, 33, 17, 67]
    return [pattern[i % len(pattern)] for i in range(num_frames)]


def write_kind(kind: Kind, out_dir: Path) -> Path:
    """Encode ``kind`` with PyAV into ``out_dir / kind.name``."""
    import av

    from sfvideo.data.encode import same_thread_scheduling

    path = Path(out_dir) / kind.name
    with same_thread_scheduling(), av.open(str(path), mode="w") as container:
        rate = Fraction(kind.fps).limit_denominator(1001)
        stream = container.add_stream(kind.codec, rate=rate)
        stream.width, stream.height = kind.width, kind.height
        stream.pix_fmt = kind.pix_fmt
        stream.options = dict(kind.options)
        if kind.vfr:
            stream.codec_context.time_base = Fraction(1, 1000)
            stream.time_base = Fraction(1, 1000)
        if kind.rotation:
            stream.set_display_rotation(kind.rotation)
        pts = 0
        durations = vfr_durations(kind.num_frames) if kind.vfr else None
        for i in range(kind.num_frames):
            frame = av.VideoFrame.from_ndarray(barcode_frame(i, kind.height, kind.width), format="rgb24")
            if durations is not None:
                frame.pts, frame.time_base = pts, Fraction(1, 1000)
                pts += durations[i]
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def index_sets(num_frames: int) -> dict[str, list[int]]:
    """The index sets every backend must return exactly (a 32 x 2 clip is 64 source frames)."""
    n = num_frames
    mid = n // 2 - 32
    rng = np.random.default_rng(n)
    return {
        "start clip": list(range(0, 64, 2)),
        "middle clip": list(range(mid, mid + 64, 2)),
        "clip ending at the last frame": list(range(n - 63, n, 2)),
        "random sparse": sorted(rng.choice(n, 12, replace=False).tolist()),
        "unsorted with repeats": [n - 1, 0, 5, 5, n // 2, 3, n - 1, 1, n // 3, n // 3],
    }
