"""Memory of a process as Linux reports it in ``/proc/<pid>/status``: the one RSS reader of sfvideo."""

from __future__ import annotations

import resource


def proc_status_kb(field: str, pid: int | str = "self") -> int | None:
    """A memory field of ``/proc/<pid>/status`` (``VmRSS``, ``VmHWM``, ...) in KiB; ``None``
    where it cannot be read (no such process, not Linux)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def rss_mb(pid: int | str = "self") -> float | None:
    """Resident set size of a process in MiB; ``None`` where ``/proc`` cannot tell."""
    kb = proc_status_kb("VmRSS", pid)
    return None if kb is None else kb / 1024


def peak_rss_mb() -> float:
    """This process image's peak RSS in MiB. ``VmHWM`` rather than ``ru_maxrss``: the latter
    survives ``exec`` and so may report the parent's size in a freshly spawned child; it is the
    answer only where ``/proc`` is missing."""
    kb = proc_status_kb("VmHWM")
    return (kb if kb is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024
