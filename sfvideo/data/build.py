"""The bridge from the config to the data objects: ``build_dataset``, ``build_mixup``."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from torch.utils.data import IterableDataset

from .decoding import DecodeError
from .kinetics import FrameDecoder, SamplingParams, VideoDataset
from .lists import (
    ListFormatError,
    VideoRecord,
    class_names_file,
    load_video_list,
    read_class_names,
    resolve_path,
    write_missing_report,
)
from .transforms import EvalTransform, MixupCutmix, TrainTransform, parse_rand_augment

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


def data_split(cfg, split: str) -> str:
    """The data ``split`` reads: itself, except ``test`` reads ``val`` when ``TEST.SPLIT`` is ``val``."""
    return "val" if split == "test" and cfg.TEST.SPLIT == "val" else split


def list_file_for(cfg, split: str) -> str:
    """The config's list for ``split`` (test reads VAL_LIST when ``TEST.SPLIT`` is ``val``)."""
    return {"train": cfg.DATA.TRAIN_LIST, "val": cfg.DATA.VAL_LIST, "test": cfg.DATA.TEST_LIST}[data_split(cfg, split)]


def class_names_from_cfg(cfg) -> list[str] | None:
    """Class names from ``DATA.CLASS_NAMES`` (tried in the data dir, then sfvideo's shipped lists):
    the one loader every part of sfvideo uses (datasets, test results, predictions, figures).

    Returns:
        The names in label order, or None when ``DATA.CLASS_NAMES`` is empty. A count other
        than ``MODEL.NUM_CLASSES`` is logged as a warning (names are then shown where they exist).

    Raises:
        FileNotFoundError: ``DATA.CLASS_NAMES`` is set but the file is not there.
    """
    path = class_names_file(cfg)
    if path is None:
        return None
    if not path.is_file():
        raise FileNotFoundError(f"DATA.CLASS_NAMES: {path} not found")
    names = read_class_names(path)
    if len(names) != cfg.MODEL.NUM_CLASSES:
        logger.warning("%s has %d names but MODEL.NUM_CLASSES is %d", path, len(names), cfg.MODEL.NUM_CLASSES)
    return names


def missing_report_path(cfg, split: str) -> Path | None:
    """``OUTPUT_DIR/DATA.MISSING_REPORT`` with the split before the suffix (``missing_videos.val.txt``)."""
    if not cfg.DATA.MISSING_REPORT:
        return None
    p = Path(cfg.DATA.MISSING_REPORT)
    p = p if p.is_absolute() else Path(cfg.OUTPUT_DIR) / p
    return p.with_name(f"{p.stem}.{split}{p.suffix}")


