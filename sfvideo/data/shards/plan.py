"""The order of an epoch's samples over shards: a pure function of the seed, the epoch and the
index's sample counts, so that a resumed run knows, without reading anything, which samples are
still to come.

* Shards are permuted by ``(seed, epoch)``, the same permutation on every rank.
* They are dealt, in that order, to the ``world x workers`` reading slots (slot
  ``rank * workers + role``), each to the slot holding the fewest samples so far.
* A slot reads its shards one after the other; read position ``t`` is sample ``pos`` of the
  slot's ``j``-th shard in pass ``p``: the slot's read sequence repeats its shards for as long as
  samples are asked for (a slot whose share runs short wraps round deterministically).
* A shuffle buffer of ``buffer_size`` read positions, seeded by ``(seed, epoch, rank, role)``,
  turns the read sequence into the slot's output stream: ``ShuffleOrder``. It draws only on its
  own RNG, never on the samples, so output ``m`` of the stream is known before any data is read,
  and a stream restarted at output ``m`` picks up exactly where it stopped.
* The DataLoader hands batches round robin from its workers 0..W-1: batch ``b`` of the epoch comes
  from role ``b % W``. A loader started at batch ``q`` gives worker ``w`` the role
  ``(w + q) % W`` (``role_of``), so the batch order does not change.

Nothing here reads data or needs torch.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass
from typing import Iterator, NamedTuple, Sequence

from ...utils.seeding import derive_seed

SHARD_SALT = 0x5A4D  # the shard permutation of an epoch
BUFFER_SALT = 0xB0F  # a slot's shuffle buffer


def shard_permutation(num_shards: int, seed: int, epoch: int) -> list[int]:
    """Shard indices in the order of ``epoch``: a permutation seeded by ``(seed, epoch)``."""
    order = list(range(num_shards))
    random.Random(derive_seed(seed, epoch, SHARD_SALT)).shuffle(order)
    return order


def deal_shards(order: Sequence[int], counts: Sequence[int], num_slots: int,
                allow_empty: bool = False) -> list[list[int]]:
    """Shards (in ``order``) dealt to ``num_slots`` slots, each to the slot with the fewest samples
    so far (the lower slot on a tie); every slot gets at least one shard, or, with
    ``allow_empty``, the slots beyond the number of shards get none.

    Raises:
        ValueError: fewer shards than slots (unless ``allow_empty``).
    """
    if len(order) < num_slots and not allow_empty:
        raise ValueError(f"{len(order)} shards for {num_slots} reading slots")
    slots: list[list[int]] = [[] for _ in range(num_slots)]
    load = [0] * num_slots
    for i, shard in enumerate(order):
        # the first num_slots shards go one to each slot, so none is left empty
        k = i if i < num_slots else min(range(num_slots), key=lambda s: (load[s], s))
        slots[k].append(shard)
        load[k] += counts[shard]
    return slots


class ReadPosition(NamedTuple):
    """Where read position ``t`` of a slot is: pass, shard (index into the shard set), sample."""

    pass_: int
    shard: int
    pos: int


@dataclass(frozen=True)
class SlotReads:
    """A slot's read sequence: its shards, read in order, pass after pass."""

    shards: tuple[int, ...]
    counts: tuple[int, ...]  # samples of each of ``shards``

    @property
    def per_pass(self) -> int:
        return sum(self.counts)

    def locate(self, t: int) -> ReadPosition:
        """Pass, shard and sample of read position ``t``."""
        p, r = divmod(t, self.per_pass)
        starts = self.starts()
        j = bisect.bisect_right(starts, r) - 1
        return ReadPosition(p, self.shards[j], r - starts[j])

    def starts(self) -> list[int]:
        """Read position (within a pass) of each shard's first sample."""
        out, total = [], 0
        for c in self.counts:
            out.append(total)
            total += c
        return out

    def position(self, pass_: int, j: int, pos: int) -> int:
        """Read position of sample ``pos`` of the slot's ``j``-th shard in pass ``pass_``."""
        return pass_ * self.per_pass + self.starts()[j] + pos


class ShuffleOrder:
    """The output stream of a shuffle buffer over the read positions 0, 1, 2, ... (unbounded).

    The buffer is kept full at ``size`` positions; each output is a uniformly drawn one of them.
    ``pending`` (positions read but not yet output) and ``next_read`` describe the state after
    any number of outputs.
    """

    def __init__(self, size: int, rng: random.Random):
        if size < 1:
            raise ValueError(f"shuffle buffer size must be at least 1, got {size}")
        self.size, self.rng = size, rng
        self.buffer: list[int] = []
        self.next_read = 0
        self.outputs = 0

    def __iter__(self) -> Iterator[int]:
        return self

    def __next__(self) -> int:
        while len(self.buffer) < self.size:
            self.buffer.append(self.next_read)
            self.next_read += 1
        i = self.rng.randrange(len(self.buffer))
        self.buffer[i], self.buffer[-1] = self.buffer[-1], self.buffer[i]
        self.outputs += 1
        return self.buffer.pop()

    def skip(self, n: int) -> None:
        """Advance past ``n`` outputs (integers only: nothing is read)."""
        for _ in range(n):
            next(self)

    @property
    def pending(self) -> frozenset[int]:
        return frozenset(self.buffer)


@dataclass(frozen=True)
class EpochPlan:
    """Who reads what in one epoch of a sharded training set.

    Attributes:
        counts: samples per shard (the index's).
        seed, epoch: the run's ``RNG_SEED`` and the 0-based epoch.
        world, workers: processes, and reading workers per process (``max(1, DATA.NUM_WORKERS)``).
        buffer_size: shuffle buffer, in samples, of each slot.
    """

    counts: tuple[int, ...]
    seed: int
    epoch: int
    world: int
    workers: int
    buffer_size: int

    def slots(self) -> list[list[int]]:
        order = shard_permutation(len(self.counts), self.seed, self.epoch)
        return deal_shards(order, self.counts, self.world * self.workers)

    def reads(self, rank: int, role: int) -> SlotReads:
        shards = self.slots()[rank * self.workers + role]
        return SlotReads(tuple(shards), tuple(self.counts[s] for s in shards))

    def order(self, rank: int, role: int) -> ShuffleOrder:
        """The output stream of the slot of ``rank``'s reading role ``role``."""
        return ShuffleOrder(self.buffer_size, random.Random(derive_seed(self.seed, self.epoch, rank, role, BUFFER_SALT)))


def batches_of_role(num_batches: int, workers: int, role: int, start: int = 0) -> int:
    """Batches ``start .. num_batches - 1`` that role ``role`` supplies (batch ``b`` is role ``b % workers``'s)."""
    def upto(n: int) -> int:
        return max(0, (n - role + workers - 1) // workers)

    return upto(num_batches) - upto(start)


def role_of(worker: int, workers: int, start_batch: int) -> int:
    """The role of loader worker ``worker`` in a loader whose first batch is batch ``start_batch``."""
    return (worker + start_batch) % workers
