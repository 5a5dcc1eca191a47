"""Windows over a live stream in stream time, and the buffer that holds only the frames they need.

Window ``k`` covers ``[k * stride, k * stride + window)`` seconds of stream time and samples
``frames`` frames at the centres of equal time steps (``deploy.stream.plan_windows``' spacing).
A sample at time ``s`` takes the latest frame at or before ``s``, so a window is *complete* once
a frame later than its last sample has arrived.

``FrameRing`` is shared by the reader thread (``push``) and the inference loop (``take``). It
keeps prepared frames only from the first sample of the oldest window that can still run, so
it holds at most a window and a stride of frames, whatever the stream's length and however slow
inference is:

* live (``lossless`` False): ``take`` returns the newest complete window; the older complete
  ones are skipped and counted (never queued), as PySlowFast's ``NUM_CLIPS_SKIP -1``;
* lossless (a file read as fast as possible): ``take`` returns windows in order and ``push``
  waits while ``max_pending`` complete windows wait to be run.

A discontinuity (a reconnect after an outage) restarts the windows at the first one starting
after it: windows across the outage would repeat the last frame before it.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections import deque
from dataclasses import dataclass

import numpy as np

EPS = 1e-6  # seconds: timestamps closer than this are the same instant


@dataclass(frozen=True)
class WindowClock:
    """The windows of a stream: ``window_s`` long, every ``stride_s``, ``frames`` samples each."""

    window_s: float
    stride_s: float
    frames: int

    def __post_init__(self):
        if not (self.window_s > 0 and self.stride_s > 0 and self.frames > 0):
            raise ValueError(f"window ({self.window_s} s), stride ({self.stride_s} s) and frames ({self.frames}) "
                             "must be positive")

    def start(self, k: int) -> float:
        return k * self.stride_s

    def offsets(self) -> np.ndarray:
        """Sample times from the window's start, (T,) seconds."""
        return (np.arange(self.frames) + 0.5) * self.window_s / self.frames

    def samples(self, k: int) -> np.ndarray:
        return self.start(k) + self.offsets()  # (T,)

    def last_complete(self, newest_t: float) -> int:
        """The newest window complete once a frame at ``newest_t`` has arrived (-1: none)."""
        last = (self.frames - 0.5) * self.window_s / self.frames
        k = math.floor((newest_t - last - EPS) / self.stride_s)
        while k >= 0 and self.start(k) + last + EPS >= newest_t:
            k -= 1
        while self.start(k + 1) + last + EPS < newest_t:
            k += 1
        return max(k, -1)

    def first_starting_at(self, t: float) -> int:
        """The first window starting at or after ``t``."""
        k = max(0, math.floor(t / self.stride_s))
        while self.start(k) < t - EPS:
            k += 1
        while k > 0 and self.start(k - 1) >= t - EPS:
            k -= 1
        return k

    def has_sample_in(self, lo: float, hi: float, first: int = 0) -> bool:
        """Whether a sample of a window ``>= first`` lies in ``[lo, hi)``."""
        return any(self._offset_in(c, lo, hi, first) for c in self.offsets())

    def ends_in(self, lo: float, hi: float, first: int = 0) -> bool:
        """Whether the last sample of a window ``>= first`` lies in ``[lo, hi)``."""
        return self._offset_in(self.offsets()[-1], lo, hi, first)

    def _offset_in(self, c: float, lo: float, hi: float, first: int) -> bool:
        """Whether the sample ``c`` seconds into a window ``>= first`` lies in ``[lo, hi)`` for some window."""
        k = max(first, math.floor((lo - c) / self.stride_s))
        while self.start(k) + c < lo:
            k += 1
        return self.start(k) + c < hi


@dataclass
class Taken:
    """A window handed to inference."""

    index: int
    start_s: float
    end_s: float
    clip: np.ndarray  # (1, [crops,] 3, T, S, S) uint8
    last_wall: float  # time.monotonic() when the frame of the window's last sample was decoded
    skipped: int  # windows skipped (inference behind) right before this one


