"""Datasets over WebDataset shards: training with an exactly resumable order, and evaluation that
scores every sample once across processes. Both run the two stages of ``loading.run_stages``
(decode from the sample's bytes in memory, then augment), as the file-list datasets do.

Training (``ShardTrainDataset``): each DataLoader worker takes its reading role (``plan.role_of``),
reads its slot's shards through the slot's shuffle buffer (``plan.EpochPlan``) and yields exactly
the samples of the batches that role supplies this epoch, so every rank takes the same number of
steps however the shards fall. A training item carries, besides the file-list fields,
``stream_role`` and ``stream_pos`` (the role's stream position after it), which the training loop
records so a resumed epoch restarts each role's stream at the output it stopped at: nothing
consumed is read or decoded again. Augmentation is seeded by ``(seed, epoch, pass, sample)``.

Bad samples (a sample without its ``.json`` or video, a label out of range, an undecodable video,
a shard cut short) are skipped: logged with their ``url#key`` and reason, and carried in the next
item's ``num_failed``/``failed_path``; the stream goes on to its next sample, so nothing is
substituted. A shard that cannot be fetched after the retries stops the run (``ShardFetchError``).

Evaluation (``ShardEvalDataset``): the shards are dealt to the ``world x workers`` slots in index
order; a sample that cannot be read becomes a failed item (reported, never dropped).
"""

from __future__ import annotations

import itertools
import json
import logging
import random
from dataclasses import dataclass
from typing import Any, Iterator

from torch.utils.data import IterableDataset, get_worker_info

from ...utils.seeding import derive_seed
from ..kinetics import READ_ERRORS, DataFailureError, Decoded, FrameDecoder, SamplingParams, test_item, train_item
from ..lists import VideoRecord
from ..loading import Rejected, run_stages
from ..transforms import EvalTransform, TrainTransform
from .index import ShardIndexError, ShardSet
from .io import Storage
from .plan import EpochPlan, ReadPosition, ShuffleOrder, SlotReads, batches_of_role, deal_shards, role_of
from .reader import VIDEO_EXTENSIONS, RawSample, read_shard

logger = logging.getLogger(__name__)

ITEM_SALT = 0x5EED  # a training sample's augmentation seed


class BadSample(ValueError):
    """A sample whose members cannot make an item (the message says why)."""


def sample_fields(raw: RawSample, num_classes: int) -> tuple[int, str, bytes]:
    """(label, source path, video bytes) of a sample.

    Raises:
        BadSample: it could not be read, has no ``.json`` or no video, or a label outside
            ``0 .. num_classes - 1``.
    """
    if raw.error:
        raise BadSample(raw.error)
    if "json" not in raw.files:
        raise BadSample(f"no {raw.key}.json (members: {', '.join(sorted(raw.files)) or 'none'})")
    try:
        meta = json.loads(raw.files["json"])
        label = meta["label"]
    except (ValueError, KeyError, TypeError) as err:
        raise BadSample(f"{raw.key}.json has no readable 'label' ({type(err).__name__}: {err})") from None
    if not isinstance(label, int) or isinstance(label, bool) or not 0 <= label < num_classes:
        raise BadSample(f"label {label!r} outside 0..{num_classes - 1} (MODEL.NUM_CLASSES {num_classes})")
    video = next((raw.files[e] for e in VIDEO_EXTENSIONS if e in raw.files), None)
    if video is None:
        raise BadSample(f"no video member ({'/'.join(VIDEO_EXTENSIONS)}) beside {raw.key}.json")
    return label, str(meta.get("path") or ""), video


def slot_samples(shards: ShardSet, reads: SlotReads, order: ShuffleOrder, storage: Storage,
                 ) -> Iterator[tuple[int, ReadPosition, RawSample]]:
    """(stream position after it, read position, sample) of each output of ``order`` from its
    current state on. Only samples still to come are read: those in the shuffle buffer and those
    after it; the reader starts at the shard (and offset) of the oldest of them."""
    source = _read_from(shards, reads, order.pending, order.next_read, storage)
    cache: dict[int, RawSample] = {}
    for t in order:
        while t not in cache:
            u, raw = next(source)
            cache[u] = raw
        yield order.outputs, reads.locate(t), cache.pop(t)


