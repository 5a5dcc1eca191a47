"""Video decoding behind one function: torchcodec, decord or PyAV, the same frames for the same indices.

``decode_video(path, index_fn, backend)`` opens the file once, reads its frame count and rate,
asks ``index_fn`` which source frames are needed, and decodes only those. A frame's index is
its position in presentation (display) order, counted from the first displayed frame; every
backend below returns the same source frame for the same index (``tests/test_decoder_fidelity.py``
checks it on twelve codec/container kinds with barcoded frames):

* torchcodec: ``VideoDecoder(seek_mode="exact")`` scans the file's packets once, so frame
  counts and positions are exact on variable-frame-rate files; ``get_frames_at`` then seeks to the
  keyframe before each gap. ``seek_mode="approximate"`` skips the scan and trusts the header's
  rate and count: faster to open, right only on constant-rate files whose header is honest.
* decord: ``get_batch`` on the sorted unique indices.
* PyAV (through ``pyav_reader``, which ``sfvideo.deploy.stream`` reads files with too): an index
  pass over the packets (demuxing only, no decoding) gives the exact frame count and every
  frame's timestamp, sorted into presentation order; Matroska/WebM headers carry no frame count
  and variable-rate files break ``round(pts * fps)``, the index pass needs neither. Then one seek
  to the keyframe before the first index and a forward decode to the last, converting to RGB only
  the frames asked for.

``backend="auto"`` (the default) uses the first of torchcodec, decord, PyAV that imports and loads
its native libraries in this process. With ``fallback=True`` a file the chosen backend cannot read
is tried with the other available ones; when another backend succeeds a warning (once per file
and process) says so, because its frames may differ by a level or two of colour conversion.

Display rotation (phone videos carry a display matrix instead of rotated pixels) is applied by
every backend, turned to the nearest quarter turn (halves away from zero): torchcodec applies it
itself, decord where its bundled FFmpeg does (the rest is corrected here), the PyAV backend
rotates each frame by its display matrix (``pyav_reader.to_rgb``). decord's rows padded past the
picture at some widths (48, 72 ...: its ``get_batch`` fails) are read frame by frame and unpadded.

``decode_video(..., data=b"...")`` decodes a video held in memory (a sample read from a shard):
torchcodec takes the bytes, decord and PyAV a file-like view of them; nothing is written to disk.

Readers are opened per call and closed before returning, which keeps memory flat over long runs
(decord's ``VideoReader`` grows when one reader serves many calls).

Errors (missing, zero-byte, truncated or corrupt files, a codec the backend lacks) raise
``DecodeError`` naming the file.
"""

from __future__ import annotations

import functools
import io
import logging
import os
from typing import Callable, NamedTuple, Sequence

import numpy as np
import torch

from .pyav_reader import (
    DecodeError,
    VideoMeta,
    check_source,
    decoded_frames,
    index_frames,
    open_video,
    rotation_of,
    to_rgb,
)

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "torchcodec", "decord", "pyav")  # the values of DATA.DECODER
AUTO_ORDER = ("torchcodec", "decord", "pyav")  # what ``auto`` tries, first one that works wins
SEEK_MODES = ("exact", "approximate")  # torchcodec's seek modes (DATA.SEEK_MODE)


IndexFn = Callable[[VideoMeta], Sequence[int]]


# ----------------------------------------------------------------------------- availability
def import_decord():
    """Import decord after PyAV's native libraries, and return the module.

    decord's wheel bundles its own FFmpeg 4 and libvpx 1.6 and loads them into the process's global
    symbol scope. PyAV's own libvpx, loaded after that, binds to decord's copy and every VP8/VP9
    encoder open fails with EINVAL; loaded before, each keeps its own. So PyAV goes first.
    """
    try:
        import av  # noqa: F401  (for its libraries' load order only)
    except ImportError:
        pass
    import decord

    return decord


def _import_backend(name: str) -> None:
    """Import ``name`` with its native libraries; raises ImportError/OSError/RuntimeError if it cannot."""
    if name == "torchcodec":
        # importing the decoders loads libtorchcodec and FFmpeg's shared libraries (4 to 8)
        from torchcodec.decoders import VideoDecoder  # noqa: F401
    elif name == "decord":
        import_decord()
    elif name == "pyav":
        import av  # noqa: F401
    else:
        raise ValueError(f"unknown decoder {name!r}; expected one of {BACKENDS}")


