"""Loading samples in two stages, with decoding and augmentation overlapped: for any dataset, map-style
(fetched by lists of indices) or iterable (a stream of samples).

A dataset splits each sample into

* stage 1, *decode*: read the sample's frames, substituting unreadable videos; runs in the thread
  that asks for samples (a DataLoader worker or the main process), in order, and owns all
  failure bookkeeping;
* stage 2, *augment* (``Stages.augment``): turn the decoded frames into the item; thread-safe, it
  may run in a background thread. It reports a sample it cannot transform by raising
  ``Rejected``; ``Stages.substitute`` then makes the item (or drops the sample) in the stage-1
  thread.

``run_stages(decoded, stages)`` runs an iterable of stage-1 results through stage 2. With
``decode_ahead`` on, the calling thread decodes sample after sample (up to ``DECODE_AHEAD_ITEMS``
ahead) while one background thread augments the decoded ones at the idle scheduling class: the
decoder, the slower stage, keeps its cores and the augmentation fills the cycles decoding leaves
free (decoders and PyTorch's kernels release the GIL). When nothing is left to decode, the newest
sample is augmented in the calling thread while the background thread finishes the older ones.
The items come out in order and are the same as with ``decode_ahead`` off. Every sample pulled
from ``decoded`` also counts towards this process's heap trimming (``memory.py``).

A map-style dataset derives from ``StagedMapDataset`` (stage 1 is ``decode_item(index, seed)``;
``__getitem__``, ``__getitems__`` and ``fetch(indices, seeds)`` come with it). An iterable
dataset passes its stream of stage-1 results::

    class Shards(IterableDataset):
        def __iter__(self):
            decoded = (self.decode_sample(s) for s in self.samples())  # stage 1, lazily
            return run_stages(decoded, self, decode_ahead=self.decode_ahead)
"""

from __future__ import annotations

import os
import random
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Generic, Iterable, Iterator, Protocol, Sequence, TypeVar

from torch.utils.data import Dataset

from .memory import bound_heap_growth, release_free_memory

DECODE_AHEAD_ITEMS = 2  # decoded samples queued ahead of the augmentation (each holds its frames)

DecodedT = TypeVar("DecodedT")  # a stage-1 result: decoded frames and what stage 2 needs
ItemT = TypeVar("ItemT")  # what stage 2 makes of it


class Rejected(Exception):
    """Raised by stage 2 for a decoded sample it cannot transform (frames of an impossible size,
    say); ``cause`` is the error. The stage-1 thread then calls ``Stages.substitute``."""

    def __init__(self, cause: Exception):
        super().__init__(str(cause))
        self.cause = cause


class Stages(Protocol[DecodedT, ItemT]):
    """Stage 2 of a dataset, and what replaces a sample stage 2 rejects."""

    def augment(self, decoded: DecodedT) -> ItemT:
        """The item of a decoded sample; thread-safe; raises ``Rejected`` to refuse it."""

    def substitute(self, decoded: DecodedT, rejected: Rejected) -> ItemT | None:
        """In the stage-1 thread: the item that replaces a rejected sample, or None to drop it."""


def finish(stages: Stages[DecodedT, ItemT], decoded: DecodedT) -> ItemT | None:
    """Stage 2 of ``decoded`` in this thread, substituting it if stage 2 rejects it."""
    try:
        return stages.augment(decoded)
    except Rejected as rejected:
        return stages.substitute(decoded, rejected)


def _collect(stages: Stages[DecodedT, ItemT], decoded: DecodedT, augmented: Future) -> ItemT | None:
    """The background thread's stage 2 of ``decoded``, substituted here if it was rejected."""
    try:
        return augmented.result()
    except Rejected as rejected:
        return stages.substitute(decoded, rejected)


