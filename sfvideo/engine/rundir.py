"""The run directory (``OUTPUT_DIR``) of a training run: one writer, a fitting config, no gaps.

In the order :func:`sfvideo.engine.train.build_training` applies them, before anything is written:

* :func:`lock_run_dir` - rank 0 takes ``OUTPUT_DIR/train.lock`` (pid, host, start time); a second
  writer is refused, a lock left by a process that is gone (same host) is taken over;
* :func:`load_resume_checkpoint` - ``checkpoints/last.pth`` must be a training checkpoint whose
  model keys (``MODEL.*`` but the drop-path rate) equal this config's; otherwise
  :class:`RunDirError` names the run directory, the checkpoint and the differing keys, and every
  file is left as it was.

Then, writing:

* :func:`record_config` - ``config.yaml`` is the config of the latest start; a start with another
  config keeps the previous one as ``config.<UTC time>.yaml`` (the config history);
* :func:`repair_run_dir` - after a SIGKILL: temporaries of interrupted writes are removed (at every
  start), and on a resume what ``last.pth`` knows is restored (its epoch's ``metrics.jsonl`` line, its ``epoch_NNNN.pth`` and
  ``best.pth`` copies).
"""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path
from typing import Any

from sfvideo.checkpoint import CheckpointError, safe_load
from sfvideo.config import config_diff
from sfvideo.engine.train_state import LAST, copy_atomic
from sfvideo.utils.io import atomic_write_text, temporary_target
from sfvideo.utils.lock import DirLock, LockedError, abandoned_attempt

logger = logging.getLogger("sfvideo.engine")

LOCK = "train.lock"
METRICS = "metrics.jsonl"
CONFIG = "config.yaml"
TRAINING_KEYS = ("model", "optimizer", "scheduler", "epoch", "step")
# Model keys that may change between the starts of one run (regularisation, not the weights' shapes).
RESUMABLE_MODEL_KEYS = {"MODEL.DROP_PATH_RATE"}
# The files a run writes into OUTPUT_DIR and its checkpoints/ (what their temporaries were to become).
_RUN_FILES = re.compile(r"(last|best|epoch_\d+)\.pth|metrics\.jsonl|config(\.[\w-]+)?\.yaml")


class RunDirError(RuntimeError):
    """``OUTPUT_DIR`` cannot be used by this run (in use, or holding an incompatible run)."""


def lock_run_dir(out: Path) -> DirLock:
    """Take ``out/train.lock`` (see :class:`sfvideo.utils.lock.DirLock`); RunDirError when in use."""
    try:
        return DirLock(out / LOCK, what=f"run directory {out}").acquire(log=logger.warning)
    except LockedError as err:
        raise RunDirError(str(err)) from None


def _format_diff(diff: list[tuple[str, Any, Any]], limit: int = 12) -> str:
    shown = [f"{k} {o!r} -> {n!r}" for k, o, n in diff[:limit]]
    return "; ".join(shown) + (f"; ... ({len(diff) - limit} more)" if len(diff) > limit else "")


