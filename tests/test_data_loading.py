"""The two-stage loader (``sfvideo.data.loading``) on its own: an iterable stream of decoded samples
and a map-style dataset, decoding ahead or not; rejections substituted or dropped; the idle-class
augmentation thread; memory upkeep per sample."""

from __future__ import annotations

import os
import random
import threading

import pytest

from sfvideo.data import loading
from sfvideo.data.loading import DECODE_AHEAD_ITEMS, Rejected, StagedMapDataset, run_stages


class Squares:
    """Stage 2 squares a number; multiples of ``reject_every`` are rejected, and their substitute is
    ``-n`` (or nothing, with ``drop``). Records the thread of every call."""

    def __init__(self, reject_every: int = 0, drop: bool = False):
        self.reject_every, self.drop = reject_every, drop
        self.threads: dict[str, list[int]] = {"augment": [], "substitute": []}
        self.calls: dict[int, str] = {}

    def augment(self, n: int) -> int:
        self.threads["augment"].append(threading.get_ident())
        self.calls[n] = threading.current_thread().name
        if self.reject_every and n % self.reject_every == 0:
            raise Rejected(ValueError(f"odd frames in sample {n}"))
        return n * n

    def substitute(self, n: int, rejected: Rejected) -> int | None:
        assert isinstance(rejected.cause, ValueError) and str(n) in str(rejected)
        self.threads["substitute"].append(threading.get_ident())
        return None if self.drop else -n


def stream(n: int, log: list | None = None):
    """A stream of stage-1 results (an iterable dataset's decoded samples), logging each pull."""
    for i in range(1, n + 1):
        if log is not None:
            log.append(("decoded", i))
        yield i


@pytest.mark.parametrize("ahead", [True, False])
@pytest.mark.parametrize("drop", [False, True])
def test_a_stream_gives_its_items_in_order_with_rejections_substituted_in_the_calling_thread(ahead, drop):
    stages = Squares(reject_every=3, drop=drop)
    items = list(run_stages(stream(10), stages, decode_ahead=ahead))
    expected = [i * i if i % 3 else -i for i in range(1, 11)]
    assert items == ([x for x in expected if x > 0] if drop else expected)
    assert set(stages.threads["substitute"]) == {threading.get_ident()}  # bookkeeping stays in stage 1's thread
    assert (set(stages.threads["augment"]) != {threading.get_ident()}) == ahead  # a background thread when on


def test_decoding_runs_at_most_a_fixed_number_of_samples_ahead():
    log: list = []
    stages = Squares()
    for item in run_stages(stream(8, log), stages, decode_ahead=True):
        log.append(("yielded", item))
    for k, (event, value) in enumerate(log):
        if event == "yielded":
            decoded = sum(1 for e, _ in log[:k] if e == "decoded")
            assert decoded - int(value ** 0.5) <= DECODE_AHEAD_ITEMS + 1  # the queue bounds the frames held
    assert [v for e, v in log if e == "yielded"] == [i * i for i in range(1, 9)]


def test_the_newest_sample_is_augmented_in_the_calling_thread_once_nothing_is_left_to_decode():
    """The thread is held on the first sample until the calling thread has augmented the last one
    (which it can do only if it took that sample back from the thread's queue)."""
    last_done = threading.Event()

    class Held(Squares):
        def augment(self, n):
            if n == 1:
                assert last_done.wait(timeout=30), "the calling thread never augmented the last sample"
            out = super().augment(n)
            if n == 2:
                last_done.set()
            return out

    stages = Held()
    assert list(run_stages(stream(2), stages, decode_ahead=True)) == [1, 4]
    assert stages.calls[2] == threading.current_thread().name and stages.calls[1].startswith("sfvideo-augment")


def test_errors_other_than_a_rejection_propagate():
    class Broken(Squares):
        def augment(self, n):
            if n == 2:
                raise KeyError("a bug, not bad data")
            return super().augment(n)

    with pytest.raises(KeyError, match="a bug"):
        list(run_stages(stream(5), Broken(), decode_ahead=True))

    def failing_stream():
        yield 1
        raise OSError("the shard is gone")

    with pytest.raises(OSError, match="shard"):
        list(run_stages(failing_stream(), Squares(), decode_ahead=True))


def test_every_sample_counts_once_towards_heap_trimming(monkeypatch):
    counted, bounded = [], []
    monkeypatch.setattr(loading, "release_free_memory", lambda: counted.append(1))
    monkeypatch.setattr(loading, "bound_heap_growth", lambda: bounded.append(1))
    list(run_stages(stream(7), Squares(), decode_ahead=True))
    assert len(counted) == 7 and len(bounded) == 1


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux's")
def test_the_augmentation_thread_runs_only_on_cycles_the_decoder_leaves_idle():
    """The background thread augments at the idle scheduling class, so it never takes a core from
    the decoder's threads; the thread that decodes keeps its own class."""
    policies = []

    class Recording(Squares):
        def augment(self, n):
            policies.append(os.sched_getscheduler(0))
            return super().augment(n)

    before = os.sched_getscheduler(0)
    list(run_stages(stream(4), Recording(), decode_ahead=True))
    assert os.SCHED_IDLE in policies  # at least the first samples go to the thread
    assert set(policies) <= {os.SCHED_IDLE, before} and os.sched_getscheduler(0) == before


class Numbers(StagedMapDataset):
    """A map-style dataset: item i is i plus a random draw from its seed; even items are rejected
    once and replaced by ``1000 + i`` plus the same draw."""

    def __init__(self, decode_ahead: bool = True, drop: bool = False):
        self.decode_ahead, self.drop = decode_ahead, drop

    def __len__(self):
        return 6

    def decode_item(self, index, seed):
        return (index, random.Random(seed).random(), False)

    def augment(self, decoded):
        index, draw, substituted = decoded
        if index % 2 == 0 and not substituted:
            raise Rejected(ValueError(f"item {index}"))
        return index + draw

    def substitute(self, decoded, rejected):
        index, draw, _ = decoded
        return None if self.drop else loading.finish(self, (1000 + index, draw, True))


def test_a_map_style_batch_fetch_gives_the_items_of_one_by_one_calls():
    ahead, one_by_one = Numbers(decode_ahead=True), Numbers(decode_ahead=False)
    random.seed(4)
    singles = [one_by_one[i] for i in (5, 2, 3, 0)]
    random.seed(4)
    batch = ahead.__getitems__([5, 2, 3, 0])
    assert batch == singles and batch[1] > 1000 and batch[0] < 1000
    assert ahead.fetch([5, 2], [1, 2]) == one_by_one.fetch([5, 2], [1, 2])
    with pytest.raises(RuntimeError, match="one per index"):
        Numbers(drop=True).fetch([1, 2], [0, 0])
