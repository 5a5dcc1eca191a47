"""Official checkpoint layouts: where the weights sit in a loaded file and what their keys are called.

The official SparseFormer code has two key layouts: the library's (``sparseformer.modeling``,
``sparseformer.media``; sfvideo's own) and the v1 ``imagenet/`` training code's, renamed here.
Training checkpoints hold the weights under a container key (``model``, ``state_dict``,
``module``), EMA weights under another (``model_ema``, ``ema``, ``state_dict_ema``), and DDP
adds ``module.`` prefixes.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any, Mapping

from torch import Tensor

from .errors import CheckpointError

# v1 (``imagenet/`` training code) names -> library names. Applied in order, first match wins.
_V1_RENAMES: list[tuple[str, str]] = [
    (r"^token_roi\.weight$", "initial_roi.weight"),
    (r"^token_embedding\.weight$", "initial_embedding.weight"),
    (r"\.adaptive_mixing\.tuo_proj\.", ".adaptive_mixing.out_proj."),
    (r"\.ln_attn\.", ".norm1."),
    (r"\.ffn\.0\.", ".norm2."),
    (r"\.ffn\.1\.", ".mlp.fc1."),
    (r"\.ffn\.3\.", ".mlp.fc2."),
    (r"\.attn\.in_proj_(weight|bias)$", r".attn.qkv.\1"),
    (r"\.attn\.out_proj\.", ".attn.proj."),
    (r"^head\.norm\.", "norm."),
    (r"^head\.classifier\.", "proj."),
]
_CONTAINER_KEYS = ("state_dict", "model", "module")
_EMA_KEYS = ("model_ema", "ema", "state_dict_ema")


def is_v1_layout(state_dict: Mapping[str, Any]) -> bool:
    """True for the v1 ``imagenet/`` code's key names (``token_roi``, ``ffn``, ``head.classifier``)."""
    return any(k == "token_roi.weight" or ".ffn." in k or k.startswith("head.classifier") for k in state_dict)


def convert_v1_to_library(state_dict: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
    """Rename v1 keys to the library layout. Returns the new dict and the renamed keys as "old -> new"."""
    out, renamed = OrderedDict(), []
    for key, value in state_dict.items():
        new = key
        for pattern, repl in _V1_RENAMES:
            new, hits = re.subn(pattern, repl, key)
            if hits:
                break
        if new != key:
            renamed.append(f"{key} -> {new}")
        out[new] = value
    return out, renamed


def extract_state_dict(obj: Any, use_ema: bool = False, source: str = "checkpoint") -> dict[str, Tensor]:
    """The model weights inside a loaded checkpoint.

    Accepts a plain state dict, or a training dict holding one under ``model`` / ``state_dict`` /
    ``module`` (``model_ema`` / ``ema`` with ``use_ema``), and strips ``module.`` prefixes.
    """
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{source}: expected a dict of tensors or a training checkpoint, got {type(obj).__name__}")
    if use_ema:
        key = next((k for k in _EMA_KEYS if isinstance(obj.get(k), Mapping)), None)
        if key is None:
            raise CheckpointError(f"{source}: --use-ema asked for EMA weights, but the checkpoint has none "
                                  f"(keys: {sorted(obj)[:10]})")
        obj = obj[key]
    while not any(isinstance(v, Tensor) for v in obj.values()):
        key = next((k for k in _CONTAINER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if key is None:
            raise CheckpointError(f"{source}: no model weights found (top-level keys: {sorted(obj)[:10]})")
        obj = obj[key]
    out = OrderedDict()
    for key, value in obj.items():
        if not isinstance(value, Tensor):
            continue
        while key.startswith("module."):
            key = key[len("module."):]
        out[key] = value
    return out
