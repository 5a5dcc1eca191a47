"""The bridge from the config to the shard datasets (``DATA.FORMAT shards``)."""

from __future__ import annotations

import logging
import posixpath

from .dataset import ShardEvalDataset, ShardReading, ShardTrainDataset
from .index import ShardIndexError, ShardSet, locate, shard_set
from .io import Storage, check_readable, read_bytes

logger = logging.getLogger(__name__)


def storage_from_cfg(cfg) -> Storage:
    d = cfg.DATA
    return Storage(s3_endpoint=d.S3_ENDPOINT, retries=d.SHARD_RETRIES, backoff_s=d.SHARD_RETRY_WAIT)


def shards_for(cfg, split: str) -> str:
    """``DATA.TRAIN_SHARDS`` / ``VAL_SHARDS`` / ``TEST_SHARDS`` (test reads VAL_SHARDS when ``TEST.SPLIT`` is ``val``)."""
    from ..build import data_split

    d = cfg.DATA
    return {"train": d.TRAIN_SHARDS, "val": d.VAL_SHARDS, "test": d.TEST_SHARDS}[data_split(cfg, split)]


def open_shard_set(spec: str, storage: Storage, data_dir: str = "") -> ShardSet:
    """The shards ``spec`` names, with their index; the start-up check of the store.

    The index is read, and the first shard's metadata fetched and its size checked against the
    index, so wrong credentials, a missing bucket, a wrong endpoint or a missing shard fail here,
    before any training step.

    Raises:
        ShardFetchError: the index or the first shard cannot be read (the URL and reason named).
        ShardIndexError: the index is malformed, or lists other shards than the pattern names.
    """
    index_url, urls = locate(spec, data_dir)
    check_readable(index_url, storage)
    shards = shard_set(spec, read_bytes(index_url, storage).decode("utf-8"), index_url, urls)
    size = check_readable(shards.urls[0], storage)
    expected = shards.entries[0].bytes
    if expected and size != expected:
        raise ShardIndexError(f"{shards.urls[0]} has {size} bytes, its index {index_url} says {expected}: the shards "
                              "and the index are from different runs of make-shards")
    logger.info("%s: %d shards, %d samples (index %s)", posixpath.basename(spec), len(shards.urls),
                shards.num_samples, index_url)
    return shards


def _rank_world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def build_shard_dataset(cfg, split: str) -> ShardTrainDataset | ShardEvalDataset:
    """The dataset of ``split`` from ``DATA.*_SHARDS`` (items as ``build_dataset`` describes them;
    training items also carry ``stream_role``/``stream_pos``), for this process of the run."""
    from ..build import eval_sampling_and_transform, frame_decoder, train_sampling_and_transform

    d = cfg.DATA
    storage = storage_from_cfg(cfg)
    shards = open_shard_set(shards_for(cfg, split), storage, d.PATH_TO_DATA_DIR)
    rank, world = _rank_world()
    if split == "train":
        sampling, transform = train_sampling_and_transform(cfg)
    else:
        sampling, transform = eval_sampling_and_transform(cfg, split)
    reading = ShardReading(shards, storage, sampling, frame_decoder(cfg), cfg.MODEL.NUM_CLASSES, rank, world,
                           max(1, d.NUM_WORKERS), d.DECODE_AHEAD)
    if split != "train":
        return ShardEvalDataset(reading, transform)
    return ShardTrainDataset(reading, transform, cfg.RNG_SEED, cfg.TRAIN.BATCH_SIZE, d.SHUFFLE_BUFFER,
                             d.CLIPS_PER_DECODE)
