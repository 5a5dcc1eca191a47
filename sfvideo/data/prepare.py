"""Preparing a Kinetics download: re-encode every video to a fixed short side, in parallel, resumably.

Each output is written under a temporary name and renamed when complete (``utils.io.atomic_path``),
so an interrupted run never leaves a half-written file; a re-run skips outputs that exist.
"""

from __future__ import annotations

import itertools
import os
from fractions import Fraction
from multiprocessing import Pool
from pathlib import Path
from typing import BinaryIO, Iterable, NamedTuple

from ..utils.io import atomic_path, is_temporary
from .lists import VIDEO_EXTENSIONS
from .pyav_reader import rotation_of, to_rgb


class PrepareResult(NamedTuple):
    """Outcome of one video: ``status`` is ``done``, ``skipped`` (output exists), ``failed`` or
    ``collision`` (another source has the same output name), the last two with ``error``."""

    src: str
    dst: str
    status: str
    error: str = ""


def scaled_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(h, w) with the short side at ``short_side`` (never upscaled), both even for yuv420p."""
    scale = min(1.0, short_side / min(height, width))
    h, w = max(2, round(height * scale)), max(2, round(width * scale))
    return h - h % 2, w - w % 2


def reencode_video(src: str | os.PathLike, dst: str | os.PathLike, short_side: int = 320,
                   crf: int = 23, gop_seconds: float = 2.0) -> None:
    """Re-encode ``src`` to H.264 mp4 at ``dst`` with the short side at ``short_side`` (video only).
    A phone video's display rotation is applied to the pixels (``pyav_reader.to_rgb``, the rule of
    every decoder), so the output is upright with no rotation left to apply.

    Raises:
        Exception: whatever PyAV raises for an unreadable input (the caller records it).
    """
    with atomic_path(dst) as tmp:
        encode_short_side(src, str(tmp), short_side, crf, gop_seconds)


def encode_short_side(src: str | os.PathLike, out_file: str | BinaryIO, short_side: int = 320, crf: int = 23,
                      gop_seconds: float = 2.0) -> None:
    """``reencode_video``'s encoding into ``out_file``: a path, or a seekable binary file object
    (a ``BytesIO``, for output kept in memory)."""
    import av

    with av.open(str(src)) as inp, av.open(out_file, mode="w", format="mp4") as out:
        s_in = inp.streams.video[0]
        s_in.thread_type = "AUTO"
        frames = inp.decode(s_in)
        first = next(frames, None)
        turn = rotation_of(first) if first is not None else 0
        coded = (s_in.codec_context.height, s_in.codec_context.width)
        h, w = scaled_size(*(coded[::-1] if turn in (90, 270) else coded), short_side)
        rate = Fraction(s_in.average_rate or s_in.guessed_rate or Fraction(30)).limit_denominator(1001)
        s_out = out.add_stream("libx264", rate=rate)
        s_out.width, s_out.height, s_out.pix_fmt = w, h, "yuv420p"
        gop = max(1, round(float(rate) * gop_seconds))
        s_out.options = {"crf": str(crf), "g": str(gop), "preset": "veryfast"}
        for i, frame in enumerate(itertools.chain([first], frames) if first is not None else []):
            if turn:
                frame = av.VideoFrame.from_ndarray(to_rgb(frame), format="rgb24")  # (H, W, 3) upright
            frame = frame.reformat(width=w, height=h, format="yuv420p")
            frame.pts, frame.time_base = i, 1 / rate  # constant rate output
            for packet in s_out.encode(frame):
                out.mux(packet)
        for packet in s_out.encode():
            out.mux(packet)


def find_videos(root: str | os.PathLike) -> list[Path]:
    """Video files under ``root`` (by extension), sorted; temporaries of an interrupted write are skipped."""
    root = Path(root)
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and not is_temporary(p))


def output_path(src: Path, src_root: Path, dst_root: Path) -> Path:
    """The output of ``src``: same relative folder and stem, ``.mp4``."""
    return (dst_root / src.relative_to(src_root)).with_suffix(".mp4")


def plan_outputs(sources: Iterable[Path], src_root: Path, dst_root: Path
                 ) -> tuple[list[tuple[Path, Path]], list[PrepareResult]]:
    """(source, output) pairs, and a ``collision`` result for every source whose output name another
    source also maps to (``clip.mp4``, ``clip.mkv`` and ``clip.webm`` all become ``clip.mp4``).
    Of such a group the ``.mp4`` source is converted (else the first by extension), never
    whichever happens to finish last."""
    groups: dict[Path, list[Path]] = {}
    for src in sources:
        groups.setdefault(output_path(src, src_root, dst_root), []).append(src)
    pairs, collisions = [], []
    for dst, srcs in groups.items():
        keep = min(srcs, key=lambda p: (p.suffix.lower() != ".mp4", p.suffix.lower(), p.name))
        pairs.append((keep, dst))
        collisions += [PrepareResult(str(p), str(dst), "collision",
                                     f"same output name as {keep}, which was converted; rename one to keep both")
                       for p in srcs if p != keep]
    return pairs, collisions


def _job(args: tuple[str, str, int, int, float]) -> PrepareResult:
    src, dst, short_side, crf, gop_seconds = args
    if os.path.exists(dst):
        return PrepareResult(src, dst, "skipped")
    try:
        reencode_video(src, dst, short_side, crf, gop_seconds)
    except Exception as err:  # any unreadable input is recorded, never fatal
        return PrepareResult(src, dst, "failed", f"{type(err).__name__}: {err}")
    return PrepareResult(src, dst, "done")


def prepare_dataset(src_root: str | os.PathLike, dst_root: str | os.PathLike, short_side: int = 320,
                    workers: int = 4, crf: int = 23, gop_seconds: float = 2.0,
                    progress: bool = True) -> list[PrepareResult]:
    """Re-encode every video under ``src_root`` into ``dst_root`` (same layout), in parallel.

    Returns:
        One ``PrepareResult`` per video (done, skipped because the output exists, failed, or
        collision: not converted because another source has the same output name).
    """
    from tqdm import tqdm

    src_root, dst_root = Path(src_root), Path(dst_root)
    pairs, results = plan_outputs(find_videos(src_root), src_root, dst_root)
    jobs = [(str(src), str(dst), short_side, crf, gop_seconds) for src, dst in pairs]
    bar = tqdm(total=len(jobs), unit="video", disable=not progress, desc="re-encoding")
    if workers <= 1:
        it: Iterable[PrepareResult] = map(_job, jobs)
        for r in it:
            results.append(r)
            bar.update()
    else:
        with Pool(workers) as pool:
            for r in pool.imap_unordered(_job, jobs, chunksize=1):
                results.append(r)
                bar.update()
    bar.close()
    return results
