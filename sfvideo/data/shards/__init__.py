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
