"""Files shipped with the package: the configs (``configs/``) and class lists (``data_lists/``).

In a source checkout they are the repository's folders; a non-editable install ships them
inside the package as ``sfvideo.configs`` and ``sfvideo.data_lists`` (``setup.cfg`` maps the
folders there). Both are found the same way, so nothing depends on where sfvideo runs from.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent


def resource_dir(name: str) -> Path:
    """The folder of shipped resources ``name`` (``"configs"`` or ``"data_lists"``)."""
    if (_REPO / "setup.cfg").is_file() and (_REPO / name).is_dir():  # this package runs from a source checkout
        return _REPO / name
    spec = importlib.util.find_spec(f"sfvideo.{name}")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return _REPO / name


def configs_dir() -> Path:
    return resource_dir("configs")


def find_resource(relpath: str | Path) -> Path | None:
    """A shipped file named as in the repository (``data_lists/kinetics400_classes.txt``), or None."""
    parts = Path(relpath).parts
    if len(parts) < 2 or parts[0] not in ("configs", "data_lists"):
        return None
    path = resource_dir(parts[0]).joinpath(*parts[1:])
    return path if path.is_file() else None
