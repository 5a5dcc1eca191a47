"""Starting a DataLoader's worker processes, and saying what happened when one died.

* :func:`start_loader` - ``iter(loader)``, which forks the workers, retried with doubling waits
  when a fork fails for want of a resource (``EAGAIN``: a limit on processes and threads, or
  memory; ``ENOMEM``), then :class:`LoaderStartError` naming what ran out. A busy machine can
  refuse a fork for a moment and grant it a second later.
* :func:`worker_death` - PyTorch's ``RuntimeError`` about a dead worker (from its SIGCHLD handler
  or its queue check) told as which worker of how many died, and how (a :class:`LoaderWorkerError`),
  the surviving workers shut down.
* :func:`shield_worker` - in a worker: a SIGINT or SIGTERM sent to the whole process group (a
  terminal's Ctrl-C, systemd, a batch scheduler) is left to the main process, which stops at a
  step boundary and then shuts its workers down. Workers that shield themselves are forked with
  both signals blocked, so one arriving while a worker starts cannot kill it either.
* :func:`read_loader` - the batches of a loader started by :func:`start_loader`, a dead worker
  raised as :class:`LoaderWorkerError` (for loops outside the training steps: validation, test,
  features).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import threading
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
            with _stop_signals_blocked() if shielded(loader) else contextlib.nullcontext():
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


STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


def shielded(loader: Any) -> bool:
    """Whether ``loader``'s workers call :func:`shield_worker` (their ``worker_init_fn`` says so
    with a true ``shields_stop_signals`` attribute)."""
    init = getattr(loader, "worker_init_fn", None)
    return getattr(loader, "num_workers", 0) > 0 and bool(getattr(init, "shields_stop_signals", False))


@contextlib.contextmanager
def _stop_signals_blocked() -> Iterator[None]:
    """SIGINT and SIGTERM blocked in this thread while the body forks workers, which are born with
    them blocked: a signal that reaches a worker before its shield is up waits for the shield
    instead of killing it (PyTorch's worker handler dies of a SIGTERM it did not get from its
    parent). A signal for this process meanwhile is delivered when the body ends."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _how(exitcode: int | None) -> str:
    if exitcode is None:
        return "stopped"
    if exitcode < 0:
        name = signal.Signals(-exitcode).name if -exitcode in signal.valid_signals() else f"signal {-exitcode}"
        hint = " (often the kernel's out-of-memory killer: lower DATA.NUM_WORKERS or the batch size)" \
            if -exitcode == signal.SIGKILL else ""
        return f"was killed by {name}{hint}"
    return f"exited with status {exitcode}"


def worker_death(err: BaseException, iterator: Any, doing: str) -> LoaderWorkerError | None:
    """``err`` told as which of ``iterator``'s workers died, how, and ``doing`` (e.g. "during epoch
    2, step 1 of 20"), when it is PyTorch's error about a dead worker (``None`` for any other
    error). The surviving workers are shut down first: the error's traceback keeps the iterator
    alive, and a shutdown left to the garbage collector, long after, trips over the dead worker's
    closed pipes."""
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
    shutdown = getattr(iterator, "_shutdown_workers", None)
    if shutdown is not None:
        shutdown()
    told = f"DataLoader {'; '.join(dead)}" if dead else str(err).strip().splitlines()[0]
    return LoaderWorkerError(f"{told} {doing}")


def read_loader(loader: Iterable, doing: str) -> Iterator:
    """The batches of ``loader`` (started by :func:`start_loader`).

    Raises:
        LoaderWorkerError: a worker died; the message names it, how it died, and ``doing`` (e.g.
            "while scoring (validation)").
    """
    batches = start_loader(loader)
    try:
        yield from batches
    except RuntimeError as err:
        dead = worker_death(err, batches, doing)
        if dead is None:
            raise
        raise dead from None


def _parents_term_only(parent: int) -> None:
    """Wait for SIGTERMs (blocked in every thread of the worker); exit on the parent's, drop others."""
    while True:
        info = signal.sigwaitinfo({signal.SIGTERM})
        if info.si_pid == parent or os.getppid() != parent:
            os._exit(0)  # as PyTorch's own worker handler does for its parent's terminate()


def shield_worker(worker_id: int | None = None) -> None:
    """Called in a loader worker (from its ``worker_init_fn``): ignore SIGINT, and SIGTERM unless
    the parent sends it.

    A signal sent to the process group reaches the workers as well as the main process. Dying of
    it, a worker would end the run with a worker-death error before the main process had stopped
    at a step boundary and written its resumable checkpoint. The parent still ends a worker with
    SIGTERM (``DataLoader`` shutdown, interpreter exit), and a worker whose parent has died exits
    by PyTorch's own watchdog. SIGKILL cannot be caught: a worker killed by it is reported by
    :func:`worker_death`. A loader whose ``worker_init_fn`` calls this says so (``shields_stop_signals``)
    and :func:`start_loader` forks its workers with both signals blocked, so one that arrives
    before this runs waits for it rather than killing the worker.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # drops a SIGINT pending since the fork
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # threads started later inherit it
    threading.Thread(target=_parents_term_only, args=(os.getppid(),), name="sfvideo-sigterm",
                     daemon=True).start()


shield_worker.shields_stop_signals = True  # type: ignore[attr-defined]  # see shielded()
