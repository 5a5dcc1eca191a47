"""Configuration: one commented tree of defaults, YAML files that state only what differs.

The tree follows PySlowFast's names where the field has them (``DATA.NUM_FRAMES``,
``TEST.NUM_ENSEMBLE_VIEWS``, ``SOLVER.BASE_LR``, ``OUTPUT_DIR`` ...).

Usage::

    cfg = load_config("k400_tiny.yaml", ["TRAIN.BATCH_SIZE", "8"])
    cfg.DATA.NUM_FRAMES  # 32

``load_config`` resolves a bare file name in ``configs/``, merges the YAML and the trailing
``KEY VALUE`` overrides into a copy of the defaults, validates, and freezes the result.
A key that does not exist fails with the key named and the closest valid keys suggested.
"""

from __future__ import annotations

import ast
import copy
import difflib
import math
import os
import warnings
from pathlib import Path
from typing import Any, Iterable, NamedTuple, Sequence

import yaml

from .resources import configs_dir
from .utils.constants import IMAGENET_MEAN, IMAGENET_STD


class ConfigError(ValueError):
    """A configuration problem a user can fix (unknown key, wrong type, bad value)."""


class CfgNode(dict):
    """A dict with attribute access that can be frozen. Nested dicts become ``CfgNode``."""

    _FROZEN = "__frozen__"

    def __init__(self, init: dict | None = None):
        super().__init__()
        object.__setattr__(self, CfgNode._FROZEN, False)
        for key, value in (init or {}).items():
            self[key] = CfgNode(value) if isinstance(value, dict) and not isinstance(value, CfgNode) else value

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        if self.is_frozen():
            raise ConfigError(f"config is frozen; cannot set {name!r} (use clone() to get a mutable copy)")
        self[name] = value

    def __setitem__(self, key: str, value: Any) -> None:
        if getattr(self, CfgNode._FROZEN, False):
            raise ConfigError(f"config is frozen; cannot set {key!r} (use clone() to get a mutable copy)")
        super().__setitem__(key, value)

    def is_frozen(self) -> bool:
        return object.__getattribute__(self, CfgNode._FROZEN)

    def freeze(self, frozen: bool = True) -> "CfgNode":
        object.__setattr__(self, CfgNode._FROZEN, frozen)
        for value in self.values():
            if isinstance(value, CfgNode):
                value.freeze(frozen)
        return self

    def clone(self) -> "CfgNode":
        return CfgNode(copy.deepcopy(self.to_dict()))

    def to_dict(self) -> dict:
        return {k: v.to_dict() if isinstance(v, CfgNode) else copy.deepcopy(v) for k, v in self.items()}

    def dump(self) -> str:
        """YAML text of the whole tree (what a run writes as ``config.yaml``)."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)

    def flat_keys(self, prefix: str = "") -> list[str]:
        keys = []
        for k, v in self.items():
            full = f"{prefix}{k}"
            keys.append(full)
            if isinstance(v, CfgNode):
                keys.extend(v.flat_keys(full + "."))
        return keys

    # Pickling support (DataLoader workers under spawn receive the config).
    def __getstate__(self):
        return {"d": self.to_dict(), "frozen": self.is_frozen()}

    def __setstate__(self, state):
        object.__setattr__(self, CfgNode._FROZEN, False)
        for k, v in CfgNode(state["d"]).items():
            dict.__setitem__(self, k, v)
        self.freeze(state["frozen"])

    def __reduce__(self):
        return (CfgNode, (), self.__getstate__())


# ----------------------------------------------------------------------------------------------
# Defaults. Every key is commented; YAML files under configs/ only state what differs.
# ----------------------------------------------------------------------------------------------
_C = CfgNode()

# Directory for everything a run writes: config.yaml, checkpoints/, metrics.jsonl, test results.
_C.OUTPUT_DIR = "./output"
# Seed for python, numpy and torch RNGs (each data worker and rank derives its own from it).
_C.RNG_SEED = 0
# Where the run executes: "auto" (cuda when available), "cpu" or "cuda".
_C.DEVICE = "auto"
# CPU threads for PyTorch's operators in the main process (0: PyTorch's default, the core count).
# Float sums split across threads round differently, so training on the CPU is repeatable
# bit for bit only at a fixed thread count (the toy config fixes it at 2).
_C.NUM_THREADS = 0

# ---------------------------------------------------------------------------- model
_C.MODEL = CfgNode()
# Named variant from sfvideo.models.registry (video_tiny, video_small, video_base, video_test, ...).
_C.MODEL.ARCH = "video_tiny"
# Number of output classes (400 for Kinetics-400); -1: the number of names in DATA.CLASS_NAMES,
# counted when the config is loaded (a missing file is then an error naming it).
_C.MODEL.NUM_CLASSES = 400
# Temporal replicates R of the latent tokens; replicate k starts on the k-th of R time slabs.
# -1 keeps the variant's own value.
_C.MODEL.TEMPORAL_REPLICATES = -1
# Stochastic depth rate at the last unit (linearly increasing from 0). -1 keeps the variant's.
_C.MODEL.DROP_PATH_RATE = -1.0
# Padding for feature sampling outside the feature volume: "zeros" (official v1) or "border".
_C.MODEL.PADDING_MODE = "zeros"

# ---------------------------------------------------------------------------- data
_C.DATA = CfgNode()
# Root folder of the videos; list paths are relative to it unless absolute.
_C.DATA.PATH_TO_DATA_DIR = ""
# List files ("path label" lines or official Kinetics CSV), relative to PATH_TO_DATA_DIR or absolute.
_C.DATA.TRAIN_LIST = "train.txt"
_C.DATA.VAL_LIST = "val.txt"
_C.DATA.TEST_LIST = "test.txt"
# File of class names, one per line, in label-index order ("" = labels must be integers).
# Relative paths are tried against PATH_TO_DATA_DIR, then the repository root.
_C.DATA.CLASS_NAMES = "data_lists/kinetics400_classes.txt"
# Video decoder: "auto" (the first of torchcodec, decord, pyav that imports and loads here),
# "torchcodec" (maintained; needs FFmpeg 4-8 shared libraries), "decord" or "pyav".
_C.DATA.DECODER = "auto"
# When the chosen decoder cannot read a video, retry it with the other available ones before
# counting it failed (a video read that way is logged once: its pixels may differ slightly).
_C.DATA.DECODER_FALLBACK = True
# torchcodec's seek mode: "exact" (scans the packets on open; right on variable-frame-rate
# files) or "approximate" (trusts the header's rate and count; only for constant-rate data).
_C.DATA.SEEK_MODE = "exact"
# Where torchcodec decodes: "cpu" or "cuda" (NVDEC; needs DATA.DECODER torchcodec or auto
# resolving to it, and DATA.NUM_WORKERS 0: the loops fork their workers, which cannot use CUDA).
_C.DATA.DECODE_DEVICE = "cpu"
# Training: clips sampled and augmented independently from one decode of a video (VideoMAE's
# repeated augmentation). Each item then holds this many clips, stacked on the batch axis by
# the collate, so a batch holds TRAIN.BATCH_SIZE x CLIPS_PER_DECODE clips and an epoch sees every
# video once but CLIPS_PER_DECODE x as many clips.
_C.DATA.CLIPS_PER_DECODE = 1
# Decode a batch's items one after another while a background thread augments the decoded ones
# (the same items either way; off: one stage after the other, e.g. to measure each alone).
_C.DATA.DECODE_AHEAD = True
# Frames per clip (T) and the stride between them, in frames at TARGET_FPS.
_C.DATA.NUM_FRAMES = 32
_C.DATA.SAMPLING_RATE = 2
# Frame rate that frame indices are expressed in (PySlowFast convention): a video at another
# rate is sampled at the times the indices would have at this rate.
_C.DATA.TARGET_FPS = 30
# Temporal sampler: "dense" (NUM_FRAMES frames SAMPLING_RATE apart, a fixed-length span) or
# "segment" (TSN style: the whole video cut into NUM_FRAMES segments, one frame from each:
# random in training, fixed at test; for Something-Something and short clips).
_C.DATA.SAMPLING = "dense"
# How clips longer than the video are filled: "repeat_last" (the last in-range frame the clip
# samples; the clamp to the last frame under TEST.CLIP_PLACEMENT slowfast) or "loop".
_C.DATA.PAD_MODE = "repeat_last"
# Training: short side jittered in [min, max], then a random TRAIN_CROP_SIZE square crop.
_C.DATA.TRAIN_JITTER_SCALES = [256, 320]
_C.DATA.TRAIN_CROP_SIZE = 224
# Use random resized crop (area/aspect jitter) instead of short-side jitter + crop.
_C.DATA.RANDOM_RESIZED_CROP = False
# Area fraction and aspect ratio ranges for RANDOM_RESIZED_CROP.
_C.DATA.TRAIN_JITTER_AREA = [0.08, 1.0]
_C.DATA.TRAIN_JITTER_ASPECT = [0.75, 1.3333]
# Test: short side resized to TEST_CROP_SIZE, then crops (see TEST.NUM_SPATIAL_CROPS).
_C.DATA.TEST_CROP_SIZE = 224
# Per-channel RGB mean and std on the [0, 1] scale (ImageNet's).
_C.DATA.MEAN = list(IMAGENET_MEAN)
_C.DATA.STD = list(IMAGENET_STD)
# DataLoader workers per process, and pinned memory (CUDA only).
_C.DATA.NUM_WORKERS = 4
_C.DATA.PIN_MEMORY = True
# Training: fraction of failed (unreadable) videos per epoch above which training stops.
_C.DATA.MAX_FAILURE_FRACTION = 0.05
# File listing CSV rows whose video was not found (relative to OUTPUT_DIR); "" disables.
_C.DATA.MISSING_REPORT = "missing_videos.txt"
# Where the videos come from: "lists" (TRAIN_LIST / VAL_LIST / TEST_LIST and files) or "shards"
# (WebDataset tar shards written by `sfvideo make-shards`: TRAIN_SHARDS / VAL_SHARDS / TEST_SHARDS).
_C.DATA.FORMAT = "lists"
# Shards of each split: a brace pattern (s3://bucket/k400/train-{000000..000239}.tar,
# https://host/k400/train-{000000..000239}.tar, or a local path, relative to PATH_TO_DATA_DIR)
# whose index {prefix}-shards.json lies beside the shards, or that index itself (every shard it
# lists). Training needs at least (processes x max(1, NUM_WORKERS)) shards.
_C.DATA.TRAIN_SHARDS = ""
_C.DATA.VAL_SHARDS = ""
_C.DATA.TEST_SHARDS = ""
# Endpoint of an S3-compatible store for s3:// shards ("" = AWS_ENDPOINT_URL, else AWS itself);
# credentials and region come from the standard AWS_* environment variables.
_C.DATA.S3_ENDPOINT = ""
# Training from shards: samples in the shuffle buffer of each loader worker. Each holds one
# video's bytes (about 1-2 MB at short side 320), so memory grows by this x workers x processes.
_C.DATA.SHUFFLE_BUFFER = 64
# A shard read that fails is retried this many times, the first after SHARD_RETRY_WAIT seconds,
# each next one after twice as long; then the run stops naming the shard and the reason.
_C.DATA.SHARD_RETRIES = 5
_C.DATA.SHARD_RETRY_WAIT = 1.0

# ---------------------------------------------------------------------------- augmentation
_C.AUG = CfgNode()
# Random horizontal flip (whole clip) during training.
_C.AUG.FLIP = True
# RandAugment applied identically to every frame of a clip; "" disables.
# Format as timm: "rand-m{magnitude}-n{ops}" e.g. "rand-m7-n4".
_C.AUG.RAND_AUGMENT = "rand-m7-n4"
# Random erasing probability (per clip, same box on every frame).
_C.AUG.RE_PROB = 0.25
# Mixup alpha, CutMix alpha (0 disables each), probability of applying either, and switch
# probability (CutMix rather than Mixup when both are on).
_C.AUG.MIXUP_ALPHA = 0.8
_C.AUG.CUTMIX_ALPHA = 1.0
_C.AUG.MIX_PROB = 1.0
_C.AUG.MIX_SWITCH_PROB = 0.5
# Label smoothing for the training targets.
_C.AUG.LABEL_SMOOTHING = 0.1

# ---------------------------------------------------------------------------- training
_C.TRAIN = CfgNode()
# Clips per process per step (the global batch is BATCH_SIZE x world size x ACCUM_STEPS).
_C.TRAIN.BATCH_SIZE = 8
# Weights to start from: an image checkpoint (inflated on the fly) or a video checkpoint.
_C.TRAIN.CHECKPOINT = ""
# Use the EMA weights of TRAIN.CHECKPOINT when it has them.
_C.TRAIN.CHECKPOINT_USE_EMA = False
# Start from TRAIN.CHECKPOINT even when some model tensors are not in it (they keep their fresh
# initialisation and are listed). Off: such a checkpoint is refused; only a classifier with
# another class count is re-initialised (fine-tuning on a new label set).
_C.TRAIN.ALLOW_PARTIAL_CHECKPOINT = False
# Resume from OUTPUT_DIR/checkpoints/last.pth when it exists.
_C.TRAIN.AUTO_RESUME = True
# Save a numbered checkpoint every N epochs (last.pth is written every epoch).
_C.TRAIN.CHECKPOINT_PERIOD = 1
# Also write last.pth every this many minutes within an epoch (0 disables), so a killed run
# (SIGKILL, a lost machine) resumes from there exactly; rank 0's clock decides for all ranks.
_C.TRAIN.CHECKPOINT_MINUTES = 0.0
# Single-view validation every N epochs (0 disables); the best one is saved as best.pth.
_C.TRAIN.EVAL_PERIOD = 1
# Gradient accumulation steps per optimizer step.
_C.TRAIN.ACCUM_STEPS = 1
# Gradient clipping by global norm (0 disables).
_C.TRAIN.CLIP_GRAD = 5.0
# Mixed precision: "none", "bf16" or "fp16" (fp16 uses a gradient scaler, CUDA only).
_C.TRAIN.AMP = "none"
# Exponential moving average of the weights (0 disables), evaluated and saved.
_C.TRAIN.EMA_DECAY = 0.0
# Log a progress line every N steps (the progress bar updates every step).
_C.TRAIN.LOG_PERIOD = 10
# Stop after this many steps in an epoch (0 = whole epoch); for smoke tests.
_C.TRAIN.MAX_STEPS_PER_EPOCH = 0
# DistributedDataParallel find_unused_parameters (needed only if some parameters get no gradient).
_C.TRAIN.FIND_UNUSED_PARAMETERS = False

# ---------------------------------------------------------------------------- solver
_C.SOLVER = CfgNode()
# Learning rate for a total batch of SOLVER.LR_BASE_BATCH clips; scaled linearly with the
# actual total batch.
_C.SOLVER.BASE_LR = 1e-3
_C.SOLVER.LR_BASE_BATCH = 512
# Warmup epochs (linear from WARMUP_START_LR), then per-step cosine to MIN_LR.
_C.SOLVER.WARMUP_EPOCHS = 2.5
_C.SOLVER.WARMUP_START_LR = 1e-6
_C.SOLVER.MIN_LR = 1e-6
_C.SOLVER.MAX_EPOCH = 30
# The fewest optimiser steps the recipe takes (0: no minimum). When SOLVER.MAX_EPOCH epochs of
# the training set give fewer (a small data set), the run takes the fewest whole epochs that
# reach it, with the warm-up raised in proportion, and the log says so. Not applied when
# TRAIN.MAX_STEPS_PER_EPOCH caps the epochs.
_C.SOLVER.MIN_STEPS = 0
# AdamW: weight decay (not applied to norms, biases, RoIs and token embeddings) and betas.
_C.SOLVER.WEIGHT_DECAY = 0.05
_C.SOLVER.BETAS = [0.9, 0.999]
# Layer-wise learning-rate decay (1.0 disables).
_C.SOLVER.LAYER_DECAY = 1.0

# ---------------------------------------------------------------------------- test
_C.TEST = CfgNode()
# Videos per batch (each carries all its views).
_C.TEST.BATCH_SIZE = 4
# Temporal clips per video and spatial crops per clip.
_C.TEST.NUM_ENSEMBLE_VIEWS = 4
_C.TEST.NUM_SPATIAL_CROPS = 3
# Temporal placement of the test clips, giving the peer's frame indices exactly (see
# sfvideo/data/sampling.py): "uniform" (MMAction2 SampleFrames/UniformSample: first clip at the
# start, last at the end) or "slowfast" (PySlowFast: clip i at i*(L-span)/N, linspace frames).
# Dense training clips are drawn as the same peer draws them, so train and test agree with it.
_C.TEST.CLIP_PLACEMENT = "uniform"
# Weights to test (a video checkpoint or a training checkpoint; EMA used when TEST.USE_EMA).
_C.TEST.CHECKPOINT = ""
_C.TEST.USE_EMA = False
# How view scores are combined per video: "softmax_mean", "logit_mean" or "logit_max".
_C.TEST.ENSEMBLE_METHOD = "softmax_mean"
# Views per forward pass (bounds memory on long view lists; 0 = all views of the batch).
_C.TEST.MAX_VIEWS_PER_BATCH = 12
# Which list the test reads: "test" or "val".
_C.TEST.SPLIT = "test"


# ----------------------------------------------------------------------------------------------
# What every numeric key may hold, checked when a config loads (a list's values each). Every
# numeric key of the tree above has an entry (tests/test_config.py checks it).
# ----------------------------------------------------------------------------------------------
class Range(NamedTuple):
    """The values a numeric key may hold.

    Attributes:
        low, high: the ends (``-inf``/``inf``: unbounded); ``low_open``/``high_open`` exclude them.
        integer: whole numbers only.
        also: values allowed outside the range (``-1``: "keep the model variant's own").
        why: said after the range when a value is refused.
    """

    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    also: tuple = ()
    why: str = ""

    def allows(self, value: Any) -> bool:
        if value in self.also:
            return True
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def describe(self) -> str:
        """``an integer >= 1``, ``a number in [0, 1)``, ``-1 or a number in [0, 1)`` ..."""
        kind = "an integer" if self.integer else "a number"
        if self.high == math.inf:
            text = f"{kind} {'>' if self.low_open else '>='} {self.low:g}"
        else:
            text = (f"{kind} in {'(' if self.low_open else '['}{self.low:g}, "
                    f"{self.high:g}{')' if self.high_open else ']'}")
        return " or ".join([f"{v:g}" for v in self.also] + [text])


def _cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# Threads or loader processes beyond this are of no use here and can exhaust the machine's thread
# and process limits (PyTorch crashes when it cannot start them); a run config from a bigger machine
# still loads up to 64.
MAX_THREADS = max(64, 8 * _cpu_cores())
_THREADS_WHY = f"8 per core, and 64 on machines with fewer than 8 cores; this one has {_cpu_cores()}"

COUNT = Range(1, integer=True)
COUNT_OR_OFF = Range(0, integer=True)  # 0: off (or "all", where the key says so)
NON_NEGATIVE = Range(0.0)
PROBABILITY = Range(0.0, 1.0)
BELOW_ONE = Range(0.0, 1.0, high_open=True)

NUMERIC_RANGES: dict[str, Range] = {
    "RNG_SEED": Range(0, 2**32 - 1, integer=True, why="numpy's seeds are 32-bit"),
    "NUM_THREADS": Range(0, MAX_THREADS, integer=True, why=f"0: PyTorch's default; {_THREADS_WHY}"),
    "MODEL.NUM_CLASSES": Range(1, integer=True, also=(-1,), why="-1: the number of DATA.CLASS_NAMES"),
    "MODEL.TEMPORAL_REPLICATES": Range(1, integer=True, also=(-1,), why="-1: the variant's own"),
    "MODEL.DROP_PATH_RATE": Range(0.0, 1.0, high_open=True, also=(-1,), why="-1: the variant's own"),
    "DATA.CLIPS_PER_DECODE": COUNT,
    "DATA.NUM_FRAMES": COUNT,
    "DATA.SAMPLING_RATE": COUNT,
    "DATA.TARGET_FPS": COUNT,
    "DATA.TRAIN_JITTER_SCALES": COUNT,
    "DATA.TRAIN_CROP_SIZE": COUNT,
    "DATA.TRAIN_JITTER_AREA": Range(0.0, 1.0, low_open=True, why="fractions of the frame's area"),
    "DATA.TRAIN_JITTER_ASPECT": Range(0.0, low_open=True),
    "DATA.TEST_CROP_SIZE": COUNT,
    "DATA.MEAN": Range(0.0, 1.0, why="on the [0, 1] scale: 0.485, not 123.675"),
    "DATA.STD": Range(0.0, 1.0, low_open=True, why="on the [0, 1] scale: 0.229, not 58.395"),
    "DATA.NUM_WORKERS": Range(0, MAX_THREADS, integer=True, why=_THREADS_WHY),
    "DATA.MAX_FAILURE_FRACTION": PROBABILITY,
    "DATA.SHUFFLE_BUFFER": COUNT,
    "DATA.SHARD_RETRIES": Range(0, integer=True),
    "DATA.SHARD_RETRY_WAIT": NON_NEGATIVE,
    "AUG.RE_PROB": PROBABILITY,
    "AUG.MIXUP_ALPHA": NON_NEGATIVE,
    "AUG.CUTMIX_ALPHA": NON_NEGATIVE,
    "AUG.MIX_PROB": PROBABILITY,
    "AUG.MIX_SWITCH_PROB": PROBABILITY,
    "AUG.LABEL_SMOOTHING": BELOW_ONE,
    "TRAIN.BATCH_SIZE": COUNT,
    "TRAIN.CHECKPOINT_PERIOD": COUNT_OR_OFF,
    "TRAIN.EVAL_PERIOD": COUNT_OR_OFF,
    "TRAIN.ACCUM_STEPS": COUNT,
    "TRAIN.CLIP_GRAD": NON_NEGATIVE,
    "TRAIN.EMA_DECAY": BELOW_ONE,
    "TRAIN.LOG_PERIOD": COUNT,
    "TRAIN.MAX_STEPS_PER_EPOCH": COUNT_OR_OFF,
    "TRAIN.CHECKPOINT_MINUTES": NON_NEGATIVE,
    "SOLVER.BASE_LR": Range(0.0, low_open=True),
    "SOLVER.LR_BASE_BATCH": COUNT,
    "SOLVER.WARMUP_EPOCHS": NON_NEGATIVE,
    "SOLVER.WARMUP_START_LR": NON_NEGATIVE,
    "SOLVER.MIN_LR": NON_NEGATIVE,
    "SOLVER.MAX_EPOCH": COUNT,
    "SOLVER.MIN_STEPS": COUNT_OR_OFF,
    "SOLVER.WEIGHT_DECAY": NON_NEGATIVE,
    "SOLVER.BETAS": BELOW_ONE,
    "SOLVER.LAYER_DECAY": Range(0.0, 1.0, low_open=True, why="1: no decay"),
    "TEST.BATCH_SIZE": COUNT,
    "TEST.NUM_ENSEMBLE_VIEWS": COUNT,
    "TEST.NUM_SPATIAL_CROPS": Range(1, 3, integer=True),
    "TEST.MAX_VIEWS_PER_BATCH": COUNT_OR_OFF,
}


_VALID_CHOICES = {
    "DEVICE": ("auto", "cpu", "cuda"),
    "MODEL.PADDING_MODE": ("zeros", "border"),
    "DATA.DECODER": ("auto", "torchcodec", "decord", "pyav"),
    "DATA.SEEK_MODE": ("exact", "approximate"),
    "DATA.DECODE_DEVICE": ("cpu", "cuda"),
    "DATA.PAD_MODE": ("repeat_last", "loop"),
    "DATA.SAMPLING": ("dense", "segment"),
    "DATA.FORMAT": ("lists", "shards"),
    "TRAIN.AMP": ("none", "bf16", "fp16"),
    "TEST.CLIP_PLACEMENT": ("uniform", "slowfast"),
    "TEST.ENSEMBLE_METHOD": ("softmax_mean", "logit_mean", "logit_max"),
    "TEST.SPLIT": ("test", "val"),
}


def get_cfg() -> CfgNode:
    """A mutable copy of the defaults."""
    return _C.clone()


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"MODEL": {"ARCH": x}}`` -> ``{"MODEL.ARCH": x}``."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def config_diff(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(key, old value, new value) for every leaf that differs (absent: None)."""
    a, b = flatten(old), flatten(new)
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def _closest(key: str, candidates: Iterable[str]) -> list[str]:
    candidates = list(candidates)
    close = difflib.get_close_matches(key, candidates, n=3, cutoff=0.5)
    if not close:  # fall back to matching the last component (e.g. "NUM_FRAME" under any node)
        leaf = key.split(".")[-1]
        close = [c for c in candidates if difflib.SequenceMatcher(None, leaf, c.split(".")[-1]).ratio() > 0.75][:3]
    return close


