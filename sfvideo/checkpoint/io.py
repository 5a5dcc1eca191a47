"""Reading and writing checkpoint files: the one place that knows the file format.

Loading never executes pickled code. Files are read with a restricted unpickler that accepts
the globals PyTorch's own ``weights_only`` loader accepts, plus inert stand-ins for known
configuration classes that official training checkpoints carry (a yacs ``CfgNode``), so their
tensors load without yacs installed. Any other global (``os.system``, ``builtins.eval`` ...)
fails with :class:`CheckpointError` before anything runs. A model directory, a ``.safetensors``
file or an ``hf-hub:ORG/NAME[@REVISION]`` name is read by :mod:`~sfvideo.checkpoint.hub`, which
unpickles nothing. Saving goes through a temporary file and a rename, so a crash never leaves a
half-written checkpoint.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from ..utils.io import atomic_write
from .errors import CheckpointError
from .hub import is_model_files, read_model_files, resolve_checkpoint


class InertConfig(dict):
    """Stand-in for a pickled configuration object (yacs ``CfgNode``, ``argparse.Namespace``).

    Holds the pickled items and attributes as plain data; it has no behaviour to trigger.
    """

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.__dict__.update(state)

    def __reduce__(self):  # re-pickles as a plain dict
        return (dict, (dict(self),))


# Known configuration classes found in official checkpoints, mapped to the inert stand-in
# (names only: nothing here imports yacs or argparse).
_STAND_INS = {
    "yacs.config.CfgNode": InertConfig,
    "argparse.Namespace": InertConfig,
}


def _allowed_globals() -> dict[str, Any]:
    try:  # PyTorch's own allowlist for weights_only loading (tensors, storages, dtypes, ...)
        from torch._weights_only_unpickler import _get_allowed_globals

        allowed = dict(_get_allowed_globals())
    except Exception:  # pragma: no cover - older/newer torch: a minimal list
        import torch._utils as tu

        allowed = {
            "torch._utils._rebuild_tensor_v2": tu._rebuild_tensor_v2,
            "torch._utils._rebuild_parameter": tu._rebuild_parameter,
            "collections.OrderedDict": OrderedDict,
            "torch.Size": torch.Size,
        }
        for name in ("FloatStorage", "DoubleStorage", "HalfStorage", "BFloat16Storage", "LongStorage",
                     "IntStorage", "ShortStorage", "CharStorage", "ByteStorage", "BoolStorage"):
            allowed[f"torch.{name}"] = getattr(torch, name)
    allowed.update({"builtins.set": set, "builtins.frozenset": frozenset, "__builtin__.set": set,
                    "builtins.slice": slice, "builtins.complex": complex})
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    _allowed: dict[str, Any] | None = None

    def find_class(self, module: str, name: str) -> Any:
        if _RestrictedUnpickler._allowed is None:
            _RestrictedUnpickler._allowed = _allowed_globals()
        full = f"{module}.{name}"
        if full in _RestrictedUnpickler._allowed:
            return _RestrictedUnpickler._allowed[full]
        if full in _STAND_INS:
            return _STAND_INS[full]
        raise pickle.UnpicklingError(
            f"refusing to load the global {full!r}: checkpoints may hold tensors and plain data only"
        )


class _RestrictedPickleModule:
    """A ``pickle_module`` for ``torch.load`` whose unpickler refuses unknown globals."""

    Unpickler = _RestrictedUnpickler
    UnpicklingError = pickle.UnpicklingError

    @staticmethod
    def load(file, **kwargs):
        return _RestrictedUnpickler(file, **kwargs).load()


# torch.save stores its records uncompressed, so they add up to about the file's size; far more
# (deflated records) is no file torch wrote, and inflating it would cost that much memory.
_MAX_INFLATION, _INFLATION_SLACK_BYTES = 16, 2 ** 20


def check_archive_sizes(path: Path) -> None:
    """Refuse a zip checkpoint whose directory says its records inflate to far more than the file
    holds, from the directory alone: nothing is inflated. (The legacy format has no directory,
    and an archive whose directory cannot be read is left for ``torch.load`` to name.)"""
    try:
        with zipfile.ZipFile(path) as archive:
            inflated = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return
    size = path.stat().st_size
    if inflated > _MAX_INFLATION * size + _INFLATION_SLACK_BYTES:
        raise CheckpointError(f"checkpoint {path} ({size / 2**20:.1f} MB) holds records that inflate to "
                              f"{inflated / 2**20:.1f} MB: compressed records, which torch.save never writes "
                              "(a crafted file?); refused before reading them")


def safe_load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """Load a checkpoint without executing pickled code: a PyTorch file, or a model directory, a
    ``.safetensors`` file or ``hf-hub:ORG/NAME[@REVISION]`` as ``{"model", "meta"[, "training"]}``
    (:func:`~sfvideo.checkpoint.hub.read_model_files`, no pickle involved).

    Raises:
        CheckpointError: missing, truncated or corrupt file, a pickle that asks for code, or an
            archive whose records claim far more than the file holds (``check_archive_sizes``); for
            a Hub name, one line on what to download where.
    """
    local = resolve_checkpoint(path)
    if is_model_files(local):
        return read_model_files(local, str(path))
    path = local
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes): an interrupted write?")
    check_archive_sizes(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        pass  # holds something beyond plain tensors (e.g. a yacs config): try the stand-ins below
    except Exception as err:
        raise CheckpointError(f"checkpoint {path} is unreadable ({type(err).__name__}: {err}); "
                              "is it truncated or not a PyTorch file?") from None
    try:
        return torch.load(path, map_location=map_location, weights_only=False,
                          pickle_module=_RestrictedPickleModule)
    except pickle.UnpicklingError as err:
        raise CheckpointError(f"checkpoint {path} was not loaded: {err}") from None
    except Exception as err:
        raise CheckpointError(f"checkpoint {path} is unreadable ({type(err).__name__}: {err})") from None


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename over ``path``.

    A crash at any point leaves either the old complete file or the new complete file.
    """
    with atomic_write(path, "wb") as f:
        torch.save(obj, f)
    return Path(path)
