"""Checkpoints: safe loading, official layouts, image->video inflation, atomic saving.

Loading never executes pickled code. Files are read with a restricted unpickler that accepts
the globals PyTorch's own ``weights_only`` loader accepts, plus inert stand-ins for known
configuration classes that official training checkpoints carry (a yacs ``CfgNode``), so their
tensors load without yacs installed. Any other global (``os.system``, ``builtins.eval`` ...)
fails with :class:`CheckpointError` before anything runs.
"""

from __future__ import annotations

import os
import pickle
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor

from .utils.io import atomic_write


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: unreadable, truncated, unsafe, or of the wrong shape."""


# ---------------------------------------------------------------------------------- safe loading
class InertConfig(dict):
    """Stand-in for a pickled configuration object (yacs ``CfgNode``, ``argparse.Namespace``).

    Holds the pickled items and attributes as plain data; it has no behaviour to trigger.
    """

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.__dict__.update(state)

    def __reduce__(self):  # re-pickles as a plain dict
        return (dict, (dict(self),))


# Known configuration classes found in official checkpoints, mapped to the inert stand-in.
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


def safe_load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """Load a checkpoint file without executing pickled code.

    Raises:
        CheckpointError: missing, truncated or corrupt file, or a pickle that asks for code.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes): an interrupted write?")
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


