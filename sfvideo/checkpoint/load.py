"""Weights into a model: adapted (v1 names, image -> video inflation), checked, reported.

:func:`adapt_state_dict` is the one adapter: it fits any official or sfvideo state dict to a
model and reports what happened to every key (:class:`LoadReport`). Loads are strict: every
tensor of the model comes from the checkpoint, except a classifier of another class count
(re-initialised with ``allow_new_classifier``: fine-tuning on a new label set) and whatever a
deliberate ``allow_partial`` load leaves out.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
from torch import Tensor

from .errors import CheckpointError
from .inflate import inflate_tensor
from .io import atomic_save, safe_load
from .layouts import convert_v1_to_library, extract_state_dict, is_v1_layout
from .meta import checkpoint_meta

_NEW_CLASSIFIER = "classifier re-initialised"


@dataclass
class LoadReport:
    """What happened to every key when weights were adapted into a model."""

    source: str = ""
    layout: str = ""
    loaded: list[str] = field(default_factory=list)        # copied as they were
    converted: list[str] = field(default_factory=list)     # renamed from the v1 layout ("old -> new")
    inflated: list[str] = field(default_factory=list)      # 2-D -> 3-D
    initialised: list[str] = field(default_factory=list)   # not from the checkpoint (see ``notes``)
    dropped: list[str] = field(default_factory=list)       # in the checkpoint, not in the model
    notes: list[str] = field(default_factory=list)

    @property
    def new_classifier(self) -> bool:
        """The checkpoint's classifier has another class count: the model's is re-initialised."""
        return any(n.startswith(_NEW_CLASSIFIER) for n in self.notes)

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


# ---------------------------------------------------------------------------------- adapting
def adapt_state_dict(
    state_dict: Mapping[str, Tensor], model: torch.nn.Module, source: str = "checkpoint", *,
    allow_new_classifier: bool = False, allow_partial: bool = False,
) -> tuple[dict[str, Tensor], LoadReport]:
    """Adapt official image/video weights (v1 or library layout) to ``model``.

    Image weights going into a video model are inflated. Every tensor of the model must come
    from the checkpoint, with two exceptions: a classifier with another class count is left out
    with ``allow_new_classifier`` (fine-tuning on a new label set; :func:`load_weights`
    re-initialises it), and anything goes with ``allow_partial`` (a deliberate partial load);
    both are reported.

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
    state_dict, to_video = _library_layout(state_dict, model, report)
    replicates = getattr(model, "temporal_replicates", 1)
    kept = {line.split(" -> ")[1] for line in report.converted}  # renamed or inflated: not "loaded as-is"
    out, mismatched = OrderedDict(), []
    for key, value in state_dict.items():
        if key not in target:
            report.dropped.append(key)
            continue
        want = target[key].shape
        if to_video and value.shape != want and (inflated := inflate_tensor(key, value, replicates)) is not None:
            report.inflated.append(f"{key} {tuple(value.shape)} -> {tuple(inflated.shape)}")
            kept.add(key)
            value = inflated
        if value.shape != want:
            _note_mismatch(key, value, state_dict[key], want, report, mismatched)
            continue
        out[key] = value.to(target[key].dtype)
        if key not in kept:
            report.loaded.append(key)
    if mismatched:
        raise CheckpointError(f"{source}: {len(mismatched)} tensors do not fit the model "
                              f"(a different architecture?):\n  " + "\n  ".join(mismatched[:20]))
    report.initialised = [k for k in target if k not in out]
    if not allow_partial:
        _check_complete(report, len(target), allow_new_classifier)
    return out, report


def _library_layout(state_dict: Mapping[str, Tensor], model: torch.nn.Module,
                    report: LoadReport) -> tuple[Mapping[str, Tensor], bool]:
    """``state_dict`` in the library's key names (v1 renamed, recorded in ``report``), and whether
    it holds image weights for a video model (to be inflated)."""
    if is_v1_layout(state_dict):
        state_dict, report.converted = convert_v1_to_library(state_dict)
        report.layout = "official v1 imagenet/ layout"
    else:
        report.layout = "official library layout"
    ckpt_is_image = state_dict.get("initial_roi.weight", torch.empty(0, 6)).shape[-1] == 4
    to_video = getattr(model, "geometry_dims", 2) == 3 and ckpt_is_image
    report.layout += ", image weights inflated into video" if to_video else ""
    return state_dict, to_video


def _note_mismatch(key: str, value: Tensor, original: Tensor, want: torch.Size, report: LoadReport,
                   mismatched: list[str]) -> None:
    """A classifier of another class count becomes a note; any other misfit joins ``mismatched``."""
    if key.startswith("proj."):
        note = f"{_NEW_CLASSIFIER}: checkpoint has {original.shape[0]} classes, the model {want[0]}"
        if note not in report.notes:  # one line for the weight and the bias together
            report.notes.append(note)
        return
    mismatched.append(f"{key}: checkpoint {tuple(value.shape)} vs model {tuple(want)}")


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
        note = next((n for n in report.notes if n.startswith(_NEW_CLASSIFIER)), "classifier shape differs")
        raise CheckpointError(f"{report.source}: {note.replace(_NEW_CLASSIFIER + ': ', '')}; "
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


# ---------------------------------------------------------------------------------- loading
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
    """:func:`load_pretrained` on a checkpoint already read with :func:`safe_load`.

    A classifier the checkpoint cannot fill (another class count, ``allow_new_classifier``) is
    replaced by a fresh one (``model.reset_classifier``), whatever ``model`` held before.
    """
    state_dict = extract_state_dict(obj, use_ema=use_ema, source=source)
    adapted, report = adapt_state_dict(state_dict, model, source=source, **flags)
    missing, unexpected = model.load_state_dict(adapted, strict=False)
    assert set(missing) == set(report.initialised) and not unexpected, (missing, unexpected)
    if report.new_classifier:
        model.reset_classifier(model.num_classes)
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
    load_test_state(model, safe_load(path), str(path), use_ema, log)


def load_test_state(model: torch.nn.Module, state: Any, source: str, use_ema: bool = False, log=print) -> None:
    """:func:`load_test_weights` on a checkpoint already read with :func:`safe_load` (``source`` names it)."""
    if not is_training_checkpoint(state):
        load_weights(model, state, source, use_ema=use_ema, log=log)
        return
    if use_ema and not state.get("ema"):
        raise CheckpointError(f"TEST.USE_EMA is set but {source} holds no EMA weights")
    load_weights(model, {"model": state["ema"] if use_ema else state["model"]}, source, log=None)
    if log is not None:
        log(f"loaded {'EMA ' if use_ema else ''}weights from {source} (epoch {state.get('epoch')})")


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