def _read_from(shards: ShardSet, reads: SlotReads, pending: frozenset[int], first_new: int, storage: Storage,
               ) -> Iterator[tuple[int, RawSample]]:
    """(read position, sample) of the read positions still wanted, in order, pass after pass: those
    in ``pending`` and every one from ``first_new`` on. A shard holding none of them is not opened."""
    def wanted(t: int) -> bool:
        return t >= first_new or t in pending

    t0 = min(pending | {first_new})
    for p in itertools.count(reads.locate(t0).pass_):
        for j, shard in enumerate(reads.shards):
            base = reads.position(p, j, 0)
            end = base + reads.counts[j]
            if end <= t0 or (end <= first_new and not any(base <= t < end for t in pending)):
                continue
            first = t0 - base if base <= t0 else 0
            entry = shards.entries[shard]
            for raw in read_shard(shards.urls[shard], entry, storage, lambda q, b=base: wanted(b + q), first):
                yield base + raw.pos, raw


@dataclass
class ShardDecoded(Decoded):
    """A training sample's decode stage, with where it is in its role's stream and its name."""

    role: int = 0
    position: int = 0  # the role's stream position after this sample
    name: str = ""  # url#key


@dataclass(frozen=True)
class ShardReading:
    """What both shard datasets read and how: the shards, fetching, sampling, decoding, classes."""

    shards: ShardSet
    storage: Storage
    sampling: SamplingParams
    decode: FrameDecoder
    num_classes: int
    rank: int = 0
    world: int = 1
    workers: int = 1  # reading workers per process: max(1, DATA.NUM_WORKERS)
    decode_ahead: bool = True

    def name(self, shard: int, raw: RawSample) -> str:
        return f"{self.shards.urls[shard]}#{raw.key}"


def _worker() -> int:
    info = get_worker_info()
    return info.id if info is not None else 0


class ShardTrainDataset(IterableDataset):
    """Training items from shards (see the module docstring); call ``start_epoch`` before iterating.

    Args:
        reading: the shards and how to read them.
        transform: the training augmentation.
        seed: the run's ``RNG_SEED``.
        batch_size: items per loader batch (each worker yields whole batches).
        buffer_size: shuffle buffer of each reading slot, in samples.
        clips_per_decode: clips augmented from one decode (items then hold (K, C, T, H, W)).

    Raises:
        ShardIndexError: fewer shards than reading slots (``world x workers``).
    """

    def __init__(self, reading: ShardReading, transform: TrainTransform, seed: int, batch_size: int,
                 buffer_size: int, clips_per_decode: int = 1):
        slots = reading.world * reading.workers
        if len(reading.shards.entries) < slots:
            raise ShardIndexError(
                f"{reading.shards.index_url}: {len(reading.shards.entries)} shards for {reading.world} processes x "
                f"{reading.workers} loader workers = {slots} reading slots: training needs at least {slots} shards "
                f"(write smaller ones: sfvideo make-shards --shard-size, or use fewer DATA.NUM_WORKERS)")
        self.reading, self.transform, self.seed = reading, transform, seed
        self.batch_size, self.buffer_size, self.clips_per_decode = batch_size, buffer_size, clips_per_decode
        self.epoch, self.num_batches, self.start_batch = 0, 0, 0
        self.positions = [0] * reading.workers
        self._carried: list[str] = []

    @property
    def samples_per_rank(self) -> int:
        """Samples one process takes per epoch at most: the index's total over the processes."""
        return self.reading.shards.num_samples // self.reading.world

    def __len__(self) -> int:
        return self.reading.shards.num_samples

    def start_epoch(self, epoch: int, num_batches: int, start_batch: int = 0,
                    positions: list[int] | None = None) -> None:
        """Iterate batches ``start_batch .. num_batches - 1`` of ``epoch`` (this process's), each
        role's stream starting at ``positions[role]`` (0s: the epoch's start)."""
        positions = list(positions) if positions is not None else [0] * self.reading.workers
        if len(positions) != self.reading.workers:
            raise ValueError(f"{len(positions)} stream positions for {self.reading.workers} reading roles")
        self.epoch, self.num_batches, self.start_batch, self.positions = epoch, num_batches, start_batch, positions

    def plan(self) -> EpochPlan:
        r = self.reading
        return EpochPlan(tuple(r.shards.counts), self.seed, self.epoch, r.world, r.workers, self.buffer_size)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        r = self.reading
        role = role_of(_worker(), r.workers, self.start_batch)
        wanted = batches_of_role(self.num_batches, r.workers, role, self.start_batch) * self.batch_size
        if wanted == 0:
            return
        plan = self.plan()
        reads, order = plan.reads(r.rank, role), plan.order(r.rank, role)
        order.skip(self.positions[role])
        self._carried = []
        decoded = self._decode_stream(slot_samples(r.shards, reads, order, r.storage), role, reads.per_pass)
        items = run_stages(decoded, self, decode_ahead=r.decode_ahead)
        for item in itertools.islice(items, wanted):
            if self._carried:
                names = self._carried + ([item["failed_path"]] if item["failed_path"] else [])
                item["failed_path"], item["num_failed"] = "\n".join(names), len(names)
                self._carried = []
            yield item

    def _decode_stream(self, samples, role: int, per_pass: int) -> Iterator[ShardDecoded]:
        """Stage 1: each good sample decoded, the bad ones before it named in its ``failed``."""
        r, failed = self.reading, []
        for position, where, raw in samples:
            name = r.name(where.shard, raw)
            index = r.shards.first_index[where.shard] + raw.pos
            seed = derive_seed(self.seed, self.epoch, where.pass_, index, ITEM_SALT)
            rng = random.Random(seed)
            try:
                label, path, video = sample_fields(raw, r.num_classes)
                frames = r.decode(name, r.sampling.train_indices(rng), data=video)  # (T, H, W, C)
            except (BadSample, *READ_ERRORS) as err:
                failed.append(_skipped(name, err))
                if len(failed) > per_pass:
                    raise DataFailureError(f"{len(failed)} samples in a row could not be read (a whole pass over "
                                           f"this reader's shards; last: {failed[-1]})") from None
                continue
            yield ShardDecoded(index, VideoRecord(path or name, label), frames, rng, failed=failed, seed=seed,
                               role=role, position=position, name=name)
            failed = []

    def augment(self, d: ShardDecoded) -> dict[str, Any]:
        try:
            item = train_item(d, self.transform, self.clips_per_decode)
        except READ_ERRORS as err:
            raise Rejected(err) from err
        item.update(stream_role=d.role, stream_pos=d.position)
        return item

    def substitute(self, d: ShardDecoded, rejected: Rejected) -> None:
        """A sample the augmentation refused is skipped like an unreadable one (its name carried on)."""
        self._carried += d.failed + [_skipped(d.name, rejected.cause)]
        return None


