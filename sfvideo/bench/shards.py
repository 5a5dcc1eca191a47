"""Helpers for ``sfvideo benchmark-loader --shards``: the benchmark's videos written as shards, and
training loaders over local shards, shards served over loopback HTTP, and the loose files, so
the same clips can be timed from each source in alternating rounds."""

from __future__ import annotations

import math
import os
import posixpath
from pathlib import Path
from typing import Sequence

SOURCES = ("local shards", "HTTP shards", "loose files")


def shard_layout(pattern: str) -> tuple[Path, str, int]:
    """(folder, split name, shard count) of a local brace pattern (``/tmp/b/bench-{000000..000003}.tar``)."""
    from ..data.shards.index import expand_pattern

    urls = expand_pattern(pattern)
    name = posixpath.basename(urls[0])
    return Path(os.path.dirname(urls[0])), name.rsplit("-", 1)[0], len(urls)


def ensure_shards(pattern: str, videos: Sequence[Path], workers: int = 1) -> Path:
    """The index of ``pattern``'s shards, writing them from ``videos`` (labels cycling over 400
    classes, as the benchmark's lists) when the index is missing.

    Raises:
        ValueError: the videos do not fill as many shards as the pattern names.
    """
    from ..data.lists import VideoRecord
    from ..data.shards.index import INDEX_SUFFIX
    from ..data.shards.write import ShardOptions, make_shards

    folder, split, count = shard_layout(pattern)
    index = folder / f"{split}{INDEX_SUFFIX}"
    if index.is_file():
        import json

        if json.loads(index.read_text()).get("num_samples") != len(videos):
            raise ValueError(f"{index} holds shards of another set of videos than these {len(videos)}: remove "
                             f"{folder} or name another folder")
        return index
    records = [VideoRecord(str(Path(v).resolve()), i % 400) for i, v in enumerate(videos)]
    per_shard = math.ceil(len(records) / count)
    result = make_shards(records, "", folder, ShardOptions(split=split, max_count=per_shard, workers=workers),
                         progress=False)
    if len(result.entries) != count:
        raise ValueError(f"{len(records)} videos make {len(result.entries)} shards of {per_shard}, the pattern "
                         f"{pattern} names {count}: name {len(result.entries)} shards or use --videos")
    return index


def shard_loader(cfg_file: str | None, opts: Sequence[str], shards: str, batch_size: int, workers: int,
                 num_items: int):
    """A training DataLoader over ``shards`` (the config of ``cfg_file`` and ``opts`` with
    ``DATA.FORMAT shards``), ``workers`` loader workers, at least ``num_items`` clips."""
    from torch.utils.data import DataLoader

    from ..config import load_config
    from ..data import build_dataset, collate_train

    cfg = load_config(cfg_file, list(opts) + ["DATA.FORMAT", "shards", "DATA.TRAIN_SHARDS", shards,
                                              "DATA.NUM_WORKERS", str(workers)])
    ds = build_dataset(cfg, "train")
    ds.start_epoch(0, math.ceil(num_items / batch_size) + workers)
    return DataLoader(ds, batch_size=batch_size, num_workers=workers, collate_fn=collate_train, drop_last=True)
