"""Reading samples out of one shard: the tar members of each wanted sample, grouped by key, in order.

A sample is the run of consecutive members sharing a key (``<key>.mp4`` + ``<key>.json``); its
position is its rank among the shard's keys. The reader starts at the byte offset of the first
wanted sample when the index has offsets, and skips the members of unwanted samples without
extracting them (on a stream their bytes are read and dropped, never decoded). A shard that ends
early or breaks off in a corrupt member yields ``RawSample`` s with ``error`` set for the wanted
samples it did not deliver; a fetch that keeps failing raises ``io.ShardFetchError``.
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass, field
from typing import Callable, Iterator

from .index import ShardEntry
from .io import RetryingReader, Storage

VIDEO_EXTENSIONS = ("mp4", "webm", "mkv", "avi", "mov", "m4v")  # container extensions a sample's video may have


@dataclass
class RawSample:
    """The members of one sample (extension -> bytes), or why it is missing (``error``)."""

    pos: int
    key: str
    files: dict[str, bytes] = field(default_factory=dict)
    error: str = ""


def split_name(fname: str) -> tuple[str | None, str]:
    """(key, extension) of a member name, WebDataset's way: the key ends at the first dot of the
    last path component (``a/b.c.mp4`` -> (``a/b``, ``c.mp4``))."""
    from webdataset.tariterators import base_plus_ext

    key, ext = base_plus_ext(fname)
    return key, (ext or "").lower()


def _members(stream, first_pos: int, wanted: Callable[[int], bool]) -> Iterator[tuple[int, str, str, bytes]]:
    """(position, key, extension, bytes) of the members of wanted samples, through WebDataset's tar
    iterator; members of other samples are skipped unread."""
    from webdataset.tariterators import tar_file_iterator

    state = {"key": None, "pos": first_pos - 1}

    def select(fname: str) -> bool:
        key, _ = split_name(fname)
        if key is None:
            return False
        if key != state["key"]:
            state["key"], state["pos"] = key, state["pos"] + 1
        return wanted(state["pos"])

    for member in tar_file_iterator(stream, select_files=select):
        key, ext = split_name(member["fname"])
        yield state["pos"], key, ext, member["data"]


def read_shard(url: str, entry: ShardEntry, storage: Storage, wanted: Callable[[int], bool], first: int = 0,
               ) -> Iterator[RawSample]:
    """The samples at positions ``>= first`` for which ``wanted`` holds, of one shard, in order.

    Every such position below the index's ``entry.count`` comes out exactly once: with its members,
    or with ``error`` saying why it could not be read (the shard ends early or breaks off, or holds
    another key there than its index lists).
    """
    offset = entry.offsets[first] if first and entry.offsets else 0
    start = first if offset else 0
    current: RawSample | None = None
    last, error = first - 1, ""  # the last position delivered (or being delivered)
    with RetryingReader(url, storage, offset) as stream:
        try:
            for pos, key, ext, data in _members(stream, start, lambda p: p >= first and wanted(p)):
                if pos >= entry.count:
                    error = f"the shard holds more samples than the {entry.count} its index lists"
                    break
                if current is not None and pos != current.pos:
                    yield current
                    current = None
                if current is None:
                    current, last = RawSample(pos, key), pos
                    if entry.keys and entry.keys[pos] != key:
                        current.error = f"key {key!r} where the index lists {entry.keys[pos]!r}"
                current.files[ext] = data
        except (tarfile.TarError, EOFError) as err:  # a truncated or corrupt shard: what came before stands
            error = f"the shard breaks off ({type(err).__name__}: {err})"
            if current is not None and not _complete(current):
                current.error = error  # the break cut off some of its members
    if current is not None:
        yield current
    for pos in range(last + 1, entry.count):
        if wanted(pos):
            yield RawSample(pos, entry.keys[pos] if entry.keys else str(pos),
                            error=error or f"missing: the shard ends before sample {pos + 1} of {entry.count} "
                                           "(cut short)")


def _complete(sample: RawSample) -> bool:
    """A sample with its ``.json`` and a video: nothing of it was lost when the shard broke off after it."""
    return "json" in sample.files and any(e in sample.files for e in VIDEO_EXTENSIONS)
