"""Training, validation and testing from WebDataset shards on disk, over HTTP(S) or in S3, with the
same exact mid-epoch resume as from file lists.

* ``index``: ``{split}-shards.json`` and the brace patterns ``DATA.*_SHARDS`` name;
* ``io``: opening local, ``http(s)://`` and ``s3://`` URLs through fsspec, with retries;
* ``reader``: the samples of one shard (WebDataset's tar iterator), skipping unwanted ones unread;
* ``plan``: the epoch's sample order as a pure function of (seed, epoch, sample counts);
* ``dataset``: ``ShardTrainDataset`` and ``ShardEvalDataset``;
* ``write``: ``sfvideo make-shards``.

``build_shard_dataset(cfg, split)`` is ``sfvideo.data.build_dataset`` under ``DATA.FORMAT shards``.
"""

from .index import ShardIndexError
from .io import ShardFetchError

SHARD_ERRORS = (ShardFetchError, ShardIndexError)  # what a command reports as an error line


def error_line(err: Exception) -> str:
    """The message of ``err``, without the traceback a DataLoader worker wraps around an error it
    passes on to the main process (the last line then names the error and its message)."""
    text = str(err).strip()
    last = text.splitlines()[-1] if text else ""
    return last.split(": ", 1)[1] if "Original Traceback" in text and ": " in last else text