def load_resume_checkpoint(path: Path, cfg, out: Path) -> dict[str, Any]:
    """``last.pth`` loaded and checked against ``cfg`` before anything in ``out`` is written.

    Raises:
        CheckpointError: unreadable, or not a training checkpoint (e.g. a bare state dict).
        RunDirError: written by a run with other model keys (the message names them).
    """
    ckpt = safe_load(path)
    missing = [k for k in TRAINING_KEYS if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise CheckpointError(
            f"{path} is not a training checkpoint written by sfvideo train (it has no {', '.join(map(repr, missing))}"
            "; a bare state dict?), so run directory "
            f"{out} cannot be resumed from it. To start from these weights, set TRAIN.CHECKPOINT {path} with another "
            f"OUTPUT_DIR; to start this run over, move {path} away; or set TRAIN.AUTO_RESUME False")
    saved = ckpt.get("cfg")
    if isinstance(saved, dict):
        diff = [d for d in config_diff(saved.get("MODEL", {}), cfg.to_dict()["MODEL"])
                if f"MODEL.{d[0]}" not in RESUMABLE_MODEL_KEYS]
        if diff:
            raise RunDirError(
                f"run directory {out} holds a run whose checkpoint {path} does not fit this config; differing keys "
                f"(checkpoint -> this command): {_format_diff([(f'MODEL.{k}', o, n) for k, o, n in diff])}. Nothing "
                f"was written. Resume with the run's own config ({out / CONFIG}) or use another OUTPUT_DIR")
    return ckpt


def record_config(out: Path, text: str) -> str | None:
    """Write ``out/config.yaml``; a different previous one is kept as ``config.<UTC time>.yaml``.

    Returns:
        A note saying what changed and where the previous config went, or None when unchanged/new.
    """
    path = out / CONFIG
    note = None
    if path.is_file():
        old = path.read_text(encoding="utf-8", errors="replace")
        if old != text:
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            keep, n = out / f"config.{stamp}.yaml", 1
            while keep.exists():
                n += 1
                keep = out / f"config.{stamp}-{n}.yaml"
            atomic_write_text(keep, old)
            note = f"the config differs from the previous start's ({_changed_keys(old, text)}); " \
                   f"the previous {CONFIG} is kept as {keep.name}"
    atomic_write_text(path, text)
    return note


def _changed_keys(old: str, new: str) -> str:
    import yaml

    try:
        diff = config_diff(yaml.safe_load(old) or {}, yaml.safe_load(new) or {})
    except yaml.YAMLError:
        return "the previous file is not valid YAML"
    return _format_diff(diff) if diff else "formatting only"


# ------------------------------------------------------------------------------ after a SIGKILL
def clean_stale_temporaries(out: Path) -> list[Path]:
    """Remove what interrupted writes left in ``out`` and ``out/checkpoints``: temporaries of the
    run's own files (``sfvideo.utils.io.temporary_target``) and lock attempts of processes that
    are gone. Other files (a user's ``.notes.tmp``) are left alone.

    Only safe while holding the run directory's lock (no other writer can own them).
    """
    removed = []
    for folder in (out, out / "checkpoints"):
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            target = temporary_target(p)
            ours = target is not None and _RUN_FILES.fullmatch(target) is not None
            if p.is_file() and (ours or abandoned_attempt(p, LOCK)):
                p.unlink(missing_ok=True)
                removed.append(p)
    return removed


def append_metrics(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line per epoch; a line for the same epoch (a re-run after a crash) is replaced."""
    lines = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                if json.loads(line).get("epoch") == record["epoch"]:
                    continue
            except json.JSONDecodeError:
                continue
            lines.append(line)
    lines.append(json.dumps(record))
    atomic_write_text(path, "\n".join(lines) + "\n")


def _epochs_logged(path: Path) -> set[int]:
    epochs = set()
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                epochs.add(json.loads(line).get("epoch"))
            except (json.JSONDecodeError, AttributeError):
                continue
    return epochs


def repair_run_dir(out: Path, ckpt: dict[str, Any] | None) -> list[str]:
    """Undo what a SIGKILL left behind; returns one note per repair.

    The temporaries of interrupted writes go whatever the start (``clean_stale_temporaries``: a kill
    during the first checkpoint leaves no ``last.pth``). ``ckpt`` is the loaded
    ``out/checkpoints/last.pth`` when the run resumes: an end-of-epoch checkpoint carries its
    epoch's metrics line (``metrics``) and the copies it was to get (``copies``); a copy that is
    missing or older than ``last.pth`` (the kill came before its rename) is made again.
    """
    notes = [f"removed the temporary {p} of an interrupted write" for p in clean_stale_temporaries(out)]
    if ckpt is None:
        return notes
    last = out / "checkpoints" / LAST
    record = ckpt.get("metrics")
    if not ckpt.get("step_in_epoch") and isinstance(record, dict) and record.get("epoch") is not None \
            and record["epoch"] not in _epochs_logged(out / METRICS):
        append_metrics(out / METRICS, record)
        notes.append(f"restored the metrics line of epoch {record['epoch']} from {last}")
    for name in ckpt.get("copies") or []:
        copy = last.parent / name
        if not copy.is_file() or copy.stat().st_mtime_ns < last.stat().st_mtime_ns:
            copy_atomic(last, copy)
            notes.append(f"restored {copy} from {last}")
    return notes
