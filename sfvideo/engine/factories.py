"""The builders the engine uses unless its caller passes its own (tests, custom models and data).

``train`` and ``run_test`` take ``model_fn(cfg)``, ``dataset_fn(cfg, split)`` and (training)
``mixup_fn(cfg)``; these are the defaults, the package's own config-driven builders.
"""

from __future__ import annotations

from typing import Callable

from torch import nn
from torch.utils.data import Dataset

from sfvideo.data import build_dataset, build_mixup
from sfvideo.models import build_model


def default_model_fn(cfg) -> nn.Module:
    """``sfvideo.models.build_model(cfg)``: the model ``MODEL.*`` describes, freshly initialised."""
    return build_model(cfg)


def default_dataset_fn(cfg, split: str) -> Dataset:
    """``sfvideo.data.build_dataset(cfg, split)``: the dataset of ``split`` (train, val, test)."""
    return build_dataset(cfg, split)


def default_mixup_fn(cfg) -> Callable:
    """``sfvideo.data.build_mixup(cfg)``: mixup/cutmix and label smoothing as ``AUG.*`` says."""
    return build_mixup(cfg)
