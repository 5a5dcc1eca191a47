"""The shard index (``{split}-shards.json``) and the shard patterns the config names.

``DATA.TRAIN_SHARDS`` (and ``VAL_SHARDS``, ``TEST_SHARDS``) is either

* a brace pattern: ``s3://bucket/k400/train-{000000..000239}.tar``, ``https://host/train-{0..9}.tar``,
  a local path (relative paths are taken from ``DATA.PATH_TO_DATA_DIR``); its index is
  ``{prefix}-shards.json`` beside the first shard (``train-000000.tar`` -> ``train-shards.json``),
  and only the shards the pattern names are read; or
* the index itself (``.../train-shards.json``): every shard it lists, beside it.

The index holds, per shard, its name, sample count, bytes, SHA-256, and each sample's key and
byte offset in the tar, plus the class names and the command that wrote it. The sample counts fix
an epoch's length before anything is read; the offsets let a resumed reader start mid-shard.
Nothing here needs torch.
"""

from __future__ import annotations

import json
import os
import posixpath
from dataclasses import dataclass, field
from typing import Any, Sequence

import braceexpand

INDEX_SUFFIX = "-shards.json"
FORMAT = "sfvideo-shards/1"


class ShardIndexError(ValueError):
    """A shard pattern or index that cannot be used; the message names it and what is wrong."""


@dataclass(frozen=True)
class ShardEntry:
    """One shard as the index lists it (``keys`` and ``offsets``: one per sample, or empty)."""

    name: str
    count: int
    bytes: int = 0
    sha256: str = ""
    keys: tuple[str, ...] = ()
    offsets: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "count": self.count, "bytes": self.bytes, "sha256": self.sha256,
                "keys": list(self.keys), "offsets": list(self.offsets)}


@dataclass(frozen=True)
class ShardSet:
    """The shards a dataset reads: their URLs, index entries (same order) and the class names."""

    urls: tuple[str, ...]
    entries: tuple[ShardEntry, ...]
    classes: tuple[str, ...] = ()
    index_url: str = ""
    first_index: tuple[int, ...] = field(default=(), compare=False)  # global index of each shard's first sample

    def __post_init__(self):
        starts, total = [], 0
        for e in self.entries:
            starts.append(total)
            total += e.count
        object.__setattr__(self, "first_index", tuple(starts))

    @property
    def counts(self) -> list[int]:
        return [e.count for e in self.entries]

    @property
    def num_samples(self) -> int:
        return sum(self.counts)


def is_url(spec: str) -> bool:
    """True for ``scheme://...`` (s3, http, https, file, ...)."""
    return "://" in spec


def expand_pattern(pattern: str) -> list[str]:
    """The URLs of a brace pattern (``a-{000..002}.tar`` -> three names), in order.

    Raises:
        ShardIndexError: the pattern expands to nothing or repeats a name.
    """
    urls = list(braceexpand.braceexpand(pattern))
    if not urls:
        raise ShardIndexError(f"shard pattern {pattern!r} names no shards")
    if len(set(urls)) != len(urls):
        raise ShardIndexError(f"shard pattern {pattern!r} names some shards twice")
    return urls


def _dirname(url: str) -> str:
    return posixpath.dirname(url) if is_url(url) else os.path.dirname(url)


def _join(folder: str, name: str) -> str:
    return posixpath.join(folder, name) if is_url(folder) else os.path.join(folder, name)


def index_url_for(shard_url: str) -> str:
    """Where the index of ``shard_url`` is: ``{prefix}-shards.json`` beside it, ``prefix`` being the
    name up to its last ``-`` (``train-000012.tar`` -> ``train-shards.json``)."""
    name = posixpath.basename(shard_url)
    prefix = name.rsplit("-", 1)[0] if "-" in name else name.split(".", 1)[0]
    return _join(_dirname(shard_url), prefix + INDEX_SUFFIX)


