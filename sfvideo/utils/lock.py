"""A lock file that keeps a second process from writing into a folder another one is writing into.

The file holds the owner's pid, host name and start time as JSON. It is created complete (a
temporary file hard-linked to its name, which fails when the name exists), so a reader never
sees half an owner. A lock whose owner is gone - same host, no process with that pid - is stale
(the owner was killed with SIGKILL or the machine rebooted) and is taken over. A lock held by
another host cannot be checked from here: it is refused, and the message says how to remove it.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any, Callable


class LockedError(RuntimeError):
    """The folder is locked by a live process (or one on another host)."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    except OSError:
        return False
    return True


def abandoned_attempt(path: Path, lock_name: str) -> bool:
    """True for ``.LOCK.PID.tmp``, the owner file :class:`DirLock` writes before linking it into
    place as ``lock_name``, when process PID is gone (killed between the two)."""
    prefix, suffix = f".{lock_name}.", ".tmp"
    pid = path.name[len(prefix):-len(suffix)]
    return path.name.startswith(prefix) and path.name.endswith(suffix) and pid.isdigit() and not _pid_alive(int(pid))


def _read_owner(path: Path) -> dict[str, Any] | None:
    try:
        owner = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return owner if isinstance(owner, dict) else {}


class DirLock:
    """``path`` as an exclusive lock file: :meth:`acquire`, then :meth:`release` (also on exit)."""

    def __init__(self, path: str | os.PathLike, what: str = "this folder"):
        self.path = Path(path)
        self.what = what
        self.held = False

    def _owner_text(self) -> str:
        return json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                           "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})

    def _try_create(self) -> bool:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(self._owner_text(), encoding="utf-8")
        try:
            os.link(tmp, self.path)  # atomic; fails when the lock exists
            return True
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)

    def acquire(self, log: Callable[[str], None] | None = None) -> "DirLock":
        """Take the lock, taking over a stale one (reported through ``log``).

        Raises:
            LockedError: a live process (or a process on another host) holds it.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            if self._try_create():
                self.held = True
                return self
            owner = _read_owner(self.path)
            if owner is None:  # released meanwhile
                continue
            pid, host = owner.get("pid"), owner.get("host")
            mine = host == socket.gethostname() and pid == os.getpid()
            stale = host == socket.gethostname() and isinstance(pid, int) and not _pid_alive(pid)
            if not (mine or stale or not owner):
                where = f"process {pid} on {host}" + (f" (since {owner['started']})" if owner.get("started") else "")
                raise LockedError(
                    f"{self.what} is in use by {where}: its lock file {self.path} exists. Two runs writing one "
                    f"folder mix their files; wait for that run, use another folder, or - if {where} is not "
                    f"running any more" + (" (it is on another host, so this process cannot check)"
                                           if host != socket.gethostname() else "") + f" - delete {self.path}")
            if log is not None and not mine:
                why = "unreadable" if not owner else f"process {pid} is gone"
                log(f"taking over the stale lock {self.path} ({why})")
            self.path.unlink(missing_ok=True)
        raise LockedError(f"could not take the lock {self.path} (other processes keep taking it)")

    def release(self) -> None:
        """Remove the lock file if this process still owns it."""
        if not self.held:
            return
        self.held = False
        owner = _read_owner(self.path)
        if owner and owner.get("pid") == os.getpid() and owner.get("host") == socket.gethostname():
            self.path.unlink(missing_ok=True)
