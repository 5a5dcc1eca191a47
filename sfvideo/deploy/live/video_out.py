"""``--out-video``: every frame read, re-encoded with the current label, its probability and the
token RoIs of the last window drawn on it.

The reader hands each frame (upright RGB) to ``VideoOut.put``; a writer thread draws and encodes
them (``data.encode.write_video``: H.264, written under a temporary name and renamed when the
stream ends, so the file is complete and playable). The queue between them is bounded: an
encoder slower than the source slows the reader down rather than holding frames.

RoIs are the model's last layer's (x0, y0, t0, x1, y1, t1) in [0, 1] of the centre crop the
model saw (the centre square of the frame); tokens whose time span covers the window's newest
frame are drawn solid, the others faint and dashed (``viz.rois.draw_frame``).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from pathlib import Path

import numpy as np

log = logging.getLogger("sfvideo.stream")


class Overlay:
    """What is drawn on the frames: the latest label, its probability, the RoIs (thread-safe)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._state: tuple[str, float, np.ndarray | None, int] | None = None

    def update(self, label: str, prob: float, rois: np.ndarray | None, num_frames: int) -> None:
        with self._lock:
            self._state = (label, prob, rois, num_frames)

    def draw(self, frame: np.ndarray) -> np.ndarray:
        """``frame`` (H, W, 3) uint8 with the overlay drawn (a new array)."""
        from PIL import Image, ImageDraw

        with self._lock:
            state = self._state
        if state is None:
            return frame
        label, prob, rois, num_frames = state
        image = Image.fromarray(frame) if rois is None else _draw_rois(frame, rois, num_frames)
        draw = ImageDraw.Draw(image)
        text = f"{label} {prob:.0%}"
        font = _font(max(12, frame.shape[0] // 24))
        x0, y0, x1, y1 = draw.textbbox((6, 4), text, font=font)
        draw.rectangle((x0 - 4, y0 - 3, x1 + 4, y1 + 3), fill=(0, 0, 0))
        draw.text((6, 4), text, fill=(255, 255, 255), font=font)
        return np.asarray(image)


def _font(size: int):
    from ...viz.rois import _font as viz_font

    return viz_font(size)


def crop_rois_to_frame(rois: np.ndarray, height: int, width: int) -> np.ndarray:
    """RoIs (N, 6) in [0, 1] of the centre square of an ``height`` x ``width`` frame -> in [0, 1]
    of the whole frame (the time coordinates unchanged)."""
    side = min(height, width)
    out = np.array(rois, dtype=np.float64)  # (N, 6)
    for axis, size in ((0, width), (1, height)):
        offset = (size - side) / 2
        out[:, [axis, axis + 3]] = (offset + out[:, [axis, axis + 3]] * side) / size
    return out


def _draw_rois(frame: np.ndarray, rois: np.ndarray, num_frames: int):
    from ...viz.rois import draw_frame

    full = crop_rois_to_frame(rois, frame.shape[0], frame.shape[1])
    return draw_frame(frame, num_frames - 1, num_frames, full, line_width=max(1, frame.shape[0] // 240))


class VideoOut:
    """A writer thread encoding the frames given to ``put`` into ``path`` at ``fps``."""

    def __init__(self, path: str | os.PathLike, fps: float, overlay: Overlay, max_queue: int = 32):
        self.path = Path(path)
        self.fps = fps
        self.overlay = overlay
        self.frames_written = 0
        self.error: BaseException | None = None
        self._queue: queue.Queue = queue.Queue(max_queue)
        self._size: tuple[int, int] | None = None
        self._ended = False  # the end of the queue was taken
        self._thread = threading.Thread(target=self._run, name="sfvideo-stream-video", daemon=True)
        self._thread.start()

    def put(self, frame: np.ndarray) -> None:
        """Queue one (H, W, 3) uint8 frame (waits while the queue is full)."""
        if self.error is not None:
            raise RuntimeError(f"{self.path}: writing the output video failed: {self.error}")
        self._queue.put(frame)

    def close(self) -> None:
        """Encode what is queued, finish the file; raises the writer's error if it failed."""
        self._queue.put(None)
        self._thread.join()
        if self.error is not None:
            raise RuntimeError(f"{self.path}: writing the output video failed: {self.error}")

    def _frames(self):
        from ..resize import resize

        while (frame := self._queue.get()) is not None:
            if self._size is None:
                self._size = (frame.shape[0] // 2 * 2, frame.shape[1] // 2 * 2)  # yuv420p: even sides
            h, w = self._size
            if frame.shape[0] - h not in (0, 1) or frame.shape[1] - w not in (0, 1):  # a new size after a reconnect
                frame = resize(frame, h, w)
            yield self.overlay.draw(np.ascontiguousarray(frame[:h, :w]))
            self.frames_written += 1
        self._ended = True

    def _run(self) -> None:
        from ...data.encode import write_video

        try:
            write_video(self.path, self._frames(), fps=self.fps, crf=23, options={"preset": "veryfast"})
        except ValueError as err:
            if self.frames_written:
                self.error = err
            else:
                log.warning("%s: not written: no frames were read", self.path)
        except BaseException as err:  # disk full, ...: the reader hears of it at its next frame
            self.error = err
        finally:
            while not self._ended:  # keep the reader from waiting on a full queue
                self._ended = self._queue.get() is None
