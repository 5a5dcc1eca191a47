"""The acceptance check of shard training: one recipe trained and tested from file lists, and
again from the same videos written as shards and served over loopback HTTP; the two top-1 agree
within a tolerance (two runs see the same samples in different orders, so they differ by noise).

``tools/toy_shards_check.py`` runs it on the moving-toy dataset with the demo's recipe.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

logger = logging.getLogger("sfvideo.bench")


def write_toy_shards(data_dir: Path, out: Path, max_count: int) -> None:
    """``train.txt`` and ``val.txt`` of ``data_dir`` as shards of ``max_count`` samples in ``out``."""
    from ..data.lists import load_video_list, read_class_names
    from ..data.shards.write import ShardOptions, make_shards

    classes = read_class_names(data_dir / "classes.txt")
    for split in ("train", "val"):
        records = load_video_list(data_dir / f"{split}.txt", data_dir, classes).records
        make_shards(records, data_dir, out, ShardOptions(split=split, max_count=max_count, workers=1), classes,
                    command=f"toy_shards_check: {split}", progress=False)


def train_and_test(cfg_file: str, opts: Sequence[str], out: Path) -> dict[str, Any]:
    """Train ``cfg_file`` with ``opts`` into ``out``, then the multi-view test of its last checkpoint."""
    from ..config import load_config
    from ..engine.evaluate import run_test
    from ..engine.train import train

    base = list(opts) + ["OUTPUT_DIR", str(out)]
    result = train(load_config(cfg_file, base))
    if result.status != "finished":
        raise RuntimeError(f"the run in {out} did not finish ({result.status})")
    return run_test(load_config(cfg_file, base + ["TEST.CHECKPOINT", str(out / "checkpoints" / "last.pth")]),
                    cfg_file, progress=False)


def lists_vs_shards(data_dir: str | Path, out_dir: str | Path, cfg_file: str = "toy_tiny.yaml",
                    opts: Sequence[str] = (), max_count: int = 240) -> dict[str, Any]:
    """Train and test ``cfg_file`` from ``data_dir``'s lists, then from its shards over loopback HTTP.

    Returns:
        ``lists`` and ``shards`` (each run's ``test_results.json`` fields) and ``difference``
        (shards top-1 minus lists top-1, in points).
    """
    from .serve import http_server

    data_dir, out = Path(data_dir).resolve(), Path(out_dir).resolve()
    shards = out / "shards"
    if not (shards / "val-shards.json").is_file():
        write_toy_shards(data_dir, shards, max_count)
    common = ["DATA.PATH_TO_DATA_DIR", str(data_dir), *opts]
    lists = train_and_test(cfg_file, common, out / "lists")
    with http_server(shards, out / "http") as url:
        logger.info("shards served at %s", url)
        from_shards = ["DATA.FORMAT", "shards", "DATA.TRAIN_SHARDS", f"{url}/train-shards.json",
                       "DATA.VAL_SHARDS", f"{url}/val-shards.json", "DATA.TEST_SHARDS", f"{url}/val-shards.json"]
        sharded = train_and_test(cfg_file, common + from_shards, out / "shards_run")
    return {"lists": lists, "shards": sharded, "difference": sharded["top1"] - lists["top1"]}
