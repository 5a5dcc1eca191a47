"""What weights expect, recorded beside them: the model, the input protocol and the class names.

Every checkpoint sfvideo writes holds a ``meta`` record (:func:`checkpoint_meta`), so it runs
without its config: :func:`config_from_checkpoint` rebuilds the config from it.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from ..config import CfgNode, load_config
from ..models.protocol import InputProtocol
from .errors import CheckpointError
from .io import safe_load

# Config keys that rebuild the model a checkpoint holds (the input protocol adds its own keys).
MODEL_KEYS = ("ARCH", "NUM_CLASSES", "TEMPORAL_REPLICATES", "PADDING_MODE")


def model_record(cfg) -> dict[str, Any]:
    """The ``MODEL.*`` values of ``cfg`` that fix the architecture (``MODEL_KEYS``)."""
    return {key: cfg.MODEL[key] for key in MODEL_KEYS}


def checkpoint_meta(cfg, class_names: list[str] | None = None) -> dict[str, Any]:
    """What a checkpoint records beside its weights so it runs without its config: the model
    (``MODEL.*`` keys that fix the architecture), the input protocol and the class names."""
    return {
        "model": model_record(cfg),
        "protocol": InputProtocol.from_config(cfg).to_dict(),
        "class_names": list(class_names) if class_names else None,
    }


def read_meta(obj: Any, source: str) -> dict[str, Any]:
    """``checkpoint_meta`` of a loaded checkpoint; rebuilt from the ``cfg`` that older sfvideo
    training checkpoints carry instead; a ``CheckpointError`` for weights that record neither."""
    if isinstance(obj, Mapping) and isinstance(obj.get("meta"), Mapping):
        return dict(obj["meta"])
    if isinstance(obj, Mapping) and isinstance(obj.get("cfg"), Mapping) and "MODEL" in obj["cfg"]:
        return checkpoint_meta(CfgNode(obj["cfg"]))
    raise CheckpointError(f"{source}: records no model or input protocol (an official or plain state dict?); "
                          "pass the config it belongs to with --cfg")


def config_from_checkpoint(path: str | os.PathLike, opts: list[str] | None = None):
    """The config a checkpoint was made with, as far as running it needs: its model, input
    protocol and ``TEST.CHECKPOINT``, then ``opts`` (``KEY VALUE`` overrides) on top.

    Returns:
        ``(cfg, class_names)``: a frozen config and the recorded class names (None if none).
    """
    return config_from_state(safe_load(path), str(path), opts)


def config_from_state(state: Any, source: str, opts: list[str] | None = None):
    """:func:`config_from_checkpoint` on a checkpoint already read with ``safe_load`` (``source``:
    its path or name, which becomes ``TEST.CHECKPOINT``)."""
    meta = read_meta(state, source)
    try:
        protocol = InputProtocol.from_dict(meta["protocol"], source=source)
        model_opts = [item for key, value in meta["model"].items() for item in (f"MODEL.{key}", str(value))]
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise CheckpointError(f"{source}: unreadable 'meta' record ({err})") from None
    cfg = load_config(None, model_opts + protocol.config_overrides() + ["TEST.CHECKPOINT", source]
                      + list(opts or []))
    return cfg, meta.get("class_names")
