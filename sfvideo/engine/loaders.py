"""Starting a DataLoader's worker processes, and saying what happened when one died.

* :func:`start_loader` - ``iter(loader)``, which forks the workers, retried with doubling waits
  when a fork fails for want of a resource (``EAGAIN``: a limit on processes and threads, or
  memory; ``ENOMEM``), then :class:`LoaderStartError` naming what ran out. A busy machine can
  refuse a fork for a moment and grant it a second later.
* :func:`worker_death` - PyTorch's ``RuntimeError`` about a dead worker (from its SIGCHLD handler
  or its queue check) told as which worker of how many died, and how.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

logger = logging.getLogger("sfvideo.engine")

# Fork failures a moment later may not repeat: a process/thread limit or memory, reached for now.
RETRIED_ERRNOS = (errno.EAGAIN, errno.ENOMEM)


class LoaderStartError(RuntimeError):
    """The loader's worker processes could not be started (the message says what ran out)."""


class LoaderWorkerError(RuntimeError):
    """A loader worker died while the loader ran (the message names it and how it died)."""


def _memory_available_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        return None
    return None


def resources_left() -> str:
    """What limits new processes here: the user's process limit, the container's pids, memory."""
    said = []
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NPROC)
        said.append("no user limit on processes" if soft == resource.RLIM_INFINITY
                    else f"a user limit of {soft} processes and threads (ulimit -u)")
    except (ImportError, ValueError, OSError):
        pass
    try:
        limit = Path("/sys/fs/cgroup/pids.max").read_text().strip()
        if limit != "max":
            said.append(f"{Path('/sys/fs/cgroup/pids.current').read_text().strip()} of the container's {limit} "
                        "processes and threads in use")
    except OSError:
        pass
    gb = _memory_available_gb()
    said.append(f"{gb:.1f} GB of memory available" if gb is not None else "memory unknown")
    return ", ".join(said)


def _start_failure(loader: Any, err: OSError, tries: int, waited: float) -> str:
    workers = getattr(loader, "num_workers", "its")
    short = ("processes and threads (or memory) ran out" if err.errno == errno.EAGAIN else "memory ran out")
    return (f"could not start the data loader's {workers} worker processes: the fork failed {tries} tries over "
            f"{waited:.1f} s with errno {err.errno} ({os.strerror(err.errno)}): {short} ({resources_left()}); "
            "lower DATA.NUM_WORKERS, or stop other processes")


def start_loader(loader: Iterable, tries: int = 5, first_wait_s: float = 0.5,
                 sleep: Callable[[float], None] = time.sleep) -> Iterator:
    """``iter(loader)``, tried ``tries`` times with doubling waits while forking a worker fails for
    want of a resource (``RETRIED_ERRNOS``); each retry is logged.

    Raises:
        LoaderStartError: the last try failed too; the message says what ran out.
        OSError: any other failure to start, at once.
    """
    wait, waited, tries = first_wait_s, 0.0, max(tries, 1)
    for attempt in range(1, tries + 1):
        try:
            return iter(loader)
        except OSError as err:
            if err.errno not in RETRIED_ERRNOS:
                raise
            if attempt == tries:
                raise LoaderStartError(_start_failure(loader, err, tries, waited)) from err
            logger.warning("starting the data loader's worker processes failed (errno %d, %s); trying again in "
                           "%.1f s (%d of %d)", err.errno, os.strerror(err.errno), wait, attempt + 1, tries)
            sleep(wait)
            waited += wait
            wait *= 2


def _how(exitcode: int | None) -> str:
    if exitcode is None:
        return "stopped"
    if exitcode < 0:
        name = signal.Signals(-exitcode).name if -exitcode in signal.valid_signals() else f"signal {-exitcode}"
        hint = " (often the kernel's out-of-memory killer: lower DATA.NUM_WORKERS or TRAIN.BATCH_SIZE)" \
            if -exitcode == signal.SIGKILL else ""
        return f"was killed by {name}{hint}"
    return f"exited with status {exitcode}"


def worker_death(err: BaseException, iterator: Any) -> str | None:
    """``err`` told as which of ``iterator``'s workers died and how, when it is PyTorch's error about
    a dead worker (``None`` for any other error)."""
    if not isinstance(err, RuntimeError) or "DataLoader worker" not in str(err):
        return None
    iterator = getattr(iterator, "inner", iterator)  # through a wrapper such as train_state.ConsumedData's
    workers = list(getattr(iterator, "_workers", None) or [])
    dead = []
    for i, w in enumerate(workers):
        if w.is_alive():
            continue
        w.join(timeout=5.0)  # reaped at once: it has exited; the exit code says how
        dead.append(f"worker {i} of {len(workers)} (pid {w.pid}) {_how(w.exitcode)}")
    return f"DataLoader {'; '.join(dead)}" if dead else str(err).strip().splitlines()[0]
