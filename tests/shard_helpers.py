"""Shared pieces of the shard tests: a tiny video set written as shards, shard datasets built
directly, servers on loopback (nginx or Python's http.server; moto's S3 server)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from engine_helpers import tiny_opts
from sfvideo.bench.serve import free_port, serving

SHARD_OPTS = {"DATA.FORMAT": "shards", "DATA.SHUFFLE_BUFFER": 3, "DATA.SHARD_RETRY_WAIT": 0.01,
              "DATA.SHARD_RETRIES": 2}


def write_shards(data_dir: Path, out: Path, split: str = "train", max_count: int = 3, **kw) -> Path:
    """``data_dir``'s ``{split}.txt`` as shards of ``max_count`` samples in ``out``; the index path."""
    from sfvideo.data.lists import load_video_list, read_class_names
    from sfvideo.data.shards.write import ShardOptions, make_shards

    classes = read_class_names(data_dir / "classes.txt")
    records = load_video_list(data_dir / f"{split}.txt", data_dir, classes).records
    result = make_shards(records, data_dir, out, ShardOptions(split=split, max_count=max_count, workers=1, **kw),
                         classes, progress=False)
    return result.index


def shard_opts(data_dir: Path, out_dir: Path, train: str, val: str = "", **extra) -> list[str]:
    """``tiny_opts`` reading ``train`` (and ``val``, else the train shards) as shards."""
    return tiny_opts(data_dir, out_dir, **{**SHARD_OPTS, "DATA.TRAIN_SHARDS": train, "DATA.VAL_SHARDS": val or train,
                                           "DATA.TEST_SHARDS": val or train, **extra})


def moto_binary() -> str | None:
    path = Path(sys.executable).parent / "moto_server"
    return str(path) if path.exists() else shutil.which("moto_server")


def s3_server(tmp: Path, auth_actions: int | None = None):
    """moto's standalone S3 server on loopback: its endpoint URL. ``auth_actions``: check
    credentials after that many requests (moto's ``INITIAL_NO_AUTH_ACTION_COUNT``)."""
    port, env = free_port(), dict(os.environ)
    if auth_actions is not None:
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(auth_actions)
    return serving([moto_binary(), "-H", "127.0.0.1", "-p", str(port)], port, env=env, cwd=tmp)


