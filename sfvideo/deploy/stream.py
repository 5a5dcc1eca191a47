"""Read a video once, front to back, keeping only the frames some clip window still needs.

``plan_windows`` lays clip windows over the whole video; ``stream_clips`` decodes the file
front to back with PyAV (one pass, no whole-video buffer), turns each needed frame into a
crop-sized uint8 image as soon as it is decoded, and yields the windows' clips in order, a
batch at a time. Memory is a few windows of crop-sized frames whatever the video's length.

Files are read through ``sfvideo.data.pyav_reader``, as the data pipeline's PyAV backend reads
them: the same frame count and rate, the same frame at each index, upright (display rotation
applied). ``test_views`` gives the protocol's test views of a file: the data pipeline's own
``build_test_views`` where torch is importable, its torch-free twin ``stream_test_views`` where not.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np

from .preprocess import torch_available


@dataclass(frozen=True)
class Window:
    start_s: float
    end_s: float
    indices: tuple[int, ...]  # (T,) source frame indices


def plan_windows(num_frames: int, fps: float, window_s: float, stride_s: float, frames_per_clip: int) -> list[Window]:
    """Windows of ``window_s`` seconds every ``stride_s`` seconds over a video of ``num_frames``
    at ``fps``; each samples ``frames_per_clip`` frames at the centres of equal time steps
    (``window_s`` = the protocol's clip span gives its frame spacing). A last window is aligned
    with the end of the video when the regular ones leave a tail uncovered."""
    if window_s <= 0 or stride_s <= 0:
        raise ValueError(f"window ({window_s}) and stride ({stride_s}) must be positive seconds")
    duration = num_frames / fps
    count = max(1, math.floor((duration - window_s) / stride_s + 1e-6) + 1)
    starts = [i * stride_s for i in range(count)]
    if duration - (starts[-1] + window_s) > 1e-6:
        starts.append(duration - window_s)

    def indices(start: float) -> tuple[int, ...]:
        times = [start + (k + 0.5) * window_s / frames_per_clip for k in range(frames_per_clip)]
        return tuple(min(max(int(math.floor(t * fps)), 0), num_frames - 1) for t in times)

    return [Window(s, min(s + window_s, max(duration, window_s)), indices(s)) for s in starts]


def frame_preparer(crop_size: int, resize: str = "auto", num_crops: int = 1) -> Callable[[np.ndarray], np.ndarray]:
    """(H, W, 3) uint8 -> (3, S, S) uint8 (``num_crops`` 1) or (num_crops, 3, S, S): short side
    to ``crop_size``, then the centre crop (or the 3 crops along the long side of the test views).

    ``resize``: ``torch`` (the data pipeline's antialiased resize: identical pixels to
    ``build_test_views``), ``numpy`` (torch-free, within a few grey levels of it) or ``auto``
    (torch when importable).
    """
    from ..data.sampling import spatial_crop_boxes  # torch-free

    if resize == "auto":
        resize = "torch" if torch_available() else "numpy"
    if resize == "torch":
        import torch

        from ..data.transforms import resize_short_side

        def short_side(frame: np.ndarray) -> np.ndarray:  # (H, W, 3) -> (3, h, w)
            return resize_short_side(torch.from_numpy(frame).permute(2, 0, 1).unsqueeze(0), crop_size)[0].numpy()
    elif resize == "numpy":
        from .resize import resize_short_side_np as short_side
    else:
        raise ValueError(f"resize {resize!r}; expected auto, torch or numpy")

    def prep(frame: np.ndarray) -> np.ndarray:
        x = short_side(frame) if resize == "torch" else short_side(frame, crop_size)  # (3, h, w)
        crops = [x[:, b.top:b.top + b.height, b.left:b.left + b.width]
                 for b in spatial_crop_boxes(x.shape[-2], x.shape[-1], crop_size, num_crops)]
        return np.ascontiguousarray(crops[0] if num_crops == 1 else np.stack(crops))

    return prep


def test_views(path: str | os.PathLike, protocol: dict) -> np.ndarray:
    """The protocol's test views of a video, (num_clips * num_crops, 3, T, S, S) uint8, clip-major,
    decoded with PyAV: ``sfvideo.data.build_test_views`` where torch is importable (the pixels
    ``sfvideo test`` sees with ``DATA.DECODER pyav``), else ``stream_test_views`` (numpy resize)."""
    if not torch_available():
        return stream_test_views(path, protocol, resize="numpy")
    from ..config import load_config
    from ..data.build import build_test_views
    from ..models.protocol import InputProtocol

    cfg = load_config(None, InputProtocol.from_dict(protocol).config_overrides() + ["DATA.DECODER", "pyav"])
    return build_test_views(cfg, path).numpy()


def stream_test_views(path: str | os.PathLike, protocol: dict, resize: str = "numpy") -> np.ndarray:
    """``test_views`` without torch: the same indices (``sample_test_indices``), frames and crops
    (``frame_preparer``) in one streamed decode; with ``resize`` ``torch`` it equals ``test_views``."""
    from ..data.pyav_reader import probe
    from ..data.sampling import sample_test_indices

    num_frames, fps = probe(path)
    clips = sample_test_indices(num_frames, fps, num_frames=protocol["num_frames"],
                                sampling_rate=protocol["sampling_rate"], target_fps=float(protocol["target_fps"]),
                                num_clips=protocol["num_clips"], placement=protocol.get("clip_placement", "uniform"))
    windows = [Window(0.0, 0.0, tuple(int(i) for i in c)) for c in clips]
    prep = frame_preparer(protocol["crop_size"], resize, protocol.get("num_crops", 1))
    views = np.concatenate([c for _, c in stream_clips(path, windows, prep, batch=len(windows), ordered=False)])
    if views.ndim == 6:  # (N, crops, 3, T, S, S)
        views = views.reshape(-1, *views.shape[2:])
    return views


def _frames(path: str, container, stream, pts: np.ndarray) -> Iterator[tuple[int, object]]:
    """(frame index, PyAV frame) of the whole file in decode order; FFmpeg's errors as ``DecodeError``."""
    import av

    from ..data.pyav_reader import DecodeError, decoded_frames

    try:
        yield from decoded_frames(container, stream, pts)
    except av.FFmpegError as err:
        raise DecodeError(f"{path}: PyAV failed to decode: {err}") from None


def stream_clips(path: str | os.PathLike, windows: Sequence[Window], prep: Callable[[np.ndarray], np.ndarray],
                 batch: int = 8, on_frame: Callable[[int], None] | None = None,
                 ordered: bool = True) -> Iterator[tuple[list[Window], np.ndarray]]:
    """Yield (windows, clips uint8 (B, 3, T, S, S)) in window order, decoding ``path`` once.

    ``prep`` turns an upright (H, W, 3) uint8 frame into what a clip holds per frame. A needed
    index with no frame of its own (a frame the decoder could not produce) takes the nearest
    earlier decoded frame (the first frame before any). ``ordered`` False: the windows may overlap
    out of order (test views); all are yielded at the end."""
    from ..data.pyav_reader import DecodeError, index_frames, open_video, to_rgb

    needed = sorted({i for w in windows for i in w.indices})
    store: dict[int, np.ndarray] = {}
    pending, nxt, ready = list(windows), 0, []
    prev_frame, prev_img, last_idx = None, None, -1
    path = os.fspath(path)
    container, stream = open_video(path)
    try:
        for idx, frame in _frames(path, container, stream, index_frames(path, container, stream).pts):
            if on_frame is not None:
                on_frame(idx)
            img = None
            while nxt < len(needed) and needed[nxt] <= idx:
                if needed[nxt] == idx or prev_frame is None:
                    img = prep(to_rgb(frame)) if img is None else img
                    store[needed[nxt]] = img
                else:  # a needed index between two decoded frames: the earlier frame
                    prev_img = prep(to_rgb(prev_frame)) if prev_img is None else prev_img
                    store[needed[nxt]] = prev_img
                nxt += 1
            prev_frame, prev_img, last_idx = frame, img, idx
            while ordered and pending and max(pending[0].indices) <= last_idx:
                ready.append(pending.pop(0))
                if len(ready) == batch:
                    yield ready, _stack(ready, store)
                    ready = []
                    _forget(store, pending)
        if nxt < len(needed):  # past the last decoded frame: repeat it
            if prev_frame is None:
                raise DecodeError(f"{path}: no frames decoded")
            tail = prep(to_rgb(prev_frame)) if prev_img is None else prev_img
            store.update({j: tail for j in needed[nxt:]})
    finally:
        container.close()
    ready += pending
    for k in range(0, len(ready), batch):
        yield ready[k:k + batch], _stack(ready[k:k + batch], store)


def _stack(windows: Sequence[Window], store: dict[int, np.ndarray]) -> np.ndarray:
    clips = [np.stack([store[i] for i in w.indices], axis=-3) for w in windows]  # each ([crops,] 3, T, S, S)
    return np.stack(clips)  # (B, [crops,] 3, T, S, S)


def _forget(store: dict[int, np.ndarray], pending: Sequence[Window]) -> None:
    """Drop frames no pending window needs (all earlier than the next window's first frame)."""
    keep_from = min(pending[0].indices) if pending else math.inf
    for i in [i for i in store if i < keep_from]:
        del store[i]
