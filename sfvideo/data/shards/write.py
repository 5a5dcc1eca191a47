"""``sfvideo make-shards``: a list of videos written as WebDataset shards, resumably.

Each listed video becomes one sample, ``<key>.<ext>`` (the original bytes under their container's
extension, or an ``.mp4`` re-encoded to ``short_side`` by ``prepare.encode_short_side``) and
``<key>.json`` (label, class name, source path, fps, frame count, duration). The key is the
video's line number in the list (8 digits) and its file stem, so keys are unique and readable.
Samples are spread over the shards in an order shuffled with a fixed seed (classes mixed within
each shard); a shard is closed when it reaches ``shard_bytes`` or ``max_count`` samples.

Every shard is written under a temporary name and renamed when complete; after each one
``.{split}-progress.json`` records the shards done and the failures so far, so a re-run keeps the
finished shards and rewrites only the one that was being written. At the end
``{split}-shards.json`` (``index.index_document``) lists the shards, and ``failed.txt`` the
sources that could not be read (never written into a shard).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import re
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path
from typing import Any, Iterator, NamedTuple, Sequence

from ...utils.io import atomic_path, atomic_write_text
from ..lists import VideoRecord
from .index import INDEX_SUFFIX, ShardEntry, index_document, index_text
from .reader import VIDEO_EXTENSIONS

ORDER_SEED = 0  # the seed of the spread of samples over shards
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B?)?\s*$", re.IGNORECASE)


def parse_size(text: str | int) -> int:
    """Bytes of ``"1GB"``, ``"500MB"``, ``"1.5G"``, ``"64KiB"`` or a plain number (powers of 1024)."""
    m = _SIZE.match(str(text))
    if not m:
        raise ValueError(f"cannot read {text!r} as a size; write e.g. 1GB, 500MB or 1073741824")
    return int(float(m.group(1)) * 1024 ** " KMGT".index((m.group(2) or " ").upper()))


def sample_key(line: int, path: str) -> str:
    """The key of the video at list line ``line`` (1-based): ``00000042_<stem>``, the stem reduced to
    letters, digits, ``-`` and ``_`` (a WebDataset key ends at the first dot)."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(path).stem)[:80]
    return f"{line:08d}_{stem}"


@dataclass(frozen=True)
class ShardOptions:
    """How ``make_shards`` writes: shard size and count limits, source workers, re-encoding."""

    split: str = "train"
    shard_bytes: int = 1 << 30
    max_count: int = 0  # 0: no limit
    workers: int = 4
    short_side: int = 0  # 0: the original bytes


class Source(NamedTuple):
    """One video read for a shard, or why it could not be (``error``)."""

    seq: int  # place in the spread order
    line: int
    path: str
    label: int
    ext: str = ""
    data: bytes = b""
    meta: dict = {}
    error: str = ""


def read_source(job: tuple[int, int, str, str, int, int]) -> Source:
    """The bytes (original or re-encoded) and metadata of one video (run in the worker pool)."""
    from ..prepare import encode_short_side
    from ..pyav_reader import probe

    seq, line, path, full, label, short_side = job
    try:
        if short_side > 0:
            buf = io.BytesIO()
            encode_short_side(full, buf, short_side)
            data, ext = buf.getvalue(), "mp4"
        else:
            data, ext = Path(full).read_bytes(), Path(full).suffix.lower().lstrip(".")
            if ext not in VIDEO_EXTENSIONS:
                raise ValueError(f"a shard sample holds {'/'.join(VIDEO_EXTENSIONS)} videos, not .{ext}; "
                                 "re-encode with --short-side")
        meta = probe(path, data)
    except Exception as err:  # any unreadable source is reported, never written
        return Source(seq, line, path, label, error=f"{type(err).__name__}: {err}")
    duration = meta.num_frames / meta.fps if meta.fps > 0 else 0.0
    return Source(seq, line, path, label, ext, data, {"fps": meta.fps, "num_frames": meta.num_frames,
                                                 "duration": round(duration, 3)})


def spread_order(records: Sequence[VideoRecord]) -> list[int]:
    """Indices of ``records`` in the order they go into shards: shuffled with ``ORDER_SEED``."""
    order = list(range(len(records)))
    random.Random(ORDER_SEED).shuffle(order)
    return order


class _HashingFile:
    """A write-only file that hashes what passes through (tarfile writes the shard through it)."""

    def __init__(self, f):
        self.f, self.sha = f, hashlib.sha256()

    def write(self, data) -> int:
        self.sha.update(data)
        return self.f.write(data)


def _sample_json(src: Source, classes: Sequence[str]) -> bytes:
    name = classes[src.label] if 0 <= src.label < len(classes) else ""
    return json.dumps({"label": src.label, "class": name, "path": src.path, **src.meta}).encode()


def write_shard(path: Path, sources: Sequence[Source], classes: Sequence[str]) -> ShardEntry:
    """One shard of ``sources`` written atomically; its index entry (keys, offsets, bytes, sha256)."""
    from webdataset import TarWriter

    keys, offsets = [], []
    with atomic_path(path) as tmp, open(tmp, "wb") as raw:
        hashing = _HashingFile(raw)
        writer = TarWriter(hashing, encoder=False, mtime=0, user="sfvideo", group="sfvideo")
        for src in sources:
            key = sample_key(src.line, src.path)
            offsets.append(writer.tarstream.offset)
            keys.append(key)
            writer.write({"__key__": key, src.ext: src.data, "json": _sample_json(src, classes)})
        writer.close()
        raw.flush()
    return ShardEntry(path.name, len(sources), path.stat().st_size, hashing.sha.hexdigest(), tuple(keys),
                      tuple(offsets))