def _yield_to_decoding() -> None:
    """Initializer of the augmentation thread: on Linux it runs at the idle scheduling class, only
    on cycles the decoder's threads leave free (a decoder keeps some cores busy in bursts); where
    that class is refused, five nice steps lower; elsewhere nothing changes."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # 0: this thread
        return
    except (AttributeError, OSError):
        pass
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + 5))
    except (AttributeError, OSError):
        pass


def _with_memory_upkeep(decoded: Iterable[DecodedT]) -> Iterator[DecodedT]:
    """``decoded``, keeping this process's heap flat: the glibc settings before the first sample
    (once per process), then each sample counted towards the occasional trim (see ``memory.py``)."""
    bound_heap_growth()
    for d in decoded:
        release_free_memory()
        yield d


def run_stages(decoded: Iterable[DecodedT], stages: Stages[DecodedT, ItemT],
               decode_ahead: bool = True) -> Iterator[ItemT]:
    """Stage 2 over the stage-1 results ``decoded`` (pulled lazily: pulling one decodes it), in order.

    With ``decode_ahead`` off each sample is augmented in this thread before the next is decoded;
    on, decoding and augmentation overlap as the module describes. Either way the same items come
    out, without those whose rejection ``stages.substitute`` answered with None.
    """
    samples = _with_memory_upkeep(decoded)
    if not decode_ahead:
        for d in samples:
            item = finish(stages, d)
            if item is not None:
                yield item
        return
    with ThreadPoolExecutor(1, thread_name_prefix="sfvideo-augment", initializer=_yield_to_decoding) as pool:
        queued: deque[tuple[Any, Future]] = deque()
        for d in samples:
            queued.append((d, pool.submit(stages.augment, d)))
            if len(queued) > DECODE_AHEAD_ITEMS:
                item = _collect(stages, *queued.popleft())
                if item is not None:
                    yield item
        # Nothing left to decode: augment the newest sample here (if the thread has not started
        # it) while the thread finishes the older ones, instead of leaving this core idle.
        last = queued.pop() if len(queued) > 1 and queued[-1][1].cancel() else None
        last_item = finish(stages, last[0]) if last is not None else None
        while queued:
            item = _collect(stages, *queued.popleft())
            if item is not None:
                yield item
        if last_item is not None:
            yield last_item


class StagedMapDataset(Dataset, Generic[DecodedT, ItemT]):
    """A map-style dataset made of the two stages; subclasses define ``decode_item``, ``augment``
    and ``substitute`` (which must return an item: a map-style dataset has one per index), and set
    ``decode_ahead``.

    Augmentation draws from per-item seeds: ``__getitem__`` and ``__getitems__`` take them from the
    process RNG (which the DataLoader reseeds per worker and epoch), in order, so a batch fetch
    gives the items of one-by-one calls; ``fetch`` takes them from the caller.
    """

    decode_ahead: bool = True

    def decode_item(self, index: int, seed: int) -> DecodedT:
        """Stage 1 of item ``index``, whose augmentation is seeded by ``seed``."""
        raise NotImplementedError

    def augment(self, decoded: DecodedT) -> ItemT:
        raise NotImplementedError

    def substitute(self, decoded: DecodedT, rejected: Rejected) -> ItemT:
        raise NotImplementedError

    def __getitem__(self, index: int) -> ItemT:
        return self.fetch([index], [random.getrandbits(64)])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[ItemT]:
        """A batch's items (the DataLoader's fetch): ``fetch`` with seeds drawn from the process RNG
        in order, as item-by-item ``__getitem__`` calls would draw them."""
        indices = list(indices)
        return self.fetch(indices, [random.getrandbits(64) for _ in indices])

    def fetch(self, indices: Sequence[int], seeds: Sequence[int]) -> list[ItemT]:
        """Items ``indices`` with augmentation seeded by ``seeds`` (one per item), through
        ``run_stages`` (decoding ahead when ``decode_ahead`` is on and there are two or more)."""
        decoded = (self.decode_item(i, s) for i, s in zip(indices, seeds, strict=True))
        items = list(run_stages(decoded, self, decode_ahead=self.decode_ahead and len(indices) > 1))
        if len(items) != len(indices):
            raise RuntimeError(f"{type(self).__name__}.substitute dropped an item; a map-style dataset must "
                               f"return one per index")
        return items
