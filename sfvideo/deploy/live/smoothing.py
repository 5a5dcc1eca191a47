"""From window probabilities to a steady label and action events.

``Ema``: an exponential moving average over windows with a time constant in seconds of stream
time, so the weight of the past does not depend on the stride or on windows skipped.

``EventTracker``: per class, a ``start`` event when its smoothed probability has stayed at or
above ``threshold`` for ``min_duration`` seconds, and an ``end`` event when it falls below
``threshold - hysteresis``. An event's time is when the action started (ended): the centre of
the first window of the run of windows whose own probability crossed, not the later moment the
average followed; a window's centre is the instant its prediction best describes.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np


class Ema:
    """``s += (1 - exp(-dt / tau)) * (p - s)``: ``tau`` seconds (0: no smoothing)."""

    def __init__(self, tau: float):
        if tau < 0:
            raise ValueError(f"smoothing time constant {tau} s must be >= 0")
        self.tau = tau
        self.value: np.ndarray | None = None
        self._t = 0.0

    def update(self, t: float, probs: np.ndarray) -> np.ndarray:
        """The average after the window ending at stream time ``t`` with ``probs`` (K,)."""
        if self.value is None or self.tau == 0:
            self.value = probs.astype(np.float64).copy()
        else:
            alpha = 1.0 - math.exp(-max(t - self._t, 0.0) / self.tau)
            self.value += alpha * (probs - self.value)
        self._t = t
        return self.value


class EventTracker:
    """Start/end events of classes from the smoothed probabilities, with hysteresis.

    The smoothed probability decides *whether* an action starts or ends; *when* is the first
    window of the run of raw (unsmoothed) windows that led there, where there is one, so the
    moving average's delay does not shift the event's time.

    Args:
        names: class names (the events' ``class``).
        threshold: a class is on once its smoothed probability reaches this...
        min_duration: ...and stays there this many seconds.
        hysteresis: it is off again below ``threshold - hysteresis``.
    """

    def __init__(self, names: Sequence[str], threshold: float = 0.5, min_duration: float = 1.0,
                 hysteresis: float = 0.1):
        if not 0 < threshold <= 1 or not 0 <= hysteresis < threshold or min_duration < 0:
            raise ValueError(f"threshold {threshold} must be in (0, 1], hysteresis {hysteresis} in [0, threshold), "
                             f"min duration {min_duration} s >= 0")
        self.names, self.threshold, self.min_duration, self.hysteresis = list(names), threshold, min_duration, hysteresis
        self.rising: dict[int, float] = {}  # class -> when it got to the threshold (not on yet)
        self.on: set[int] = set()
        self._raw_up = np.full(len(self.names), np.nan)  # when the current run of raw windows above began
        self._raw_down = np.full(len(self.names), np.nan)  # ... and below threshold - hysteresis

    def update(self, t: float, smoothed: np.ndarray, raw: np.ndarray | None = None) -> list[dict[str, Any]]:
        """Events after the window at stream time ``t`` (its centre) with ``smoothed`` (K,)
        probabilities (and its own, ``raw``)."""
        raw = smoothed if raw is None else raw
        low = self.threshold - self.hysteresis
        self._raw_up = np.where(raw >= self.threshold, np.where(np.isnan(self._raw_up), t, self._raw_up), np.nan)
        self._raw_down = np.where(raw < low, np.where(np.isnan(self._raw_down), t, self._raw_down), np.nan)
        events = []
        for k in sorted(self.on):
            if smoothed[k] < low:
                self.on.discard(k)
                events.append(_event("end", self.names[k], _first(self._raw_down[k], t), smoothed[k]))
        for k in np.flatnonzero(smoothed >= self.threshold).tolist():
            if k not in self.on:
                since = self.rising.setdefault(k, _first(self._raw_up[k], t))
                if t - since >= self.min_duration - 1e-9:
                    self.on.add(k)
                    del self.rising[k]
                    events.append(_event("start", self.names[k], since, smoothed[k]))
        self.rising = {k: s for k, s in self.rising.items() if smoothed[k] >= self.threshold}
        return events

    def finish(self, t: float, smoothed: np.ndarray | None) -> list[dict[str, Any]]:
        """``end`` events at ``t`` for the classes still on when the stream stops."""
        events = [_event("end", self.names[k], t, smoothed[k] if smoothed is not None else 0.0) for k in sorted(self.on)]
        self.on.clear()
        self.rising.clear()
        return events


def _first(since: float, t: float) -> float:
    return t if np.isnan(since) else min(float(since), t)


def _event(kind: str, name: str, t: float, prob: float) -> dict[str, Any]:
    return {"event": kind, "class": name, "stream_s": round(float(t), 3), "prob": round(float(prob), 4)}
