"""Model directories in the Hugging Face Hub's layout, and ``hf-hub:ORG/NAME[@REVISION]`` names.

A model directory (written by :func:`sfvideo.checkpoint.save_pretrained`, ``sfvideo export --format
hub``) holds

* ``model.safetensors``: the weights under the keys of a ``.pth``'s model state dict (the official
  layout); the header's metadata also records the checkpoint meta, so the file runs on its own;
* ``config.json``: the architecture and model keys, the class count and names, the input protocol
  and the sfvideo version (:func:`model_config`);
* ``README.md``: the model card (:mod:`sfvideo.checkpoint.card`).

Nothing in it is a pickle, and reading it unpickles nothing: safetensors and JSON only.
``hf-hub:ORG/NAME[@REVISION]`` names such a directory on the Hugging Face Hub: huggingface_hub
brings it into its cache (``HF_HOME`` / ``HF_HUB_CACHE``) and, with ``HF_HUB_OFFLINE=1`` or
without a network, finds it there.
"""

from __future__ import annotations

import functools
import json
import os
import re
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor

from .. import __version__
from ..models.protocol import INPUT_CONTRACT
from .errors import CheckpointError

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
CARD_NAME = "README.md"
HUB_PREFIX = "hf-hub:"
LIBRARY_NAME = "sfvideo"
CONFIG_FORMAT = 1  # the version of config.json's layout
META_KEY = "sfvideo.meta"  # model.safetensors header: the checkpoint meta as JSON
# File suffixes of pickled checkpoints: never part of a model directory.
PICKLE_SUFFIXES = (".pth", ".pt", ".bin", ".pkl", ".pickle", ".ckpt")
_REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
_REVISION = re.compile(r"^[\w.-]+(/[\w.-]+)*$")  # a branch, tag or commit; "refs/pr/1" too


# ------------------------------------------------------------------------------------ names
def is_hub_name(spec: str | os.PathLike) -> bool:
    """True for ``hf-hub:ORG/NAME[@REVISION]``."""
    return str(spec).startswith(HUB_PREFIX)


def parse_hub_name(spec: str) -> tuple[str, str | None]:
    """``hf-hub:ORG/NAME[@REVISION]`` -> ``(ORG/NAME, REVISION or None)``.

    Raises:
        CheckpointError: not of that form.
    """
    repo_id, at, revision = spec[len(HUB_PREFIX):].partition("@")
    bad_revision = at and (not _REVISION.match(revision) or ".." in revision.split("/"))
    dots = any(part in (".", "..") for part in repo_id.split("/"))
    if not _REPO_ID.match(repo_id) or dots or bad_revision:
        raise CheckpointError(f"{spec!r}: a Hub model is named hf-hub:ORG/NAME or hf-hub:ORG/NAME@REVISION")
    return repo_id, revision or None


def resolve_checkpoint(spec: str | os.PathLike) -> Path:
    """The local path of a checkpoint: ``spec`` itself, or for ``hf-hub:`` the snapshot directory in
    huggingface_hub's cache (downloaded there first when the Hub can be reached)."""
    return hub_snapshot(str(spec)) if is_hub_name(spec) else Path(spec)


def is_model_files(path: Path) -> bool:
    """True for what :func:`read_model_files` reads: a directory or a ``.safetensors`` file."""
    return path.is_dir() or path.suffix == ".safetensors"


def weights_file(path: Path) -> Path:
    """The file that holds the weights of a checkpoint path (``model.safetensors`` of a directory)."""
    return path / WEIGHTS_NAME if path.is_dir() else path


# ------------------------------------------------------------------------------------ the Hub
@functools.lru_cache(maxsize=32)  # one look-up per name and process: predict resolves it twice
def hub_snapshot(spec: str) -> Path:
    """The snapshot directory of ``hf-hub:ORG/NAME[@REVISION]`` in huggingface_hub's cache.

    Only the model directory's files are fetched. The Hub is asked for the newest commit of the
    revision unless ``HF_HUB_OFFLINE`` is set; without a network the cached snapshot serves.

    Raises:
        CheckpointError: one line saying what is missing and how to get it (no cached copy and no
            Hub, an unknown repository or revision, huggingface_hub not installed).
    """
    repo_id, revision = parse_hub_name(spec)
    try:
        import huggingface_hub as hub
        from huggingface_hub import errors
    except ImportError:
        raise CheckpointError(f"{spec}: loading from the Hub needs huggingface_hub (pip install huggingface_hub)") from None
    # a cached snapshot that misses files: IncompleteSnapshotError where huggingface_hub has it
    not_cached = (errors.LocalEntryNotFoundError, errors.OfflineModeIsEnabled,
                  getattr(errors, "IncompleteSnapshotError", errors.LocalEntryNotFoundError))
    try:
        return Path(hub.snapshot_download(repo_id, revision=revision, allow_patterns=[WEIGHTS_NAME, CONFIG_NAME, CARD_NAME],
                                          library_name=LIBRARY_NAME, library_version=__version__))
    except not_cached:
        raise CheckpointError(_not_cached_message(spec, repo_id, revision)) from None
    except errors.RevisionNotFoundError:
        raise CheckpointError(f"{spec}: the Hub repository {repo_id} has no revision {revision!r}") from None
    except (errors.RepositoryNotFoundError, errors.GatedRepoError):
        raise CheckpointError(f"{spec}: no Hub repository {repo_id} that this account may read (a typo, or a "
                              "private or gated one: log in with `hf auth login`)") from None
    except errors.HfHubHTTPError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{spec}: the Hub answered {first}") from None