def build_dataset(cfg, split: str) -> VideoDataset | IterableDataset:
    """A map-style dataset for ``split`` in ``train``, ``val``, ``test``.

    Items are dicts. Clips are **uint8** (0-255, RGB), not normalised: pass them through
    ``sfvideo.data.transforms.normalize_clip(x, cfg.DATA.MEAN, cfg.DATA.STD)`` (or
    ``batch_to_device`` for a loader batch) to get the model's float input.

    * ``train``: ``video`` (C, T, H, W) uint8, one random augmented clip, or (K, C, T, H, W)
      with ``DATA.CLIPS_PER_DECODE`` K > 1 (K clips augmented independently from one decode;
      a loader batch of B items then holds B x K clips); ``label`` int; ``index``,
      ``num_failed``, ``failed_path`` (substitutes for unreadable videos).
    * ``val`` / ``test``: ``video`` (V, C, T, H, W) uint8, all views of one video (None when it
      failed), ``label``, ``path`` (as listed), ``index``, ``failed``, ``error``.

    ``train``: one random augmented clip per item. ``val``: the centre clip and centre crop
    (items shaped like test items, V = 1). ``test``: ``TEST.NUM_ENSEMBLE_VIEWS`` clips x
    ``TEST.NUM_SPATIAL_CROPS`` crops per item. Rows of a Kinetics CSV whose video is missing
    are written to ``missing_report_path(cfg, split)``.

    With ``DATA.FORMAT shards`` the dataset reads ``DATA.*_SHARDS`` instead: an iterable dataset
    (``sfvideo.data.shards``) with the same items, each process and loader worker reading its own
    shards; training items then also carry ``stream_role`` and ``stream_pos``.

    Raises:
        FileNotFoundError: the list or class-name file does not exist (the key is named).
        ListFormatError: a malformed line (file and line named) or a label >= MODEL.NUM_CLASSES.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if cfg.DATA.FORMAT == "shards":
        from .shards.build import build_shard_dataset

        return build_shard_dataset(cfg, split)
    records = load_records(cfg, split)
    if split == "train":
        sampling, transform = train_sampling_and_transform(cfg)
    else:
        sampling, transform = eval_sampling_and_transform(cfg, split)
    d = cfg.DATA
    return VideoDataset(
        records, d.PATH_TO_DATA_DIR, "train" if split == "train" else "test", sampling, transform, frame_decoder(cfg),
        clips_per_decode=d.CLIPS_PER_DECODE if split == "train" else 1, decode_ahead=d.DECODE_AHEAD,
        seed=cfg.RNG_SEED, max_failure_fraction=d.MAX_FAILURE_FRACTION,
    )


def load_records(cfg, split: str) -> list[VideoRecord]:
    """The usable records of ``split``'s list; missing videos of a Kinetics CSV are logged and
    written to ``missing_report_path(cfg, split)`` (by rank 0).

    Raises:
        FileNotFoundError: the list does not exist.
        ListFormatError: a malformed line, no usable video, or a label >= ``MODEL.NUM_CLASSES``.
    """
    data_dir = cfg.DATA.PATH_TO_DATA_DIR
    list_path = resolve_path(list_file_for(cfg, split), data_dir)
    if not list_path.is_file():
        raise FileNotFoundError(f"{split} list {list_path} not found (DATA.PATH_TO_DATA_DIR={data_dir!r})")
    result = load_video_list(list_path, data_dir, class_names_from_cfg(cfg))
    if result.missing:
        report = missing_report_path(cfg, split)
        if report is not None and int(os.environ.get("RANK", "0")) == 0:
            write_missing_report(report, result.missing)
        logger.warning("%s: %d listed videos not found under %s%s", list_path, len(result.missing), data_dir,
                       f"; listed in {report}" if report else "")
    if not result.records:
        raise ListFormatError(f"{list_path}: no usable videos ({len(result.missing)} missing)")
    bad = next((r for r in result.records if r.label >= cfg.MODEL.NUM_CLASSES), None)
    if bad is not None:
        raise ListFormatError(f"{list_path}: label {bad.label} of {bad.path!r} >= MODEL.NUM_CLASSES {cfg.MODEL.NUM_CLASSES}")
    return result.records


def frame_decoder(cfg) -> FrameDecoder:
    """The decode callable of ``DATA.DECODER``, ``DECODER_FALLBACK``, ``SEEK_MODE``, ``DECODE_DEVICE``."""
    d = cfg.DATA
    return FrameDecoder(backend=d.DECODER, fallback=d.DECODER_FALLBACK, seek_mode=d.SEEK_MODE, device=d.DECODE_DEVICE)


def train_sampling_and_transform(cfg) -> tuple[SamplingParams, TrainTransform]:
    """Sampling and augmentation of training items (``DATA.*``, ``AUG.*``)."""
    d = cfg.DATA
    sampling = SamplingParams(num_frames=d.NUM_FRAMES, sampling_rate=d.SAMPLING_RATE, target_fps=float(d.TARGET_FPS),
                              pad_mode=d.PAD_MODE, placement=cfg.TEST.CLIP_PLACEMENT, sampler=d.SAMPLING)
    transform = TrainTransform(
        crop_size=d.TRAIN_CROP_SIZE, jitter_scales=tuple(d.TRAIN_JITTER_SCALES),
        random_resized_crop=d.RANDOM_RESIZED_CROP, area_range=tuple(d.TRAIN_JITTER_AREA),
        aspect_range=tuple(d.TRAIN_JITTER_ASPECT), flip=cfg.AUG.FLIP,
        rand_augment=parse_rand_augment(cfg.AUG.RAND_AUGMENT), erase_prob=cfg.AUG.RE_PROB,
        mean=tuple(d.MEAN), std=tuple(d.STD),
    )
    return sampling, transform


def eval_sampling_and_transform(cfg, split: str = "test") -> tuple[SamplingParams, EvalTransform]:
    """Sampling and transform of ``val`` (centre clip, centre crop) or ``test`` (all views) items."""
    d, t = cfg.DATA, cfg.TEST
    common = dict(num_frames=d.NUM_FRAMES, sampling_rate=d.SAMPLING_RATE, target_fps=float(d.TARGET_FPS), pad_mode=d.PAD_MODE,
                  sampler=d.SAMPLING)
    if split == "val":
        return (SamplingParams(**common, num_clips=1, placement="uniform"),
                EvalTransform(crop_size=d.TEST_CROP_SIZE, num_crops=1))
    return (SamplingParams(**common, num_clips=t.NUM_ENSEMBLE_VIEWS, placement=t.CLIP_PLACEMENT),
            EvalTransform(crop_size=d.TEST_CROP_SIZE, num_crops=t.NUM_SPATIAL_CROPS))


def build_test_views(cfg, path: str | os.PathLike, split: str = "test") -> torch.Tensor:
    """The views (V, C, T, H, W) of one video file, exactly as ``build_dataset(cfg, split)`` makes them:
    every test view for ``test``, the centre clip and centre crop (V = 1) for ``val``. The one
    function behind prediction, figures and anything else that prepares a single video.

    Raises:
        DecodeError: the video cannot be read (the message names it).
    """
    sampling, transform = eval_sampling_and_transform(cfg, split)
    dataset = VideoDataset([VideoRecord(str(Path(path).resolve()), 0)], "", "test", sampling, transform,
                           frame_decoder(cfg))
    item = dataset[0]
    if item["failed"]:
        raise DecodeError(item["error"])
    return item["video"]


def build_mixup(cfg) -> MixupCutmix:
    """Mixup/CutMix with label smoothing from ``AUG.*``; with both alphas 0 it only smooths labels."""
    a = cfg.AUG
    return MixupCutmix(
        num_classes=cfg.MODEL.NUM_CLASSES, mixup_alpha=a.MIXUP_ALPHA, cutmix_alpha=a.CUTMIX_ALPHA,
        prob=a.MIX_PROB, switch_prob=a.MIX_SWITCH_PROB, label_smoothing=a.LABEL_SMOOTHING,
    )
