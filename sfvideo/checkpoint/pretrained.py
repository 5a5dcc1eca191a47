"""Sharing weights: a model directory in the Hub's layout, written and read back.

* :func:`save_pretrained` writes ``model.safetensors``, ``config.json`` and the ``README.md`` model
  card of a model (:mod:`~sfvideo.checkpoint.hub`, :mod:`~sfvideo.checkpoint.card`);
* :func:`export_pretrained` does it for the checkpoint a config names (``sfvideo export --format
  hub``), carrying over how it was trained;
* :func:`from_pretrained` is the way back: a ready model from a model directory, a ``.safetensors``
  file, ``hf-hub:ORG/NAME[@REVISION]`` or an sfvideo ``.pth``, with the same strict loading.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from ..models import build_model, get_variant
from ..utils.flops import count_gflops, count_params
from ..utils.io import atomic_write_text
from .card import CardFacts, model_card
from .errors import CheckpointError
from .hub import CARD_NAME, CONFIG_NAME, PICKLE_SUFFIXES, WEIGHTS_NAME, model_config, write_safetensors
from .io import safe_load
from .load import load_test_state
from .meta import checkpoint_meta, config_from_state
from .training import training_record


def save_pretrained(model: nn.Module, out_dir: str | os.PathLike, cfg, *, class_names: Sequence[str] | None = None,
                    training: Mapping[str, Any] | None = None, test_results: Mapping[str, Any] | None = None,
                    license: str = "mit", datasets: Sequence[str] = (), repo_id: str | None = None) -> dict[str, Path]:
    """Write ``model`` (the model of ``cfg``) as a model directory: ``model.safetensors``,
    ``config.json`` and the ``README.md`` model card, each file written atomically. Files of
    ``out_dir`` other than these three (a Hub clone's ``.git``, ``.gitattributes``) are left alone.

    Args:
        model: the model ``build_model(cfg)`` describes, with its weights.
        out_dir: the directory (created).
        cfg: the config of the model (``MODEL.*`` keys and input protocol).
        class_names: names of the ``MODEL.NUM_CLASSES`` classes, in label order.
        training: how it was trained (:func:`~sfvideo.checkpoint.training.training_record`).
        test_results: ``test_results.json`` of ``sfvideo test`` (the card's evaluation table).
        license, datasets, repo_id: the card's license, Hub dataset names and ``ORG/NAME``.

    Returns:
        ``{"weights", "config", "card"}`` paths.

    Raises:
        CheckpointError: ``out_dir`` is a file or holds a pickle, the class names do not match the
            class count, or the model is not the config's.
    """
    out = _model_dir(Path(out_dir))
    _check_model(model, cfg, class_names)
    meta = checkpoint_meta(cfg, class_names)
    config = model_config(meta, training)
    facts = CardFacts(name=repo_id.split("/")[-1] if repo_id else out.name, repo_id=repo_id, license=license,
                      datasets=tuple(datasets), training=training, test_results=test_results,
                      description=get_variant(cfg.MODEL.ARCH).description, params=count_params(model),
                      gflops_per_view=_gflops_per_view(model, meta["protocol"]))
    paths = {"weights": write_safetensors(model.state_dict(), out / WEIGHTS_NAME, meta),
             "config": atomic_write_text(out / CONFIG_NAME, json.dumps(config, indent=2) + "\n"),
             "card": atomic_write_text(out / CARD_NAME, model_card(config, facts))}
    return paths


def _model_dir(out: Path) -> Path:
    """``out`` created; a CheckpointError when it is a file or holds a pickled checkpoint."""
    if out.exists() and not out.is_dir():
        raise CheckpointError(f"{out} is a file; a model directory is written into a directory (give another --out)")
    out.mkdir(parents=True, exist_ok=True)
    pickles = sorted(p.name for p in out.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise CheckpointError(f"{out} holds {', '.join(pickles[:3])}: a model directory holds no pickle; move "
                              "those files away or write into another directory")
    return out


def _check_model(model: nn.Module, cfg, class_names: Sequence[str] | None) -> None:
    """The model's tensors are those ``build_model(cfg)`` makes, and the names fit the class count."""
    expected = {k: tuple(v.shape) for k, v in build_model(cfg).state_dict().items()}
    actual = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if actual != expected:
        differ = sorted(set(actual) ^ set(expected)) or [k for k in actual if actual[k] != expected[k]]
        raise CheckpointError(f"the model is not the one its config describes ({cfg.MODEL.ARCH}, "
                              f"{cfg.MODEL.NUM_CLASSES} classes): {', '.join(differ[:4])} differ")
    if class_names and len(class_names) != cfg.MODEL.NUM_CLASSES:
        raise CheckpointError(f"{len(class_names)} class names for a model of {cfg.MODEL.NUM_CLASSES} classes")


def _gflops_per_view(model: nn.Module, protocol: Mapping[str, Any]) -> float:
    """Multiply-add GFLOPs of one view of the protocol's shape."""
    param = next(model.parameters())
    t, s = protocol["num_frames"], protocol["crop_size"]
    clip = torch.zeros(1, 3, t, s, s, dtype=param.dtype, device=param.device)  # (B, C, T, H, W)
    return count_gflops(model, clip)


def export_pretrained(cfg, out_dir: str | os.PathLike, *, class_names: Sequence[str] | None = None,
                      test_results: Mapping[str, Any] | None = None, log=print, **card: Any) -> dict[str, Path]:
    """The weights ``TEST.CHECKPOINT`` names (its EMA with ``TEST.USE_EMA``) as a model directory
    (:func:`save_pretrained`; ``card``: its ``license``, ``datasets``, ``repo_id``). How they were
    trained comes from the checkpoint: a training checkpoint's config, or the record of a model
    directory being exported again."""
    source = str(cfg.TEST.CHECKPOINT)
    if not source:
        raise CheckpointError("no weights to export: give --checkpoint (or TEST.CHECKPOINT)")
    state = safe_load(source)
    model = build_model(cfg)
    load_test_state(model, state, source, cfg.TEST.USE_EMA, log=None)
    training = training_record(state) if isinstance(state, Mapping) else None
    paths = save_pretrained(model.eval(), out_dir, cfg, class_names=class_names, training=training,
                            test_results=test_results, **card)
    log(f"wrote {', '.join(str(p) for p in paths.values())}")
    return paths


def from_pretrained(checkpoint: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """A ready model (eval mode, on ``device``) from any checkpoint that records its model and input
    protocol: a model directory, a ``.safetensors`` file, ``hf-hub:ORG/NAME[@REVISION]``, or a
    ``.pth`` written by sfvideo. Loading is strict (every tensor from the checkpoint).

    The model's ``protocol`` is its input protocol and ``class_names`` the recorded names (or None).
    """
    state = safe_load(checkpoint)
    cfg, names = config_from_state(state, str(checkpoint))
    model = build_model(cfg)
    load_test_state(model, state, str(checkpoint), log=None)
    model.class_names = names
    return model.to(device).eval()
