"""Data pipeline: lists, decoding, sampling, transforms, datasets.

Entry points: ``build_dataset(cfg, split)`` (uint8 clips; ``normalize_clip`` turns them into
model inputs), ``collate_train`` (training items; test and validation items go through the
evaluation loop as lists), ``build_mixup(cfg)`` and ``check_failure_fraction`` (the training
loop's end-of-epoch check of unreadable videos). ``loading`` runs any dataset's decode and
augment stages with decoding ahead and heap trimming.

Names are imported on first use, so tools that only need ``sfvideo.data.lists`` or
``sfvideo.data.prepare`` start without loading torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "build_dataset": "build",
    "build_mixup": "build",
    "build_test_views": "build",
    "collate_train": "kinetics",
    "check_failure_fraction": "kinetics",
    "DataFailureError": "kinetics",
    "VideoDataset": "kinetics",
    "decode_video": "decoding",
    "normalize_clip": "transforms",
    "batch_to_device": "transforms",
    "DecodeError": "decoding",
    "ListFormatError": "lists",
    "VideoRecord": "lists",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