# ---------------------------------------------------------------------------------- atomic saving
def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename over ``path``.

    A crash at any point leaves either the old complete file or the new complete file.
    """
    with atomic_write(path, "wb") as f:
        torch.save(obj, f)
    return Path(path)


# ---------------------------------------------------------------------------------- official layouts
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


# ---------------------------------------------------------------------------------- inflation
def inflate_conv_weight(weight: Tensor) -> Tensor:
    """(C, 3, 7, 7) -> (C, 3, 1, 7, 7): the (1, 7, 7) kernel applied frame by frame."""
    return weight.unsqueeze(2)


def inflate_roi_weight(rois: Tensor, replicates: int) -> Tensor:
    """(N, 4) image RoIs -> (R*N, 6): replicate k covers the k-th of R time slabs."""
    from .models.ops import inflate_rois

    return inflate_rois(rois, replicates)


def inflate_token_embedding(embedding: Tensor, replicates: int) -> Tensor:
    """(N, D) -> (R*N, D), replicate-major like the RoIs."""
    return embedding.repeat(replicates, 1)


def inflate_point_rows(tensor: Tensor) -> Tensor:
    """Per-point (x, y) rows -> (x, y, t) rows with t = 0: (P*2[, D]) -> (P*3[, D])."""
    pairs = tensor.reshape(-1, 2, *tensor.shape[1:])  # (P, 2[, D])
    zeros = torch.zeros_like(pairs[:, :1])
    return torch.cat([pairs, zeros], dim=1).reshape(-1, *tensor.shape[1:])


def inflate_roi_adjust_weight(weight: Tensor) -> Tensor:
    """(4, D) rows (dx, dy, dw, dh) -> (6, D) rows (dx, dy, 0, dw, dh, 0): time is kept as is."""
    shift, scale = weight[:2], weight[2:]
    zero = torch.zeros_like(weight[:1])
    return torch.cat([shift, zero, scale, zero], dim=0)


@dataclass
class LoadReport:
    """What happened to every key when weights were adapted into a model."""

    source: str = ""
    layout: str = ""
    loaded: list[str] = field(default_factory=list)        # copied as they were
    converted: list[str] = field(default_factory=list)     # renamed from the v1 layout ("old -> new")
    inflated: list[str] = field(default_factory=list)      # 2-D -> 3-D
    initialised: list[str] = field(default_factory=list)   # kept the model's fresh initialisation
    dropped: list[str] = field(default_factory=list)       # in the checkpoint, not in the model
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, list) else v for k, v in self.__dict__.items()}

    def format(self, max_items: int = 12) -> str:
        def block(title: str, items: list[str]) -> list[str]:
            lines = [f"  {title}: {len(items)}"]
            lines += [f"    {it}" for it in items[:max_items]]
            if len(items) > max_items:
                lines.append(f"    ... and {len(items) - max_items} more")
            return lines

        lines = [f"weights from {self.source} ({self.layout})"]
        lines += block("loaded as-is", self.loaded)
        lines += block("converted from v1 names", self.converted)
        lines += block("inflated 2-D -> 3-D", self.inflated)
        lines += block("newly initialised", self.initialised)
        lines += block("dropped (not in the model)", self.dropped)
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


_INFLATERS = [
    (r"^feat_extractor\.conv1\.weight$", lambda t, r: inflate_conv_weight(t)),
    (r"^initial_roi\.weight$", inflate_roi_weight),
    (r"^initial_embedding\.weight$", inflate_token_embedding),
    (r"\.roi_offset_bias$", lambda t, r: inflate_point_rows(t)),
    (r"\.roi_offset_module\.1\.weight$", lambda t, r: inflate_point_rows(t)),
    (r"\.roi_adjust_module\.1\.weight$", lambda t, r: inflate_roi_adjust_weight(t)),
]


def adapt_state_dict(
    state_dict: Mapping[str, Tensor], model: torch.nn.Module, source: str = "checkpoint", *,
    allow_new_classifier: bool = False, allow_partial: bool = False,
) -> tuple[dict[str, Tensor], LoadReport]:
    """Adapt official image/video weights (v1 or library layout) to ``model``.

    Image weights going into a video model are inflated. Every tensor of the model must come
    from the checkpoint, with two exceptions: a classifier with another class count keeps the
    model's fresh initialisation when ``allow_new_classifier`` (fine-tuning on a new label set),
    and anything goes with ``allow_partial`` (a deliberate partial load); both are reported.

    Returns:
        The state dict to load (a subset of the model's keys) and the report.

    Raises:
        CheckpointError: naming ``source``: tensors that claim more memory than they hold or than
            the model needs, shape mismatches, a classifier mismatch (unless allowed), and model
            tensors the checkpoint does not provide (with the match count and the first of them).
    """
    target = model.state_dict()
    check_claimed_sizes(state_dict, target, source)
    report = LoadReport(source=source)
    if is_v1_layout(state_dict):
        state_dict, report.converted = convert_v1_to_library(state_dict)
        report.layout = "official v1 imagenet/ layout"
    else:
        report.layout = "official library layout"
    replicates = getattr(model, "temporal_replicates", 1)
    ckpt_is_image = state_dict.get("initial_roi.weight", torch.empty(0, 6)).shape[-1] == 4
    to_video = getattr(model, "geometry_dims", 2) == 3 and ckpt_is_image
    report.layout += ", image weights inflated into video" if to_video else ""
    renamed_to = {line.split(" -> ")[1] for line in report.converted}
    out, mismatched = OrderedDict(), []
    for key, value in state_dict.items():
        if key not in target:
            report.dropped.append(key)
            continue
        want = target[key].shape
        if to_video and value.shape != want:
            for pattern, fn in _INFLATERS:
                if re.search(pattern, key):
                    value = fn(value, replicates)
                    report.inflated.append(f"{key} {tuple(state_dict[key].shape)} -> {tuple(value.shape)}")
                    break
        if value.shape != want:
            if key.startswith("proj."):
                note = (f"classifier re-initialised: checkpoint has {state_dict[key].shape[0]} "
                        f"classes, the model {want[0]}")
                if note not in report.notes:  # one line for the weight and the bias together
                    report.notes.append(note)
                continue
            mismatched.append(f"{key}: checkpoint {tuple(value.shape)} vs model {tuple(want)}")
            continue
        out[key] = value.to(target[key].dtype)
        if key not in renamed_to and not any(line.startswith(key + " ") for line in report.inflated):
            report.loaded.append(key)
    if mismatched:
        raise CheckpointError(f"{source}: {len(mismatched)} tensors do not fit the model "
                              f"(a different architecture?):\n  " + "\n  ".join(mismatched[:20]))
    report.initialised = [k for k in target if k not in out]
    if not allow_partial:
        _check_complete(report, len(target), allow_new_classifier)
    return out, report


def _check_complete(report: LoadReport, num_tensors: int, allow_new_classifier: bool) -> None:
    """Refuse a load that would leave model tensors at their fresh initialisation unexplained."""
    new_head = [k for k in report.initialised if k.startswith("proj.")]
    rest = [k for k in report.initialised if not k.startswith("proj.")]
    matched = num_tensors - len(report.initialised)
    if rest:
        dropped = f"; checkpoint tensors the model lacks: {', '.join(report.dropped[:4])}" if report.dropped else ""
        more = ", ..." if len(rest) > 6 else ""
        raise CheckpointError(
            f"{report.source}: {matched} of {num_tensors} model tensors matched; {len(rest)} model tensors would "
            f"keep their fresh initialisation: {', '.join(rest[:6])}{more}{dropped} (weights of another model? "
            "to load a partial checkpoint on purpose: allow_partial=True, TRAIN.ALLOW_PARTIAL_CHECKPOINT True)")
    if new_head and not allow_new_classifier:
        note = next((n for n in report.notes if n.startswith("classifier")), "classifier shape differs")
        raise CheckpointError(f"{report.source}: {note.replace('classifier re-initialised: ', '')}; "
                              "testing it would score a random classifier (set MODEL.NUM_CLASSES to the "
                              "checkpoint's class count)")


# A state dict may hold somewhat more than the model (an image classifier over 1000 classes,
# a few dropped keys); far more is not weights for this model, and reading it costs memory.
_MAX_SIZE_RATIO, _SIZE_SLACK_BYTES = 4, 2 ** 20


def check_claimed_sizes(state_dict: Mapping[str, Tensor], target: Mapping[str, Tensor], source: str) -> None:
    """Refuse tensors whose size exceeds the bytes stored for them (an expanded or crafted tensor:
    a tiny file that would become gigabytes once copied), and state dicts that claim far more
    memory than the model's own tensors."""
    claimed = 0
    for key, value in state_dict.items():
        nbytes = value.numel() * value.element_size()
        stored = value.untyped_storage().nbytes() - value.storage_offset() * value.element_size()
        if nbytes > stored:
            raise CheckpointError(f"{source}: tensor {key} claims {nbytes / 2**20:.1f} MB but stores {stored} bytes "
                                  "(an expanded or crafted tensor); refused")
        claimed += nbytes
    needed = sum(t.numel() * t.element_size() for t in target.values())
    if claimed > _MAX_SIZE_RATIO * needed + _SIZE_SLACK_BYTES:
        raise CheckpointError(f"{source}: its weights claim {claimed / 2**20:.1f} MB, far more than the model's "
                              f"{needed / 2**20:.1f} MB (weights of another, larger model?); refused")


def load_pretrained(model: torch.nn.Module, path: str | os.PathLike, use_ema: bool = False,
                    log=print, *, allow_new_classifier: bool = False, allow_partial: bool = False) -> LoadReport:
    """Load an image checkpoint (inflating it) or a video checkpoint into ``model``.

    Every tensor of the model is loaded, or the load fails (see :func:`adapt_state_dict` for
    ``allow_new_classifier`` and ``allow_partial``); nothing is changed in ``model`` on failure.
    The report is passed to ``log`` (``None`` to stay quiet).
    """
    return load_weights(model, safe_load(path), str(path), use_ema, log,
                        allow_new_classifier=allow_new_classifier, allow_partial=allow_partial)


def load_weights(model: torch.nn.Module, obj: Any, source: str, use_ema: bool = False, log=print,
                 **flags: bool) -> LoadReport:
    """:func:`load_pretrained` on a checkpoint already read with :func:`safe_load`."""
    state_dict = extract_state_dict(obj, use_ema=use_ema, source=source)
    adapted, report = adapt_state_dict(state_dict, model, source=source, **flags)
    missing, unexpected = model.load_state_dict(adapted, strict=False)
    assert set(missing) == set(report.initialised) and not unexpected, (missing, unexpected)
    if log is not None:
        log(report.format())
    return report


def is_training_checkpoint(obj: Any) -> bool:
    """True for a checkpoint written by sfvideo's training loop (it holds ``model`` and ``optimizer``)."""
    return isinstance(obj, Mapping) and "model" in obj and "optimizer" in obj


def load_test_weights(model: torch.nn.Module, path: str | os.PathLike, use_ema: bool = False, log=print) -> None:
    """Weights to evaluate or run: one of sfvideo's training checkpoints (its ``model`` or ``ema``),
    or any other checkpoint (official image weights are inflated). Strict: every tensor of the
    model comes from the checkpoint, classifier included (:func:`adapt_state_dict`).

    Raises:
        CheckpointError: no path, an unreadable file, ``use_ema`` without EMA weights, or weights
            that do not fill the model (another architecture or class count), naming the file.
    """
    if not path:
        raise CheckpointError("no weights to test: set TEST.CHECKPOINT PATH")
    state = safe_load(path)
    if not is_training_checkpoint(state):
        load_weights(model, state, str(path), use_ema=use_ema, log=log)
        return
    if use_ema and not state.get("ema"):
        raise CheckpointError(f"TEST.USE_EMA is set but {path} holds no EMA weights")
    load_weights(model, {"model": state["ema"] if use_ema else state["model"]}, str(path), log=None)
    log(f"loaded {'EMA ' if use_ema else ''}weights from {path} (epoch {state.get('epoch')})")


def inflate_checkpoint(image_ckpt: str | os.PathLike, model: torch.nn.Module, out: str | os.PathLike,
                       use_ema: bool = False, log=print, cfg=None, allow_partial: bool = False) -> LoadReport:
    """Inflate an image checkpoint into ``model`` and save ``{"model": ..., "report": ...}`` atomically
    (with ``cfg``, also the ``meta`` record of :func:`checkpoint_meta`)."""
    # The ImageNet classifier never fits a video label set: the video classifier starts fresh.
    report = load_pretrained(model, image_ckpt, use_ema=use_ema, log=log, allow_new_classifier=True,
                             allow_partial=allow_partial)
    state = {"model": model.state_dict(), "inflated_from": str(image_ckpt), "report": report.to_dict()}
    if cfg is not None:
        state["meta"] = checkpoint_meta(cfg)
    atomic_save(state, out)
    return report


# ------------------------------------------------------------------------ what weights expect
# Config keys that rebuild the model a checkpoint holds (the input protocol adds its own keys).
_MODEL_KEYS = ("ARCH", "NUM_CLASSES", "TEMPORAL_REPLICATES", "PADDING_MODE")


def checkpoint_meta(cfg, class_names: list[str] | None = None) -> dict[str, Any]:
    """What a checkpoint records beside its weights so it runs without its config: the model
    (``MODEL.*`` keys that fix the architecture), the input protocol and the class names."""
    from .models.protocol import InputProtocol

    return {
        "model": {key: cfg.MODEL[key] for key in _MODEL_KEYS},
        "protocol": InputProtocol.from_config(cfg).to_dict(),
        "class_names": list(class_names) if class_names else None,
    }


def read_meta(obj: Any, source: str) -> dict[str, Any]:
    """``checkpoint_meta`` of a loaded checkpoint; rebuilt from the ``cfg`` that earlier sfvideo
    training checkpoints carry; a ``CheckpointError`` for weights that record neither."""
    if isinstance(obj, Mapping) and isinstance(obj.get("meta"), Mapping):
        return dict(obj["meta"])
    if isinstance(obj, Mapping) and isinstance(obj.get("cfg"), Mapping) and "MODEL" in obj["cfg"]:
        from .config import CfgNode

        return checkpoint_meta(CfgNode(obj["cfg"]))
    raise CheckpointError(f"{source}: records no model or input protocol (an official or plain state dict?); "
                          "pass the config it belongs to with --cfg")


def config_from_checkpoint(path: str | os.PathLike, opts: list[str] | None = None):
    """The config a checkpoint was made with, as far as running it needs: its model, input
    protocol and ``TEST.CHECKPOINT``, then ``opts`` (``KEY VALUE`` overrides) on top.

    Returns:
        ``(cfg, class_names)``: a frozen config and the recorded class names (None if none).
    """
    from .config import load_config
    from .models.protocol import InputProtocol

    meta = read_meta(safe_load(path), str(path))
    try:
        protocol = InputProtocol.from_dict(meta["protocol"], source=str(path))
        model_opts = [item for key, value in meta["model"].items() for item in (f"MODEL.{key}", str(value))]
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: unreadable 'meta' record ({err})") from None
    cfg = load_config(None, model_opts + protocol.config_overrides() + ["TEST.CHECKPOINT", str(path)]
                      + list(opts or []))
    return cfg, meta.get("class_names")
