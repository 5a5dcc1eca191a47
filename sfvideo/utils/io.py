"""Atomic file writes: whatever a run writes (checkpoints, results, logs) is complete or absent."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import IO, Iterator

_UMASK_LOCK = threading.Lock()
TEMP_SUFFIX = ".tmp"  # temporaries are ".NAME.RANDOM.tmp" (atomic_write) or ".NAME.RANDOM.tmp.SUFFIX" (atomic_path)
_TEMPORARY = re.compile(r"\.(.+)\.[^.]+\.tmp(\.[^.]+)?")  # group 1: the NAME the temporary was to become
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
def _replacing(path: Path, suffix: str) -> Iterator[tuple[int, str]]:
    """A temporary file ``.NAME.RANDOM{suffix}`` beside ``path`` (an open descriptor and its name),
    renamed over ``path`` when the block succeeds and removed on any exception (KeyboardInterrupt
    included), so ``path`` keeps its old content. It gets the permissions ordinary file creation
    gives (0666 less the umask), not mkstemp's 0600; a full disk is reported as
    ``OSError(ENOSPC, "no space left on device while writing PATH")``."""
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
    with _replacing(Path(path), TEMP_SUFFIX) as (fd, _):
        with os.fdopen(fd, mode, **({"newline": ""} if "b" not in mode else {})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """``atomic_write`` for writers that open a file by name (a video encoder, an exporter): a
    temporary path beside ``path``, fsynced and renamed over ``path`` when the block succeeds,
    removed on any exception. The temporary (``.NAME.RANDOM.tmp.SUFFIX``) keeps ``path``'s suffix,
    from which such writers pick their format.
    """
    path = Path(path)
    with _replacing(path, f"{TEMP_SUFFIX}{path.suffix}") as (fd, tmp):
        os.close(fd)
        yield Path(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def temporary_target(path: str | os.PathLike) -> str | None:
    """The name of the file a temporary of ``atomic_write`` (``.NAME.RANDOM.tmp``) or ``atomic_path``
    (``.NAME.RANDOM.tmp.SUFFIX``) was to become; ``None`` for any other name."""
    match = _TEMPORARY.fullmatch(Path(path).name)
    return match.group(1) if match else None


def is_temporary(path: str | os.PathLike) -> bool:
    """True for the temporary files of ``atomic_write`` and ``atomic_path`` (left behind only by a
    process killed while writing)."""
    return temporary_target(path) is not None


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to a temporary file in the same folder, fsync, and rename over ``path``."""
    with atomic_write(path, "w") as f:
        f.write(text)
    return Path(path)


def folder_write_problem(path: str | os.PathLike) -> str:
    """Why files cannot be written in the folder ``path`` ("" when they can): a file of that name,
    or a folder (``path`` or, when it does not exist yet, the nearest existing folder above it)
    that refuses new files. Creates nothing that stays."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        return "not a folder (a file of that name exists)"
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        return f"cannot be created: {existing} is a file"
    try:
        fd, probe = tempfile.mkstemp(prefix=".sfvideo-write-probe.", dir=existing)
    except OSError as err:
        where = "" if existing == path else f" (it would be created in {existing})"
        return f"cannot be written{where}: {err.strerror or err}"
    os.close(fd)
    os.unlink(probe)
    return ""