@functools.lru_cache(maxsize=None)
def backend_status(name: str) -> str:
    """``""`` when backend ``name`` imports and loads in this process, else why it does not."""
    try:
        _import_backend(name)
    except (ImportError, OSError, RuntimeError) as err:  # torchcodec raises RuntimeError without FFmpeg
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return f"{name} unavailable: {first_line}"
    return ""


def available_backends() -> tuple[str, ...]:
    """The concrete backends that import and load here, in ``auto``'s order."""
    return tuple(b for b in AUTO_ORDER if not backend_status(b))


def resolve_backend(backend: str) -> str:
    """The concrete backend ``backend`` stands for (``auto``: the first available one).

    Raises:
        ValueError: an unknown name.
        DecodeError: ``auto`` and no backend is installed.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown decoder {backend!r}; expected one of {BACKENDS}")
    if backend != "auto":
        return backend
    avail = available_backends()
    if not avail:
        reasons = "; ".join(backend_status(b) for b in AUTO_ORDER)
        raise DecodeError(f"no video decoder works in this environment ({reasons}); pip install torchcodec or av")
    _log_auto_choice(avail[0])
    return avail[0]


@functools.lru_cache(maxsize=None)
def _log_auto_choice(name: str) -> None:
    skipped = [backend_status(b) for b in AUTO_ORDER[: AUTO_ORDER.index(name)]]
    logger.info("video decoder auto -> %s%s", name, f" ({'; '.join(skipped)})" if skipped else "")


# ----------------------------------------------------------------------------- helpers
def _indices(index_fn: IndexFn, meta: VideoMeta) -> tuple[np.ndarray, np.ndarray]:
    """Requested indices clipped to the video (T,), and their sorted unique values (U,)."""
    indices = np.clip(np.asarray(index_fn(meta), dtype=np.int64).reshape(-1), 0, meta.num_frames - 1)  # (T,)
    return indices, np.unique(indices)


def _gather(unique: np.ndarray, frames: torch.Tensor, indices: np.ndarray, path: str = "", backend: str = "",
            ) -> torch.Tensor:
    """Frames for ``indices`` (with repeats, any order) from frames (U, H, W, C) decoded at ``unique``;
    a ``DecodeError`` naming ``path`` when ``backend`` returned another number of frames."""
    if frames.shape[0] != unique.shape[0]:
        raise DecodeError(f"{path}: {backend} returned {frames.shape[0]} frames, expected {unique.shape[0]}")
    pos = torch.from_numpy(np.searchsorted(unique, indices))  # (T,)
    if frames.shape[0] == len(indices) and torch.equal(pos, torch.arange(len(indices))):
        return frames.contiguous()
    return frames.index_select(0, pos.to(frames.device))  # (T, H, W, C)


_WARNED_FALLBACK: set[str] = set()  # files whose fallback was logged in this process


def _warn_fallback(path: str, used: str, errors: list[str]) -> None:
    if path in _WARNED_FALLBACK:
        return
    _WARNED_FALLBACK.add(path)
    logger.warning("%s: decoded with %s instead (%s); its frames may differ from the configured decoder's "
                   "by a level or two of colour conversion", path, used, "; ".join(errors))


# ----------------------------------------------------------------------------- torchcodec
def _decode_torchcodec(path: str, index_fn: IndexFn, num_threads: int, seek_mode: str,
                       device: str, data: bytes | None = None) -> tuple[torch.Tensor, VideoMeta]:
    from torchcodec.decoders import VideoDecoder

    try:
        decoder = VideoDecoder(path if data is None else data, dimension_order="NHWC", seek_mode=seek_mode,
                               num_ffmpeg_threads=num_threads, device=device)
        md = decoder.metadata
        num_frames = int(md.num_frames or 0)
        fps = float(md.average_fps or 0.0)
    except Exception as err:  # torchcodec raises RuntimeError/ValueError from FFmpeg
        raise DecodeError(f"{path}: torchcodec cannot open the file: {err}") from None
    if num_frames <= 0:
        raise DecodeError(f"{path}: no video frames")
    meta = VideoMeta(num_frames, fps)
    indices, unique = _indices(index_fn, meta)
    try:
        frames = decoder.get_frames_at(unique.tolist()).data  # (U, H, W, C) uint8, rotation applied
    except Exception as err:
        raise DecodeError(f"{path}: torchcodec failed to decode frames {unique[0]}..{unique[-1]}: {err}") from None
    finally:
        del decoder
    return _gather(unique, frames, indices, path, "torchcodec"), meta


# ----------------------------------------------------------------------------- decord
class _DecordProbe(NamedTuple):
    unsafe_keys: tuple[int, ...]  # decord's numbers of keyframes it would seek to wrongly
    rotation: int  # display rotation, degrees counter-clockwise, a multiple of 90 (pyav_reader.rotation_of)
    coded_hw: tuple[int, int]  # frame size before rotation
    mp4_family: bool  # container decord's FFmpeg reads display matrices from
    exact: bool = True  # the display matrix is a quarter turn itself (decord's FFmpeg applies no other)


@functools.lru_cache(maxsize=4096)
def _decord_probe(path: str, mtime_ns: int) -> _DecordProbe:
    """``_probe_for_decord`` of a file, cached per file (and modification time) and process."""
    return _probe_for_decord(path)


def _probe_for_decord(path: str, data: bytes | None = None) -> _DecordProbe:
    """What decord gets wrong about this file, from one PyAV demuxing pass and one decoded frame.

    * decord numbers keyframes by their position in *decode* order. Where a keyframe has leading
      pictures (open-GOP HEVC/H.264: frames shown before it but decoded after it), the two orders
      differ and every frame decord returns after seeking there is shifted (one frame late on
      x265's default open GOP).
    * decord's bundled FFmpeg applies the display matrix of MP4/MOV files but not Matroska's, and
      only a matrix that is a quarter turn itself (not 45 or 170 degrees).

    ``data``: the video's bytes (``path`` then only names it).
    """
    container, stream = open_video(path, data=data)
    try:
        packets = [(p.pts if p.pts is not None else p.dts, p.is_keyframe) for p in container.demux(stream)
                   if p.size and not p.is_discard]
        container.seek(0)
        frame = next(container.decode(stream), None)
        rotation = rotation_of(frame) if frame is not None else 0
        exact = frame is None or float(frame.rotation or 0) % 90 == 0
        coded = (stream.codec_context.height, stream.codec_context.width)
        mp4 = "mp4" in container.format.name or "mov" in container.format.name
    finally:
        container.close()
    unsafe: tuple[int, ...] = ()
    if packets and all(t is not None for t, _ in packets):
        display = np.argsort(np.argsort([t for t, _ in packets], kind="stable"), kind="stable")  # decode -> display
        unsafe = tuple(i for i, (_, key) in enumerate(packets) if key and display[i] != i)
    return _DecordProbe(unsafe, rotation, coded, mp4, exact)


@functools.lru_cache(maxsize=1)
def _warn_decord_unchecked() -> None:
    logger.warning("PyAV is not installed: decord's seeks on open-GOP files (frames shifted by one) and its "
                   "missing display rotation on Matroska files cannot be corrected; pip install av")


def _decord_batch(path: str, vr, unique: np.ndarray, data: bytes | None = None) -> np.ndarray:
    """decord's frames at ``unique`` (U,), decoding through keyframes decord misnumbers and
    applying the display rotation decord misses."""
    try:
        probe = _decord_probe(path, os.stat(path).st_mtime_ns) if data is None else _probe_for_decord(path, data)
    except ImportError:
        _warn_decord_unchecked()
        probe = _DecordProbe((), 0, (0, 0), True)
    except Exception as err:
        raise DecodeError(f"{path}: cannot index packets: {err}") from None
    first, last = int(unique[0]), int(unique[-1])
    if not any(k <= last for k in probe.unsafe_keys):
        frames = _decord_get(vr, unique.tolist())  # (U, H, W, C)
    else:
        # Start at the last correctly numbered keyframe at or before ``first`` and ask for every
        # frame up to ``last``: contiguous requests make decord decode straight on, never seeking.
        keys = [int(k) for k in vr.get_key_indices()]
        start = max([k for k in keys if k <= first and k not in probe.unsafe_keys] or [0])
        frames = _decord_get(vr, list(range(start, last + 1)))[unique - start]  # (U, H, W, C)
    if probe.rotation and not _decord_turned(probe, frames.shape[1:3]):
        frames = np.ascontiguousarray(np.rot90(frames, probe.rotation // 90, axes=(1, 2)))
    return frames


def _decord_turned(probe: _DecordProbe, hw: tuple[int, int]) -> bool:
    """Whether decord applied the display rotation itself: a quarter turn of a non-square frame
    shows in the frame's shape; otherwise its FFmpeg turns MP4/MOV files whose matrix is exact."""
    if probe.rotation in (90, 270) and probe.coded_hw[0] != probe.coded_hw[1]:
        return tuple(hw) != probe.coded_hw
    return probe.mp4_family and probe.exact


def _unpadded(raw: np.ndarray) -> np.ndarray:
    """A frame decord returned as (H, W, C > 3): its rows are padded past W * 3 bytes (widths 48,
    72, ...); the (H, W, 3) picture is the first W * 3 bytes of each row."""
    h, w = raw.shape[:2]
    return np.ascontiguousarray(raw.reshape(h, -1)[:, : w * 3].reshape(h, w, 3))


def _decord_get(vr, indices: list[int]) -> np.ndarray:
    """decord's frames at ``indices`` (N, H, W, 3). At the widths whose rows decord pads, its
    ``get_batch`` fails ("The size must exactly match"); the frames are then read one at a time
    (one accurate seek, then straight on while the indices are consecutive) and unpadded."""
    try:
        return vr.get_batch(indices).asnumpy()
    except Exception as err:  # decord's DECORDError
        if "must exactly match" not in str(err):
            raise
    frames, previous = [], None
    for i in indices:
        if previous is None or i != previous + 1:
            vr.seek_accurate(i)
        frames.append(_unpadded(vr.next().asnumpy()))
        previous = i
    return np.stack(frames)


def _decode_decord(path: str, index_fn: IndexFn, num_threads: int,
                   data: bytes | None = None) -> tuple[torch.Tensor, VideoMeta]:
    decord = import_decord()

    try:
        vr = decord.VideoReader(path if data is None else io.BytesIO(data), ctx=decord.cpu(0), num_threads=num_threads)
    except Exception as err:  # decord raises its own DECORDError / RuntimeError
        raise DecodeError(f"{path}: decord cannot open the file (its bundled FFmpeg lacks some codecs, e.g. AV1): "
                          f"{str(err).strip()[:300]}") from None
    try:
        num_frames = len(vr)
        if num_frames <= 0:
            raise DecodeError(f"{path}: no video frames")
        meta = VideoMeta(num_frames, float(vr.get_avg_fps() or 0.0))
        indices, unique = _indices(index_fn, meta)
        try:
            frames = _decord_batch(path, vr, unique, data)  # (U, H, W, C), rotation applied by decord
        except DecodeError:
            raise
        except Exception as err:
            raise DecodeError(f"{path}: decord failed to decode frames {unique[0]}..{unique[-1]}: {err}") from None
    finally:
        del vr
    return _gather(unique, torch.from_numpy(frames), indices, path, "decord"), meta


# ----------------------------------------------------------------------------- PyAV
def _decode_pyav(path: str, index_fn: IndexFn, num_threads: int,
                 data: bytes | None = None) -> tuple[torch.Tensor, VideoMeta]:
    container, stream = open_video(path, num_threads, data)
    try:
        index = index_frames(path, container, stream)
        indices, unique = _indices(index_fn, index.meta)
        first, last = int(unique[0]), int(unique[-1])
        wanted = set(unique.tolist())
        got = _pyav_decode_range(path, container, stream, index.pts, first, last, wanted)
        if got is None:  # the seek landed after the first frame asked for: decode from the start
            got = _pyav_decode_range(path, container, stream, index.pts, 0, last, wanted) or {}
        missing = sorted(wanted - set(got))
        if missing:
            raise DecodeError(f"{path}: PyAV could not decode frames {missing[:8]} of {index.meta.num_frames}")
    finally:
        container.close()
    frames = torch.from_numpy(np.stack([got[i] for i in unique.tolist()]))  # (U, H, W, C)
    return _gather(unique, frames, indices, path, "PyAV"), index.meta


def _pyav_decode_range(path: str, container, stream, pts: np.ndarray, first: int, last: int,
                       wanted: set[int]) -> dict[int, np.ndarray] | None:
    """Frames in ``wanted`` (indices into ``pts``), upright RGB, decoded from the keyframe before
    ``first`` to ``last``; ``None`` when the first frame decoded after the seek is past ``first``."""
    import av

    got: dict[int, np.ndarray] = {}
    started = False
    try:
        for i, frame in decoded_frames(container, stream, pts, first):
            if not started:
                started = True
                if i > first:
                    return None
            if i in wanted:
                got[i] = to_rgb(frame)  # (H, W, C)
            if i >= last:
                break
    except av.FFmpegError as err:
        if not got:
            raise DecodeError(f"{path}: PyAV failed to decode: {err}") from None
    return got


# ----------------------------------------------------------------------------- entry point
def _backend_order(backend: str, fallback: bool, device: str) -> list[str]:
    """The backends to try, the chosen one first; NVDEC decoding has no fallback."""
    primary = resolve_backend(backend)
    on_cuda = device.startswith("cuda")
    if on_cuda and primary != "torchcodec":
        raise ValueError(f"decoding on {device} needs the torchcodec backend, not {primary!r}")
    return [primary] + ([b for b in AUTO_ORDER if b != primary] if fallback and not on_cuda else [])


def decode_video(
    path: str | os.PathLike,
    index_fn: IndexFn,
    backend: str = "auto",
    fallback: bool = True,
    num_threads: int = 0,
    seek_mode: str = "exact",
    device: str = "cpu",
    data: bytes | None = None,
) -> tuple[torch.Tensor, VideoMeta]:
    """Decode the frames ``index_fn(meta)`` selects.

    Args:
        path: video file.
        index_fn: called with the video's ``VideoMeta``; returns source frame indices (any
            order, repeats allowed; clipped to the video), counted in presentation order.
        backend: one of ``BACKENDS``; ``"auto"`` is the first of ``AUTO_ORDER`` that works here.
        fallback: when the backend fails on this file (or is not installed), try the other
            available ones before giving up; a success that way is logged once per file.
        num_threads: decoder threads (0: the decoder's default).
        seek_mode: torchcodec's ``"exact"`` (default; right on every file) or ``"approximate"``
            (trusts the header: constant-rate files only). Ignored by decord and PyAV.
        device: ``"cpu"`` or a CUDA device (torchcodec only: NVDEC decoding, frames returned on
            that device).
        data: the video's bytes, decoded from memory; ``path`` then only names the video in
            messages (a shard sample's ``url#key``).

    Returns:
        frames: uint8 tensor (T, H, W, C), RGB, upright, in the order of the indices.
        meta: frame count and rate of the video.

    Raises:
        DecodeError: the file is missing, empty, truncated or corrupt, or no backend can read
            it (the message names the file and each backend's reason).
        ValueError: an unknown backend or seek mode, or a CUDA device with another backend.
    """
    if seek_mode not in SEEK_MODES:
        raise ValueError(f"unknown seek mode {seek_mode!r}; expected one of {SEEK_MODES}")
    order = _backend_order(backend, fallback, str(device))
    primary, path = order[0], os.fspath(path)
    check_source(path, data)
    errors: list[str] = []
    for name in order:
        status = backend_status(name)
        if status:
            errors.append(status)
            continue
        try:
            result = _decode_with(name, path, index_fn, num_threads, seek_mode, str(device), data)
        except DecodeError as err:
            errors.append(f"{name}: {str(err).removeprefix(path + ': ')}")
            continue
        if name != primary:
            _warn_fallback(path, name, errors)
        return result
    raise DecodeError(f"{path}: cannot be decoded: " + "; ".join(errors))


def _decode_with(name: str, path: str, index_fn: IndexFn, num_threads: int, seek_mode: str,
                 device: str, data: bytes | None) -> tuple[torch.Tensor, VideoMeta]:
    if name == "torchcodec":
        return _decode_torchcodec(path, index_fn, num_threads, seek_mode, device, data)
    if name == "decord":
        return _decode_decord(path, index_fn, num_threads, data)
    return _decode_pyav(path, index_fn, num_threads, data)
