"""Logging set-up shared by training, testing and the demo: console (through tqdm) plus a log file.

Every module logs to a child of the ``sfvideo`` logger (``logging.getLogger("sfvideo.engine")``
...); :func:`setup_logging` attaches the handlers once per run.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


class _TqdmHandler(logging.StreamHandler):
    """Console handler that prints through ``tqdm.write`` so progress bars are not torn."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=sys.stdout)
        except Exception:  # pragma: no cover - never let logging kill training
            self.handleError(record)


def _remove_own_handlers(root: logging.Logger) -> None:
    """Drop the handlers a previous :func:`setup_logging` call attached (re-runs in one process)."""
    for handler in list(root.handlers):
        if getattr(handler, "_sfvideo", False):
            root.removeHandler(handler)
            handler.close()


def setup_logging(output_dir: str | os.PathLike | None, rank: int = 0, filename: str = "train.log") -> logging.Logger:
    """Attach the console and file handlers to the ``sfvideo`` logger.

    Args:
        output_dir: folder of the log file (created); None for the console only.
        rank: process rank; rank 0 logs INFO to the console and writes the file, others WARNING only.
        filename: the log file's name inside ``output_dir``.

    Returns:
        The ``sfvideo.engine`` logger.
    """
    root = logging.getLogger("sfvideo")
    _remove_own_handlers(root)
    root.setLevel(logging.INFO)
    root.propagate = False
    fmt = logging.Formatter(LOG_FORMAT, datefmt=DATE_FORMAT)
    console = _TqdmHandler(sys.stdout)
    console.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    console.setFormatter(fmt)
    console._sfvideo = True
    root.addHandler(console)
    if output_dir is not None and rank == 0:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(Path(output_dir) / filename)
        file_handler.setFormatter(fmt)
        file_handler._sfvideo = True
        root.addHandler(file_handler)
    return logging.getLogger("sfvideo.engine")