class FrameRing:
    """Prepared frames with their stream times, for the windows that can still run (thread-safe)."""

    def __init__(self, clock: WindowClock, lossless: bool = False, max_pending: int = 2):
        self.clock, self.lossless, self.max_pending = clock, lossless, max_pending
        self._cond = threading.Condition()
        self._times: deque[float] = deque()
        self._frames: deque[tuple[float, np.ndarray]] = deque()  # (decode wall time, image)
        self._next = 0  # the first window neither run nor skipped
        self._complete = -1  # the newest complete window
        self._gap = (0, 0)  # windows [lo, hi) span an outage: never run
        self._closed = False
        self._newest = 0.0
        self.skipped_behind = 0
        self.skipped_gaps = 0
        self.most_frames = 0  # the most frames held at once
        self.most_lag = 0.0  # the furthest a window taken ended before the newest frame, seconds of stream

    # ------------------------------------------------------------------ reader side
    def needs(self, t: float, next_t: float) -> bool:
        """Whether a frame at ``t``, followed by one at ``next_t``, is a sample of a window to come."""
        return self.clock.has_sample_in(t - EPS, next_t - EPS, self._next)

    def ends_window(self, t: float, next_t: float) -> bool:
        """Whether a frame at ``t``, followed by one at ``next_t``, is the last sample of a window to come."""
        return self.clock.ends_in(t - EPS, next_t - EPS, self._next)

    def push(self, frame: tuple[float, float, np.ndarray] | None, newest_t: float) -> None:
        """Add a needed ``(t, wall, image)`` (or none), note that a frame at ``newest_t`` has
        arrived, and (lossless) wait while ``max_pending`` complete windows wait to be run."""
        with self._cond:
            if frame is not None:
                t, wall, image = frame
                self._times.append(t)
                self._frames.append((wall, image))
            k = self.clock.last_complete(newest_t)
            if self._gap[0] <= k < self._gap[1]:
                k = self._gap[0] - 1
            self._complete = max(self._complete, k)
            self._newest = newest_t
            self.most_frames = max(self.most_frames, len(self._frames))
            self._prune()
            self._cond.notify_all()
            while self.lossless and not self._closed and self._complete - self._next + 1 > self.max_pending:
                self._cond.wait()

    def restart_at(self, t: float) -> None:
        """A discontinuity: the next frame is at ``t``; windows starting before it and not yet
        complete are never run."""
        with self._cond:
            self._gap = (self._complete + 1, self.clock.first_starting_at(t))
            self._prune()

    def close(self) -> None:
        """No more frames: ``take`` returns what is complete, then ``None``; ``push`` stops waiting."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # ------------------------------------------------------------------ inference side
    def take(self, timeout: float) -> Taken | None:
        """The next window to run (live: the newest complete one), waiting up to ``timeout``
        seconds; ``None`` when none is complete by then."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._runnable() <= self._complete or self._closed, timeout):
                return None
            first = self._runnable()
            if first > self._complete:
                return None
            k = first if self.lossless else self._complete
            skipped = k - first
            self.skipped_behind += skipped
            self._next = k + 1
            taken = self._window(k, skipped)
            self.most_lag = max(self.most_lag, self._newest - taken.end_s)
            self._prune()
            self._cond.notify_all()
            return taken

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def newest_complete(self) -> int:
        """The newest complete window (-1: none yet)."""
        return self._complete

    def __len__(self) -> int:
        return len(self._frames)

    # ------------------------------------------------------------------ internals (lock held)
    def _runnable(self) -> int:
        """The first window that may still run (past the outage windows, counted once)."""
        if self._gap[0] <= self._next < self._gap[1]:
            self.skipped_gaps += self._gap[1] - self._next
            self._next = self._gap[1]
        return self._next

    def _oldest_needed(self) -> int:
        first = self._runnable()
        return first if self.lossless or self._complete < first else self._complete

    def _prune(self) -> None:
        """Drop the frames before the latest one at or before the oldest needed window's first sample."""
        first_sample = self.clock.samples(self._oldest_needed())[0]
        keep = bisect.bisect_right(self._times, first_sample + EPS) - 1
        for _ in range(max(keep, 0)):
            self._times.popleft()
            self._frames.popleft()

    def _window(self, k: int, skipped: int) -> Taken:
        times = list(self._times)
        picks = [max(bisect.bisect_right(times, s + EPS) - 1, 0) for s in self.clock.samples(k)]
        clip = np.stack([self._frames[i][1] for i in picks], axis=-3)  # ([crops,] 3, T, S, S)
        start = self.clock.start(k)
        return Taken(k, start, start + self.clock.window_s, clip[None], self._frames[picks[-1]][0], skipped)