def _entry(raw: Any, where: str) -> ShardEntry:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not isinstance(raw.get("count"), int):
        raise ShardIndexError(f"{where}: each shard needs a 'name' (text) and a 'count' (integer), got {raw!r:.200}")
    if raw["count"] < 1:
        raise ShardIndexError(f"{where}: shard {raw['name']} has {raw['count']} samples; an index lists no empty shard")
    keys, offsets = tuple(raw.get("keys") or ()), tuple(int(o) for o in raw.get("offsets") or ())
    for what, values in (("keys", keys), ("offsets", offsets)):
        if values and len(values) != raw["count"]:
            raise ShardIndexError(f"{where}: shard {raw['name']} has {len(values)} {what} for {raw['count']} samples")
    return ShardEntry(raw["name"], raw["count"], int(raw.get("bytes", 0)), str(raw.get("sha256", "")), keys, offsets)


def parse_index(text: str, where: str) -> tuple[list[ShardEntry], list[str]]:
    """(entries, class names) of an index's JSON text; ``where`` names it in errors."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ShardIndexError(f"{where}: not a shard index (invalid JSON: {err})") from None
    if not isinstance(data, dict) or not isinstance(data.get("shards"), list) or not data["shards"]:
        raise ShardIndexError(f"{where}: not a shard index (no 'shards' list); sfvideo make-shards writes one")
    return [_entry(e, where) for e in data["shards"]], [str(c) for c in data.get("classes") or []]


def index_document(split: str, entries: Sequence[ShardEntry], classes: Sequence[str], command: str) -> dict[str, Any]:
    """The JSON object of an index (what ``parse_index`` reads)."""
    return {"format": FORMAT, "split": split, "num_samples": sum(e.count for e in entries), "classes": list(classes),
            "command": command, "shards": [e.to_dict() for e in entries]}


def index_text(document: dict[str, Any]) -> str:
    """An index document as JSON text: the fields one per line, then one line per shard."""
    head = [f" {json.dumps(k)}: {json.dumps(v)}" for k, v in document.items() if k != "shards"]
    shards = ",\n".join(f"  {json.dumps(e)}" for e in document["shards"])
    return "{\n" + ",\n".join(head) + f',\n "shards": [\n{shards}\n ]\n}}\n'


def shard_set(spec: str, index_text: str, index_url: str, urls: Sequence[str] | None) -> ShardSet:
    """The ``ShardSet`` of ``spec``: ``urls`` (a pattern's) matched to the index by name, or every
    shard of the index beside it when ``urls`` is None.

    Raises:
        ShardIndexError: a pattern names a shard the index does not list.
    """
    entries, classes = parse_index(index_text, index_url)
    if urls is None:
        folder = _dirname(index_url)
        return ShardSet(tuple(_join(folder, e.name) for e in entries), tuple(entries), tuple(classes), index_url)
    by_name = {e.name: e for e in entries}
    missing = [u for u in urls if posixpath.basename(u) not in by_name]
    if missing:
        raise ShardIndexError(f"{spec}: {len(missing)} shards are not in the index {index_url} (first: {missing[0]}); "
                              "name the shards sfvideo make-shards wrote, or give the index itself")
    return ShardSet(tuple(urls), tuple(by_name[posixpath.basename(u)] for u in urls), tuple(classes), index_url)


def locate(spec: str, data_dir: str = "") -> tuple[str, list[str] | None]:
    """(index URL, the pattern's shard URLs or None for an index) of a ``DATA.*_SHARDS`` value;
    a relative local path is taken from ``data_dir``."""
    if not spec:
        raise ShardIndexError("no shards given (set DATA.TRAIN_SHARDS / VAL_SHARDS / TEST_SHARDS with DATA.FORMAT shards)")
    if not is_url(spec) and data_dir and not os.path.isabs(spec):
        spec = os.path.join(data_dir, spec)
    if spec.endswith(".json"):
        return spec, None
    urls = expand_pattern(spec)
    return index_url_for(urls[0]), urls
