"""Keeping the memory of the processes that decode flat, without paying for it in page faults.

Decoding and augmenting clips allocates and frees many large buffers (frames, ffmpeg's
per-thread buffers, uint8/int16/float clips) from several threads. With glibc's default settings
the ``mmap`` threshold rises after large frees, later large buffers come from heap arenas that
fragment and are rarely returned to the OS, and a process's RSS creeps up over thousands of
clips; with a low fixed threshold every large buffer is mapped fresh instead, and every page of
it faults on first touch.

The policy (``bound_heap_growth``, once per process, and ``release_free_memory``, once per
sample; ``loading.run_stages`` calls both):

* a fixed high ``mmap`` threshold and no automatic trimming, so buffers in steady use are reused
  from the heap without faults, and at most two arenas;
* an explicit ``malloc_trim`` when the RSS, checked every ``TRIM_CHECK_EVERY`` samples, has grown
  more than ``TRIM_SLACK_MB`` past its level: free pages go back to the OS only when the heap has
  really grown, so the RSS stays within that slack over any run (``tools/benchmark_loader.py
  --long`` checks it), and the buffers in steady use are not faulted in again after every trim;
* the level is the RSS one check *after* a trim, once those buffers are back in use: the RSS
  right after a trim is below them, and refilling them alone would pass the slack and trim again.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

from ..utils.proc import rss_mb as _rss_mb

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
TRIM_CHECK_EVERY = 16  # items between RSS checks
TRIM_SLACK_MB = 32  # growth past the post-trim RSS that triggers a trim
_applied_in: dict[int, ctypes.CDLL | None] = {}
_state: dict[int, dict[str, float]] = {}  # per process (a forked worker inherits its parent's)
_NEVER_CHECKED, _AFTER_TRIM = -1.0, -2.0  # "floor" values that are not a level yet


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 - both must exist (glibc)
        return libc
    except (OSError, AttributeError):
        return None


def bound_heap_growth(mmap_threshold: int = 64 << 20, trim_threshold: int = 1 << 30, arena_max: int = 2) -> bool:
    """Apply the glibc settings above to this process (once per process).

    Returns:
        True when applied (glibc found), False otherwise (other libc: nothing to do).
    """
    pid = os.getpid()
    if pid not in _applied_in:
        libc = _libc()
        if libc is not None:
            ok = (libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold) and libc.mallopt(_M_TRIM_THRESHOLD, trim_threshold)
                  and libc.mallopt(_M_ARENA_MAX, arena_max))
            libc = libc if ok else None
        _applied_in[pid] = libc
    return _applied_in[pid] is not None


def release_free_memory(every: int | None = None, slack_mb: float | None = None) -> bool:
    """Count one item; every ``every`` items (default ``TRIM_CHECK_EVERY``) return the heap's free
    pages to the OS if the RSS grew more than ``slack_mb`` (default ``TRIM_SLACK_MB``) past its
    level. The first check always trims; the level is the RSS at the check after a trim, once the
    buffers in steady use have faulted back in (the RSS right after the trim is below them, so
    refilling them would trim, and fault them in, again and again).

    Returns:
        True when this call trimmed.
    """
    pid = os.getpid()
    libc = _applied_in.get(pid)
    every = TRIM_CHECK_EVERY if every is None else every
    slack = TRIM_SLACK_MB if slack_mb is None else slack_mb
    state = _state.setdefault(pid, {"count": 0, "floor": _NEVER_CHECKED})
    state["count"] += 1
    if libc is None or state["count"] % every:
        return False
    rss = _rss_mb()
    if rss is not None:  # unknown RSS: trim at every check
        if state["floor"] == _AFTER_TRIM:  # the buffers in steady use are back in: their level
            state["floor"] = rss
            return False
        if state["floor"] >= 0 and rss <= state["floor"] + slack:
            return False
    libc.malloc_trim(0)
    state["floor"] = _AFTER_TRIM
    return True
