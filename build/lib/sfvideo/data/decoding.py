"""Video decoding behind one function: decord (default) or PyAV, same frames for the same indices.

``decode_video(path, index_fn, backend)`` opens the file once, reads its frame count and rate,
asks ``index_fn`` which source frames are needed, and decodes only those:

* decord: ``get_batch`` on the sorted unique indices (it seeks to the keyframe before each gap).
* PyAV: one seek to the keyframe before the first index, then decode forward to the last index,
  converting to RGB only the frames that are needed.

Readers are opened per call and closed before returning. Decord's ``VideoReader`` is known to
grow memory when one reader serves many ``get_batch`` calls; a reader per call keeps the
memory of a long run flat (checked by ``tools/benchmark_loader.py --long``).

Errors (missing, zero-byte, truncated or corrupt files) raise ``DecodeError`` naming the file.
"""

from __future__ import annotations

import os
from fractions import Fraction
from typing import Callable, NamedTuple, Sequence

import numpy as np
import torch

BACKENDS = ("decord", "pyav")


class DecodeError(RuntimeError):
    """A video that cannot be read; the message names the file and the reason."""


class VideoMeta(NamedTuple):
    """What sampling needs to know about a video."""

    num_frames: int
    fps: float


IndexFn = Callable[[VideoMeta], Sequence[int]]


def _check_file(path: str) -> None:
    if not os.path.isfile(path):
        raise DecodeError(f"{path}: file not found")
    if os.path.getsize(path) == 0:
        raise DecodeError(f"{path}: file is empty (0 bytes)")


def _gather(unique: np.ndarray, frames: np.ndarray, indices: np.ndarray) -> torch.Tensor:
    """Frames for ``indices`` (with repeats, any order) from frames decoded at ``unique``."""
    pos = np.searchsorted(unique, indices)  # (T,)
    return torch.from_numpy(np.ascontiguousarray(frames[pos]))  # (T, H, W, C)


def _decode_decord(path: str, index_fn: IndexFn, num_threads: int) -> tuple[torch.Tensor, VideoMeta]:
    import decord

    try:
        vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=num_threads)
    except Exception as err:  # decord raises its own DECORDError / RuntimeError
        raise DecodeError(f"{path}: decord cannot open the file: {err}") from None
    try:
        num_frames = len(vr)
        if num_frames <= 0:
            raise DecodeError(f"{path}: no video frames")
        fps = float(vr.get_avg_fps() or 0.0)
        meta = VideoMeta(num_frames, fps)
        indices = np.clip(np.asarray(index_fn(meta), dtype=np.int64), 0, num_frames - 1)  # (T,)
        unique = np.unique(indices)
        try:
            frames = vr.get_batch(unique.tolist()).asnumpy()  # (U, H, W, C)
        except Exception as err:
            raise DecodeError(f"{path}: decord failed to decode frames {unique.min()}..{unique.max()}: {err}") from None
    finally:
        del vr
    if frames.shape[0] != unique.shape[0]:
        raise DecodeError(f"{path}: decord returned {frames.shape[0]} frames, expected {unique.shape[0]}")
    return _gather(unique, frames, indices), meta


def _pyav_meta(stream) -> VideoMeta:
    rate = stream.average_rate or stream.guessed_rate or Fraction(30)
    fps = float(rate)
    num_frames = int(stream.frames or 0)
    if num_frames <= 0 and stream.duration and stream.time_base:
        num_frames = int(round(float(stream.duration * stream.time_base) * fps))
    return VideoMeta(num_frames, fps)


def _decode_pyav(path: str, index_fn: IndexFn, num_threads: int) -> tuple[torch.Tensor, VideoMeta]:
    import av

    try:
        container = av.open(path)
    except Exception as err:
        raise DecodeError(f"{path}: PyAV cannot open the file: {err}") from None
    try:
        if not container.streams.video:
            raise DecodeError(f"{path}: no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if num_threads > 0:
            stream.thread_count = num_threads
        meta = _pyav_meta(stream)
        if meta.num_frames <= 0:
            raise DecodeError(f"{path}: no video frames")
        indices = np.clip(np.asarray(index_fn(meta), dtype=np.int64), 0, meta.num_frames - 1)  # (T,)
        unique = np.unique(indices)
        tb = stream.time_base
        t0 = stream.start_time or 0
        first, last = int(unique[0]), int(unique[-1])
        if first > 0:
            # Seek to the keyframe at or before the first needed frame (half a frame early so
            # rounding never lands after it).
            target = t0 + int((first - 0.5) / meta.fps / tb)
            container.seek(max(target, t0), stream=stream, backward=True, any_frame=False)
        wanted = set(unique.tolist())
        got: dict[int, np.ndarray] = {}
        last_frame, last_frame_idx = None, -1
        try:
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                idx = int(round(float((frame.pts - t0) * tb) * meta.fps))
                if idx in wanted:
                    got[idx] = frame.to_ndarray(format="rgb24")  # (H, W, C)
                last_frame, last_frame_idx = frame, idx
                if idx >= last:
                    break
        except DecodeError:
            raise
        except Exception as err:
            if not got:
                raise DecodeError(f"{path}: PyAV failed to decode: {err}") from None
        if not got:
            raise DecodeError(f"{path}: PyAV decoded no frames in {first}..{last}")
        if last_frame is not None and last_frame_idx < last and last_frame_idx not in got:
            # The header over-counted frames: the last frame decoded stands in for those past it.
            got[last_frame_idx] = last_frame.to_ndarray(format="rgb24")
        keys = np.array(sorted(got))
        filled = []
        for i in unique.tolist():
            if i not in got:  # nearest decoded frame at or before i (or the first one)
                i = int(keys[max(np.searchsorted(keys, i, side="right") - 1, 0)])
            filled.append(got[i])
    finally:
        container.close()
    frames = np.stack(filled)  # (U, H, W, C)
    return _gather(unique, frames, indices), meta


def decode_video(
    path: str | os.PathLike,
    index_fn: IndexFn,
    backend: str = "decord",
    fallback: bool = True,
    num_threads: int = 0,
) -> tuple[torch.Tensor, VideoMeta]:
    """Decode the frames ``index_fn(meta)`` selects.

    Args:
        path: video file.
        index_fn: called with the video's ``VideoMeta``; returns source frame indices (any
            order, repeats allowed; clipped to the video).
        backend: ``"decord"`` or ``"pyav"``.
        fallback: when the backend fails (or decord is not installed), try the other one
            before giving up.
        num_threads: decoder threads (0: the decoder's default).

    Returns:
        frames: uint8 tensor (T, H, W, C), RGB, in the order of the indices.
        meta: frame count and rate of the video.

    Raises:
        DecodeError: the file is missing, empty, truncated or corrupt (message names it).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown decoder {backend!r}; expected one of {BACKENDS}")
    path = os.fspath(path)
    _check_file(path)
    order = [backend] + ([b for b in BACKENDS if b != backend] if fallback else [])
    errors = []
    for name in order:
        fn = _decode_decord if name == "decord" else _decode_pyav
        try:
            return fn(path, index_fn, num_threads)
        except ImportError as err:
            errors.append(f"{name} not installed ({err})")
        except DecodeError as err:
            errors.append(str(err))
    raise DecodeError("; ".join(errors))


def probe_video(path: str | os.PathLike, backend: str = "pyav") -> VideoMeta:
    """Frame count and rate, decoding a single frame."""
    return decode_video(path, lambda meta: [0], backend)[1]
