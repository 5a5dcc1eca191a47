"""Keeping the memory of DataLoader workers flat.

Decoding and augmenting clips allocates and frees many large buffers (frames, ffmpeg's
per-thread buffers, float clips) from several threads. With glibc's default settings the
``mmap`` threshold rises after large frees, so later large buffers come from the heap arenas,
which fragment and are rarely returned to the OS: a worker's RSS then creeps up over thousands
of clips (measured: about +2x over 500 clips). Fixing the threshold (buffers above it are
mapped and unmapped) and capping the number of arenas keeps it flat.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
_applied_in: set[int] = set()


def bound_heap_growth(mmap_threshold: int = 1 << 20, arena_max: int = 2) -> bool:
    """Apply the glibc settings above to this process (once per process).

    Returns:
        True when applied (glibc found), False otherwise (other libc: nothing to do).
    """
    pid = os.getpid()
    if pid in _applied_in:
        return True
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) & bool(mallopt(_M_ARENA_MAX, arena_max))
    _applied_in.add(pid)
    return ok
