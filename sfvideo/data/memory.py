"""Keeping the memory of the processes that decode flat, without paying for it in page faults.

Decoding and augmenting clips allocates and frees many large buffers (frames, ffmpeg's
per-thread buffers, uint8/int16/float clips) from several threads. Two glibc behaviours get in
the way:

* with the default settings the ``mmap`` threshold rises after large frees, later large buffers
  come from heap arenas that fragment and are rarely returned to the OS, and a worker's RSS
  creeps up over thousands of clips (measured: about +2x over 500 clips);
* with a low fixed threshold (this module's first fix) every buffer above it is mapped fresh and
  every one of its pages faults on first touch: measured 15,000 faults and ~2x the augmentation
  time per 32-frame clip.

So: a fixed high ``mmap`` threshold and no automatic trimming (buffers are reused from the heap
without faults), at most two arenas, and an explicit ``malloc_trim`` every ``TRIM_EVERY`` items,
which returns the free pages and bounds the RSS (``tools/benchmark_loader.py --long`` checks it).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
TRIM_EVERY = 128  # items between malloc_trim calls
_applied_in: dict[int, ctypes.CDLL | None] = {}
_items = {"count": 0}


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


def release_free_memory(every: int | None = None) -> bool:
    """Count one item; every ``every`` items (default ``TRIM_EVERY``) return the heap's free pages to the OS.

    Returns:
        True when this call trimmed.
    """
    libc = _applied_in.get(os.getpid())
    every = TRIM_EVERY if every is None else every
    _items["count"] += 1
    if libc is None or _items["count"] % every:
        return False
    libc.malloc_trim(0)
    return True
