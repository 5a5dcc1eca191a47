"""The reader thread: decodes the source, turns the frames windows need into crop-sized uint8
images with their stream times (``FrameRing.push``), and hands every frame to ``--out-video``.

Whether a frame is a window's sample is known once the next frame's time is: it is the latest
frame at or before a sample time. So the reader holds one decoded frame back and prepares it
(colour conversion, resize, crop) only when some window samples it. On a live source (timestamps
from the stream, windows run as they complete) a frame that ends a window if the next one comes a
nominal frame interval later is released as soon as it is decoded, so that window runs a frame
sooner; a frame that then comes earlier than that interval does not replace it in that window.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

import numpy as np

from ...data.pyav_reader import to_rgb
from .outputs import RateMeter
from .source import LiveSource, SourceFrame
from .video_out import VideoOut
from .windows import FrameRing


class Reader(threading.Thread):
    """Reads ``source`` into ``ring`` until its end, ``duration`` seconds of stream, or ``stop``.

    Args:
        source: an opened ``LiveSource``.
        ring: where the frames windows need go.
        prep: (H, W, 3) uint8 -> what a clip holds per frame (``deploy.stream.frame_preparer``).
        stop: set to end the reading (the source is closed when it ends).
        video: every frame read goes there too (``--out-video``), or None.
        duration: seconds of stream to read (None: all).
        realtime: pace a file at its own rate (a live source paces itself).
    """

    def __init__(self, source: LiveSource, ring: FrameRing, prep: Callable[[np.ndarray], np.ndarray],
                 stop: threading.Event, video: VideoOut | None = None, duration: float | None = None,
                 realtime: bool = False):
        super().__init__(name="sfvideo-stream-reader", daemon=True)
        self.source, self.ring, self.prep, self.stop = source, ring, prep, stop
        self.video, self.duration, self.realtime = video, duration, realtime
        self.input_rate = RateMeter()
        self.frames_read = 0
        self.last_t = 0.0
        self.error: BaseException | None = None
        self.ended_by = "end"  # or "duration", "stop"
        self._held: tuple[SourceFrame, float, np.ndarray | None] | None = None  # (frame, wall, rgb)
        self._released_early = False  # the last frame was released before the next one came
        self._start_wall: float | None = None

    def run(self) -> None:
        try:
            self._read()
        except BaseException as err:  # handed to the caller, which reports it
            self.error = err
        finally:
            self.ring.close()

    def _read(self) -> None:
        for item in self.source.frames(self.stop):
            if self.stop.is_set() or (self.duration is not None and item.t >= self.duration):
                self.ended_by = "stop" if self.stop.is_set() else "duration"
                self._release(item.t)
                break
            if item.restarted:  # after an outage: what was held is the last frame before it
                self._released_early = False  # (one released early went with its nominal interval)
                self._release(self._held[0].t + 1.0 / self.source.fps if self._held else item.t)
                self.ring.restart_at(item.t)
            wall = self._pace(item.t)
            rgb = to_rgb(item.frame) if self.video is not None else None
            if self.video is not None:
                self.video.put(rgb)
            self._release(item.t)
            self._held = (item, wall, rgb)
            if self._may_release_early():
                next_t = item.t + 1.0 / self.source.fps  # where the next frame is due
                if self.ring.ends_window(item.t, next_t):
                    self._release(next_t)
                    self._released_early = True
            self.frames_read += 1
            self.last_t = item.t
            self.input_rate.tick(wall)
        else:
            if self._held is not None:  # the last frame stands for one frame interval
                self._release(self._held[0].t + 1.0 / self.source.fps)

    def _pace(self, t: float) -> float:
        """The frame's arrival time (``time.monotonic``); a file with ``realtime`` waits for it."""
        now = time.monotonic()
        if self._start_wall is None:
            self._start_wall = now
        if self.realtime and not self.source.live:
            self.stop.wait(max(0.0, self._start_wall + t - now))
            now = time.monotonic()
        return now

    def _may_release_early(self) -> bool:
        """A live ring (the newest complete window runs) and stream timestamps (not arrival times)."""
        return not self.ring.lossless and not self.source.arrival_times

    def _release(self, next_t: float) -> None:
        """Give the held frame to the ring if a window samples it, now that the next frame is at ``next_t``."""
        if self._held is None:
            if self._released_early:  # it went early: the windows that end before this frame are complete
                self._released_early = False
                self.ring.push(None, next_t)
            return
        item, wall, rgb = self._held
        self._held = None
        frame = None
        if self.ring.needs(item.t, next_t):
            frame = (item.t, wall, self.prep(rgb if rgb is not None else to_rgb(item.frame)))
        self.ring.push(frame, next_t)