def _skipped(name: str, err: Exception) -> str:
    """``name: reason`` of a skipped sample, logged once here."""
    text = f"{name}: {err}" if not str(err).startswith(name) else str(err)
    logger.warning("skipped a bad training sample: %s", text)
    return text


class ShardEvalDataset(IterableDataset):
    """Test or validation items from shards: every sample once over all processes and workers
    (``index``: its place in the shard set; ``path``: the source path its ``.json`` records,
    or ``url#key`` for a sample that cannot be read, which comes out ``failed``)."""

    def __init__(self, reading: ShardReading, transform: EvalTransform):
        self.reading, self.transform = reading, transform

    def __len__(self) -> int:
        return self.reading.shards.num_samples

    def my_shards(self, worker: int) -> list[int]:
        r = self.reading
        slots = deal_shards(range(len(r.shards.entries)), r.shards.counts, r.world * r.workers, allow_empty=True)
        return slots[r.rank * r.workers + worker]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        worker = _worker()
        decoded = (self._decode(shard, raw) for shard in self.my_shards(worker)
                   for raw in read_shard(self.reading.shards.urls[shard], self.reading.shards.entries[shard],
                                         self.reading.storage, lambda p: True))
        return run_stages(decoded, self, decode_ahead=self.reading.decode_ahead)

    def _decode(self, shard: int, raw: RawSample) -> Decoded:
        r = self.reading
        index, name = r.shards.first_index[shard] + raw.pos, r.name(shard, raw)
        try:
            label, path, video = sample_fields(raw, r.num_classes)
        except BadSample as err:
            return Decoded(index, VideoRecord(name, -1), None, error=err)
        record = VideoRecord(path or name, label)
        try:
            return Decoded(index, record, r.decode(name, r.sampling.test_indices(), data=video))
        except READ_ERRORS as err:
            return Decoded(index, VideoRecord(name, label), None, error=err)

    def augment(self, d: Decoded) -> dict[str, Any]:
        item = test_item(d, self.reading.sampling, self.transform)
        if item["failed"]:
            logger.warning("unreadable test sample (reported in failed_videos): %s", item["error"])
        return item

    def substitute(self, d: Decoded, rejected: Rejected) -> dict[str, Any]:
        raise rejected.cause  # augment never rejects: a failed test item is marked, not replaced