# Keys an older run's config.yaml may hold that nothing reads: skipped with a warning (naming
# what to do instead), so that config still loads.
RETIRED_KEYS = {
    "TEST.ENABLE": "the multi-view test runs whenever it is asked for",
    "TRAIN.ENABLE": "`sfvideo train` always trains (to test a checkpoint only, run `sfvideo test`)",
}


def _is_retired(full_key: str, source: str) -> bool:
    if full_key not in RETIRED_KEYS:
        return False
    warnings.warn(f"config key {full_key} (from {source}) is no longer used and was ignored: "
                  f"{RETIRED_KEYS[full_key]}", stacklevel=3)
    return True


def _unknown_key_error(full_key: str, root: CfgNode, source: str) -> ConfigError:
    close = _closest(full_key, root.flat_keys())
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return ConfigError(f"unknown config key {full_key!r} (from {source}){hint}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _coerce(full_key: str, value: Any, default: Any, source: str) -> Any:
    """Match ``value`` to the type of ``default``; strings from the command line are parsed."""
    if isinstance(value, str) and not isinstance(default, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            if isinstance(default, bool) and value.lower() in ("true", "false"):
                value = value.lower() == "true"
            else:
                raise ConfigError(f"{full_key} (from {source}): cannot parse {value!r} as {type(default).__name__}") from None
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{full_key} (from {source}): expected true/false, got {value!r}")
        return value
    if isinstance(value, bool):  # bool is an int to Python, never a count or a rate to us
        raise ConfigError(f"{full_key} (from {source}): expected {type(default).__name__}, got {value!r}")
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(default, (list, tuple)) and isinstance(value, (list, tuple)):
        if default and all(_is_number(d) for d in default) and not all(_is_number(v) for v in value):
            raise ConfigError(f"{full_key} (from {source}): expected a list of numbers, got {value!r}")
        return list(value)
    if default is None or isinstance(value, type(default)):
        return value
    raise ConfigError(
        f"{full_key} (from {source}): expected {type(default).__name__}, got {type(value).__name__} {value!r}"
    )


def merge_dict(cfg: CfgNode, update: dict, source: str, prefix: str = "", root: CfgNode | None = None) -> None:
    """Merge a nested dict into ``cfg``; unknown keys and wrong types raise ``ConfigError``."""
    root = cfg if root is None else root
    for key, value in update.items():
        full = f"{prefix}{key}"
        if key not in cfg and _is_retired(full, source):
            continue
        if key not in cfg:
            raise _unknown_key_error(full, root, source)
        if isinstance(cfg[key], CfgNode):
            if not isinstance(value, dict):
                raise ConfigError(f"{full} (from {source}) is a section; give it a mapping, not {value!r}")
            merge_dict(cfg[key], value, source, full + ".", root)
        else:
            cfg[key] = _coerce(full, value, cfg[key], source)


def merge_opts(cfg: CfgNode, opts: Sequence[str]) -> None:
    """Merge trailing command-line overrides ``["KEY", "VALUE", ...]``."""
    opts = list(opts or [])
    if len(opts) % 2:
        raise ConfigError(f"overrides come in KEY VALUE pairs; got an odd number: {opts}")
    for key, value in zip(opts[0::2], opts[1::2]):
        if _is_retired(key, "command line"):
            continue
        node = cfg
        parts = key.split(".")
        for i, part in enumerate(parts):
            if not isinstance(node, CfgNode) or part not in node:
                raise _unknown_key_error(key, cfg, "command line")
            if i < len(parts) - 1:
                node = node[part]
        if isinstance(node[parts[-1]], CfgNode):
            raise ConfigError(f"{key} (from command line) is a section, not a value")
        node[parts[-1]] = _coerce(key, value, node[parts[-1]], "command line")


def resolve_config_path(cfg_file: str | os.PathLike) -> Path:
    """A path as given, or a bare name looked up in ``configs/`` (``.yaml`` may be left off)."""
    path, shipped = Path(cfg_file), configs_dir()
    candidates = [path, shipped / path, shipped / f"{path}.yaml"]
    for cand in candidates:
        if cand.is_file():
            return cand
    available = sorted(p.name for p in shipped.glob("*.yaml"))
    raise ConfigError(f"config file {str(cfg_file)!r} not found (looked in . and {shipped}); available: {available}")


# Lists with a fixed number of values.
_LIST_LENGTHS = {"DATA.TRAIN_JITTER_SCALES": 2, "DATA.TRAIN_JITTER_AREA": 2, "DATA.TRAIN_JITTER_ASPECT": 2,
                 "DATA.MEAN": 3, "DATA.STD": 3, "SOLVER.BETAS": 2}


def resolve_num_classes(cfg: CfgNode) -> None:
    """``MODEL.NUM_CLASSES -1`` becomes the number of names in ``DATA.CLASS_NAMES``."""
    if cfg.MODEL.NUM_CLASSES != -1:
        return
    from .data.lists import ListFormatError, class_names_file, read_class_names  # no torch: sfvideo.data is lazy

    path = class_names_file(cfg)
    if path is None:
        raise ConfigError("MODEL.NUM_CLASSES is -1 (count the class names) but DATA.CLASS_NAMES is empty; "
                          "set DATA.CLASS_NAMES to a classes.txt or MODEL.NUM_CLASSES to the class count")
    if not path.is_file():
        raise ConfigError(f"MODEL.NUM_CLASSES is -1 (count the class names) but DATA.CLASS_NAMES {path} does not "
                          f"exist (DATA.PATH_TO_DATA_DIR={cfg.DATA.PATH_TO_DATA_DIR!r}); write it with "
                          "tools/build_lists.py or set MODEL.NUM_CLASSES")
    try:
        names = read_class_names(path)
    except ListFormatError as err:
        raise ConfigError(f"DATA.CLASS_NAMES: {err}") from None
    if not names:
        raise ConfigError(f"MODEL.NUM_CLASSES is -1 but DATA.CLASS_NAMES {path} lists no classes")
    cfg.MODEL.NUM_CLASSES = len(names)


def _value(cfg: CfgNode, key: str) -> Any:
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def check_ranges(cfg: CfgNode) -> None:
    """Every key of ``NUMERIC_RANGES`` within its range (a list's values each); one line naming
    the key, its value and what is allowed."""
    for key, rng in NUMERIC_RANGES.items():
        value = _value(cfg, key)
        values = value if isinstance(value, list) else [value]
        why = f" ({rng.why})" if rng.why else ""
        each = "each value " if isinstance(value, list) else ""
        if rng.integer and not all(isinstance(v, int) for v in values):
            raise ConfigError(f"{key} = {value!r}; expected whole numbers: {each}{rng.describe()}{why}")
        if not all(rng.allows(v) for v in values):
            raise ConfigError(f"{key} = {value!r}; expected {each}{rng.describe()}{why}")


def validate(cfg: CfgNode) -> None:
    """Check values and relations between keys before anything runs."""
    resolve_num_classes(cfg)
    for key, choices in _VALID_CHOICES.items():
        if _value(cfg, key) not in choices:
            raise ConfigError(f"{key} = {_value(cfg, key)!r}; expected one of {list(choices)}")
    for key, length in _LIST_LENGTHS.items():
        if len(_value(cfg, key)) != length:
            raise ConfigError(f"{key} = {_value(cfg, key)!r}; expected {length} values")
    check_ranges(cfg)
    if cfg.TEST.NUM_SPATIAL_CROPS not in (1, 3):
        raise ConfigError(f"TEST.NUM_SPATIAL_CROPS = {cfg.TEST.NUM_SPATIAL_CROPS}; expected 1 or 3")
    for key in ("DATA.TRAIN_JITTER_SCALES", "DATA.TRAIN_JITTER_AREA", "DATA.TRAIN_JITTER_ASPECT"):
        lo, hi = _value(cfg, key)
        if lo > hi:
            raise ConfigError(f"{key} = {[lo, hi]}; expected [min, max] with min <= max")
    lo = cfg.DATA.TRAIN_JITTER_SCALES[0]
    if not cfg.DATA.RANDOM_RESIZED_CROP and lo < cfg.DATA.TRAIN_CROP_SIZE:
        raise ConfigError(
            f"DATA.TRAIN_JITTER_SCALES min {lo} is below DATA.TRAIN_CROP_SIZE {cfg.DATA.TRAIN_CROP_SIZE}"
        )
    if cfg.DATA.DECODE_DEVICE == "cuda" and cfg.DATA.DECODER not in ("torchcodec", "auto"):
        raise ConfigError(f"DATA.DECODE_DEVICE cuda needs DATA.DECODER torchcodec (or auto), got {cfg.DATA.DECODER!r}")
    if cfg.DATA.DECODE_DEVICE == "cuda" and cfg.DATA.NUM_WORKERS > 0:
        # the training/test loaders fork their workers, and a forked process cannot use CUDA
        raise ConfigError("DATA.DECODE_DEVICE cuda needs DATA.NUM_WORKERS 0 (forked loader workers cannot use CUDA; "
                          "build a DataLoader with multiprocessing_context='spawn' to decode on CUDA in workers)")


def load_config(cfg_file: str | os.PathLike | None = None, opts: Sequence[str] | None = None) -> CfgNode:
    """Defaults, merged with a YAML file and ``KEY VALUE`` overrides, validated and frozen.

    Args:
        cfg_file: a path, or a bare name found in ``configs/`` (``None``: defaults only).
        opts: flat list ``["KEY", "VALUE", ...]``; values are parsed as Python literals.

    Returns:
        A frozen ``CfgNode``.

    Raises:
        ConfigError: unknown key (with the closest valid keys), wrong type, or invalid value.
    """
    cfg = get_cfg()
    if cfg_file is not None:
        path = resolve_config_path(cfg_file)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except UnicodeDecodeError as err:
            raise ConfigError(f"{path}: not UTF-8 text ({err}); save it as UTF-8") from None
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {err}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
        merge_dict(cfg, data, str(path))
    merge_opts(cfg, opts or [])
    validate(cfg)
    return cfg.freeze()