def _not_cached_message(spec: str, repo_id: str, revision: str | None) -> str:
    from huggingface_hub import constants

    why = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else "the Hub cannot be reached"
    rev = f" --revision {revision}" if revision else ""
    return (f"{spec}: not in the Hugging Face cache {constants.HF_HUB_CACHE} and {why}; on a machine with a "
            f"network run `hf download {repo_id}{rev}` with the same HF_HOME/HF_HUB_CACHE and copy that cache "
            f"here, or copy the model directory here and pass its path")


# ------------------------------------------------------------------------------------ reading
def read_model_files(path: Path, source: str | None = None) -> dict[str, Any]:
    """A model directory or ``.safetensors`` file as a checkpoint dict: ``model`` (the state dict),
    ``meta`` (model, protocol, class names: ``config.json``'s, else the safetensors header's) and,
    when ``config.json`` records one, ``training``. Nothing is unpickled.

    Raises:
        CheckpointError: naming ``source``: a directory without the files, an unreadable file.
    """
    source = source or str(path)
    weights = weights_file(path)
    if path.is_dir() and not weights.is_file():
        pickles = sorted(p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES)
        hint = f"; it holds {', '.join(pickles[:3])}: pass that file" if pickles else ""
        raise CheckpointError(f"{source}: a model directory holds {WEIGHTS_NAME} and {CONFIG_NAME} "
                              f"(sfvideo export --format hub), and this one has no {WEIGHTS_NAME}{hint}")
    tensors, header = read_safetensors(weights, source)
    config_path = weights.parent / CONFIG_NAME
    config = read_config(config_path, source) if config_path.is_file() else None
    if path.is_dir() and config is None:
        raise CheckpointError(f"{source}: the model directory has no {CONFIG_NAME} (its model and input protocol)")
    out: dict[str, Any] = {"model": tensors}
    if config is not None:
        out["meta"] = meta_from_config(config)
        if isinstance(config.get("training"), Mapping):
            out["training"] = dict(config["training"])
    elif META_KEY in header:
        out["meta"] = _json(header[META_KEY], f"{source}: the {META_KEY} header entry")
    return out


def read_safetensors(path: Path, source: str) -> tuple[dict[str, Tensor], dict[str, str]]:
    """The tensors of a safetensors file (on the CPU) and its header's metadata."""
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise CheckpointError(f"checkpoint {source} does not exist")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{source}: {path.name} is empty (0 bytes): an interrupted copy?")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            header = dict(f.metadata() or {})
            tensors = {key: f.get_tensor(key) for key in f.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{source}: {path.name} is no readable safetensors file ({err}); truncated?") from None
    return tensors, header


def read_config(path: Path, source: str) -> dict[str, Any]:
    """``config.json`` of a model directory, checked to be sfvideo's."""
    config = _json(path.read_text(encoding="utf-8", errors="replace"), f"{source}: {path.name}")
    if not isinstance(config, dict) or config.get("library_name") != LIBRARY_NAME:
        name = config.get("library_name") if isinstance(config, dict) else None
        raise CheckpointError(f"{source}: {path.name} is not an sfvideo model's (library_name {name!r}, not "
                              f"{LIBRARY_NAME!r})")
    missing = [key for key in ("model", "protocol") if not isinstance(config.get(key), Mapping)]
    if missing:
        raise CheckpointError(f"{source}: {path.name} has no {' or '.join(missing)} record")
    return config


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as err:
        raise CheckpointError(f"{what} is not valid JSON ({err})") from None


def meta_from_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The checkpoint meta (``sfvideo.checkpoint.checkpoint_meta``'s record) of a ``config.json``."""
    return {"model": dict(config["model"]), "protocol": dict(config["protocol"]),
            "class_names": config.get("class_names")}


# ------------------------------------------------------------------------------------ writing
def model_config(meta: Mapping[str, Any], training: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``config.json`` of a model directory from the checkpoint meta (and the training record)."""
    model = dict(meta["model"])
    config = {
        "library_name": LIBRARY_NAME,
        "sfvideo_version": __version__,
        "format_version": CONFIG_FORMAT,
        "architecture": model["ARCH"],
        "num_classes": model["NUM_CLASSES"],
        "class_names": meta.get("class_names"),
        "model": model,
        "protocol": dict(meta["protocol"]),
        "input": INPUT_CONTRACT,
    }
    if training:
        config["training"] = dict(training)
    return config


def write_safetensors(state_dict: Mapping[str, Tensor], path: Path, meta: Mapping[str, Any]) -> Path:
    """``state_dict`` (contiguous CPU copies, keys as they are) into a safetensors file written
    atomically, the checkpoint meta in its header."""
    from safetensors.torch import save_file

    from ..utils.io import atomic_path

    tensors = {key: value.detach().to("cpu").contiguous() for key, value in state_dict.items()
               if isinstance(value, torch.Tensor)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt", META_KEY: json.dumps(dict(meta))})
    return path
