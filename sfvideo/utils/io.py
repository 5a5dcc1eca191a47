"""Atomic file writes: whatever a run writes (checkpoints, results, logs) is complete or absent."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
import threading
from pathlib import Path
from typing import IO, Iterator

_UMASK_LOCK = threading.Lock()
# What torch.save reports when its zip writer could not write everything (a full disk).
_TORCH_SHORT_WRITE = "unexpected pos"


def current_umask() -> int:
    """The process umask (reading it means setting it, so under a lock)."""
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def is_disk_full(err: BaseException) -> bool:
    """True for a write that failed for lack of space (ENOSPC/EDQUOT, or torch's short-write check)."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        seen = seen.__cause__ or seen.__context__
    return _TORCH_SHORT_WRITE in str(err)


@contextlib.contextmanager
def _replacing(path: str | os.PathLike, suffix: str) -> Iterator[tuple[int, str]]:
    """``(fd, name)`` of a new temporary file beside ``path``, renamed over ``path`` when the block
    succeeds and removed when it fails (a full disk reported as such)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        yield fd, tmp
        os.replace(tmp, path)
    except BaseException as err:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(err, Exception) and is_disk_full(err):
            raise OSError(errno.ENOSPC, f"no space left on device while writing {path} "
                                        f"(the previous {path.name}, if any, is kept)") from err
        raise


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success fsync it and rename it over ``path``.

    On any exception (KeyboardInterrupt included) the temporary file is removed and ``path``
    keeps its old content, so readers only ever see a complete file. The file gets the
    permissions ordinary file creation gives (0666 less the umask), not mkstemp's 0600. A full
    disk is reported as ``OSError(ENOSPC, "no space left on device while writing PATH")``.
    """
    with _replacing(path, ".tmp") as (fd, _):
        with os.fdopen(fd, mode, **({"newline": ""} if "b" not in mode else {})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """``atomic_write`` for a writer that takes a file name rather than a file object (an
    exporter, an encoder): a temporary name beside ``path`` ending in ``suffix`` (an extension
    the writer may need), fsynced and renamed over ``path`` when the block succeeds, removed
    when it fails."""
    with _replacing(path, suffix) as (fd, tmp):
        os.close(fd)
        yield Path(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to a temporary file in the same folder, fsync, and rename over ``path``."""
    with atomic_write(path, "w") as f:
        f.write(text)
    return Path(path)