class MakeShardsResult(NamedTuple):
    """What ``make_shards`` did: the index it wrote, every shard's entry, the shards kept from an
    earlier run, and the sources that could not be read (``(path, reason)``)."""

    index: Path
    entries: list[ShardEntry]
    kept: int
    failed: list[tuple[str, str]]


def shard_name(split: str, n: int) -> str:
    return f"{split}-{n:06d}.tar"


def _progress_path(out: Path, split: str) -> Path:
    return out / f".{split}-progress.json"


def _fingerprint(records: Sequence[VideoRecord], options: ShardOptions) -> str:
    """What a resumed run must share with the run that wrote the shards it keeps."""
    text = json.dumps([options.split, options.shard_bytes, options.max_count, options.short_side,
                       [tuple(r) for r in records]])
    return hashlib.sha256(text.encode()).hexdigest()


def _load_progress(out: Path, options: ShardOptions, fingerprint: str) -> dict[str, Any]:
    """The progress of an interrupted run on the same list and options (finished shards still
    there), else a fresh start."""
    path = _progress_path(out, options.split)
    fresh: dict[str, Any] = {"fingerprint": fingerprint, "done": [], "next": 0, "failed": []}
    if not path.is_file():
        return fresh
    state = json.loads(path.read_text())
    if state.get("fingerprint") != fingerprint:
        raise ValueError(f"{out} holds shards of split {options.split!r} from another list or other options "
                         f"({path}); use another --out or remove them")
    kept = []
    for e in state["done"]:
        shard = out / e["name"]
        if not shard.is_file() or shard.stat().st_size != e["bytes"]:
            break  # the shards from here on are rewritten
        kept.append(e)
    if len(kept) < len(state["done"]):
        state["next"] = kept[-1]["end"] if kept else 0
        state["done"] = kept
    return state


def _batches(sources: Iterator[Source], options: ShardOptions, failed: list[tuple[str, str]], bar,
             ) -> Iterator[list[Source]]:
    """The readable sources grouped into shards (``shard_bytes`` / ``max_count``); failures noted."""
    current, size = [], 0
    for src in sources:
        bar.update()
        if src.error:
            failed.append((src.path, src.error))
            bar.write(f"skipped {src.path}: {src.error}")
            continue
        current.append(src)
        size += len(src.data) + 2048  # tar headers of the two members
        if size >= options.shard_bytes or (options.max_count and len(current) >= options.max_count):
            yield current
            current, size = [], 0
    if current:
        yield current


def _read_all(jobs: list[tuple], workers: int) -> Iterator[Source]:
    """``read_source`` over ``jobs`` in order, on ``workers`` processes."""
    if workers <= 1:
        yield from map(read_source, jobs)
        return
    with Pool(workers) as pool:
        yield from pool.imap(read_source, jobs, chunksize=1)


def make_shards(records: Sequence[VideoRecord], root: str | os.PathLike, out: str | os.PathLike,
                options: ShardOptions, classes: Sequence[str] = (), command: str = "",
                progress: bool = True) -> MakeShardsResult:
    """Write ``records`` (paths relative to ``root`` or absolute) as shards into ``out``, resuming an
    interrupted run on the same list and options (see the module docstring)."""
    from tqdm import tqdm

    from ..lists import resolve_path

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    state = _load_progress(out, options, _fingerprint(records, options))
    for stale in out.glob(f".{options.split}-*.tar.*"):  # a shard a kill left half-written
        stale.unlink()
    order = spread_order(records)
    kept = len(state["done"])
    jobs = [(seq, i + 1, records[i].path, str(resolve_path(records[i].path, root)), records[i].label,
             options.short_side) for seq, i in enumerate(order) if seq >= state["next"]]
    failed = [tuple(f) for f in state["failed"]]
    bar = tqdm(total=len(records), initial=len(records) - len(jobs), unit="video", disable=not progress,
               desc=f"{options.split} shards")
    for batch in _batches(_read_all(jobs, options.workers), options, failed, bar):
        entry = write_shard(out / shard_name(options.split, len(state["done"])), batch, classes)
        state["done"].append({**entry.to_dict(), "end": batch[-1].seq + 1})
        state["next"], state["failed"] = batch[-1].seq + 1, [list(f) for f in failed]
        atomic_write_text(_progress_path(out, options.split), json.dumps(state))
    bar.close()
    entries = [ShardEntry(e["name"], e["count"], e["bytes"], e["sha256"], tuple(e["keys"]), tuple(e["offsets"]))
               for e in state["done"]]
    index = out / f"{options.split}{INDEX_SUFFIX}"
    atomic_write_text(index, index_text(index_document(options.split, entries, classes, command)))
    atomic_write_text(out / "failed.txt", "".join(f"{p}\t{why}\n" for p, why in failed))
    return MakeShardsResult(index, entries, kept, failed)
