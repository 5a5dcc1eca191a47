"""Kinetics-style video datasets: ``__getitem__`` composes list records, decoding, index
sampling and transforms.

Training items (dict)::

    video        (C, T, H, W) uint8 (0-255); (K, C, T, H, W) when clips_per_decode K > 1
    label        int
    index        int, the item asked for (the video actually used may be a substitute)
    num_failed   int, videos that failed and were substituted while producing this item
    failed_path  str, their paths (as listed) joined with "\\n"; "" when none

Test / validation items (dict)::

    video   (V, C, T, H, W) uint8, V = clips x crops, clip-major; None when the video failed
    label   int
    path    str, the path as listed
    index   int
    failed  bool
    error   str, why it failed ("" when it did not)

Clips are uint8 so that workers, collation and host-to-device copies move a quarter of the
bytes; ``transforms.batch_to_device`` (the loops) or ``transforms.normalize_clip`` (anyone else)
turn them into the model's normalised float input.

Bad input: a video that cannot be read is, in training, logged once per file (per process),
replaced by another video chosen deterministically from (seed, epoch, index, attempt), and
counted; past ``max_failure_fraction`` of the epoch the dataset raises ``DataFailureError``.
Worker processes each count their own failures, so the training loop should sum
``num_failed`` over its batches and call ``check_failure_fraction`` at the end of the epoch.
In testing a failed video is never replaced: its item is marked ``failed`` and
``collate_test`` keeps its path in ``failed_path``.

Decode-ahead: a DataLoader fetches a whole batch through ``__getitems__``; with
``decode_ahead`` on, the next items are decoded while a background thread augments the previous
ones at the idle scheduling class (decoders and PyTorch's kernels release the GIL), so a
process's wall time per clip is close to the decoder's alone, not the sum of both. The items are
the same as item-by-item ``__getitem__`` calls with the same process RNG state: each item's
augmentation seed is drawn in order before the batch starts, and decoding and failure
bookkeeping stay in the calling thread.
"""

from __future__ import annotations

import logging
import os
import random
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
from torch.utils.data import Dataset

from .decoding import DecodeError, decode_video
from .lists import VideoRecord, resolve_path
from .memory import bound_heap_growth, release_free_memory
from .sampling import sample_test_indices, sample_train_indices
from .transforms import EvalTransform, TrainTransform, stack_clips

logger = logging.getLogger(__name__)

MAX_SUBSTITUTE_ATTEMPTS = 10
DECODE_AHEAD_ITEMS = 2  # decoded items queued ahead of the augmentation in a batch (each holds its frames)
# What an unreadable or malformed video can raise between decoding and the transforms
# (a stream that decodes to an odd frame size, say); anything else is a bug and propagates.
READ_ERRORS = (DecodeError, RuntimeError, ValueError, OSError, IndexError)


class DataFailureError(RuntimeError):
    """Too many unreadable videos: the data (paths, download, list) needs fixing."""


def check_failure_fraction(num_failed: int, num_items: int, max_fraction: float) -> None:
    """Raise ``DataFailureError`` when ``num_failed / num_items`` exceeds ``max_fraction``.

    The training loop calls this at the end of an epoch with the sum of its items'
    ``num_failed`` (gathered over ranks) and the number of items it loaded.
    """
    if num_items > 0 and num_failed / num_items > max_fraction:
        raise DataFailureError(
            f"{num_failed} of {num_items} videos ({100 * num_failed / num_items:.1f}%) could not be read this epoch, "
            f"above DATA.MAX_FAILURE_FRACTION = {max_fraction}; see the warnings for the files and fix or "
            f"remove them from the list"
        )


@dataclass
class _Decoded:
    """What an item's decode stage hands to its transform stage."""

    index: int
    record: VideoRecord
    frames: torch.Tensor | None  # (T, H, W, C) uint8; test items (N*T, H, W, C)
    rng: random.Random | None = None  # the item's augmentation RNG (training)
    attempt: int = 0  # substitute attempt that decoded (training)
    failed: list[str] = field(default_factory=list)  # videos substituted so far (training)
    error: Exception | None = None  # why the video could not be read (test)
    seed: int = 0  # the item's augmentation seed (training)


def _as_decode_error(record: VideoRecord, err: Exception) -> DecodeError:
    """``err`` as a ``DecodeError`` naming the video (kept as it is when it already is one)."""
    return err if isinstance(err, DecodeError) else DecodeError(f"{record.path}: {type(err).__name__}: {err}")


def _prepare_process() -> None:
    """Every process that decodes (workers, or the main one with num_workers 0): flat memory over
    long runs without page faults on every large buffer (see memory.py)."""
    bound_heap_growth()
    release_free_memory()


def _yield_to_decoding() -> None:
    """Initializer of the augmentation thread: on Linux it runs at the idle scheduling class, only
    on cycles the decoder's threads leave free (decoding H.264 keeps ~1.3 of 2 cores busy, in
    bursts); where that class is refused, five nice steps lower; elsewhere nothing changes."""
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


@dataclass(frozen=True)
class SamplingParams:
    """Temporal sampling settings (from ``DATA.*`` / ``TEST.*``)."""

    num_frames: int = 32
    sampling_rate: int = 2
    target_fps: float = 30.0
    pad_mode: str = "repeat_last"
    num_clips: int = 1  # test clips per video
    placement: str = "uniform"  # the peer whose indices test clips (and dense training clips) follow
    sampler: str = "dense"  # "dense" (T frames a fixed step apart) or "segment" (one per segment)

    def index_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``sampling.sample_train_indices`` / ``sample_test_indices``."""
        return dict(num_frames=self.num_frames, sampling_rate=self.sampling_rate, target_fps=self.target_fps,
                    sampling=self.sampler, placement=self.placement, pad_mode=self.pad_mode)


class VideoDataset(Dataset):
    """Map-style dataset over ``VideoRecord``s for training or multi-view testing.

    Args:
        records: the list (paths as listed, label indices).
        data_dir: paths in ``records`` are relative to it unless absolute.
        mode: ``"train"`` (one random augmented clip) or ``"test"`` (all views of a video).
        sampling: temporal settings.
        transform: ``TrainTransform`` for train, ``EvalTransform`` for test.
        decoder: one of ``decoding.BACKENDS`` (``"auto"``: the first of torchcodec, decord, PyAV that works).
        decoder_fallback: retry a failing video with the other decoders before giving up.
        seek_mode: torchcodec's ``"exact"`` or ``"approximate"`` seek mode.
        decode_device: ``"cpu"`` or ``"cuda"`` (torchcodec's NVDEC path).
        clips_per_decode: training clips per decoded span (K): the frames are decoded once and
            augmented K times independently (VideoMAE's repeated augmentation); K > 1 items hold
            (K, C, T, H, W).
        decode_ahead: in ``__getitems__`` (a loader's batch fetch), decode the items one after
            another while a background thread augments the decoded ones (see ``fetch``).
        seed: base seed for substitute choice.
        max_failure_fraction: training stops when a process sees more failures than this
            fraction of the dataset in one epoch.
    """

    def __init__(
        self,
        records: Sequence[VideoRecord],
        data_dir: str,
        mode: str,
        sampling: SamplingParams,
        transform: TrainTransform | EvalTransform,
        decoder: str = "auto",
        decoder_fallback: bool = True,
        seed: int = 0,
        max_failure_fraction: float = 0.05,
        seek_mode: str = "exact",
        decode_device: str = "cpu",
        clips_per_decode: int = 1,
        decode_ahead: bool = True,
    ):
        if mode not in ("train", "test"):
            raise ValueError(f"mode must be 'train' or 'test', got {mode!r}")
        if not records:
            raise ValueError("the video list is empty")
        self.records = list(records)
        self.data_dir = data_dir
        self.mode = mode
        self.sampling = sampling
        self.transform = transform
        self.decoder = decoder
        self.decoder_fallback = decoder_fallback
        self.seek_mode = seek_mode
        self.decode_device = decode_device
        if clips_per_decode < 1:
            raise ValueError(f"clips_per_decode must be >= 1, got {clips_per_decode}")
        self.clips_per_decode = clips_per_decode
        self.decode_ahead = decode_ahead
        self.seed = seed
        self.max_failure_fraction = max_failure_fraction
        self.epoch = 0
        self.num_failed = 0  # failures seen by this process in the current epoch
        self._warned: set[str] = set()

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        """Start a new epoch: reseeds substitutes and resets this process's failure count.

        Workers are copies made when the loader iterates, so call it before iterating (with
        ``persistent_workers`` the workers keep the epoch they started with).
        """
        self.epoch = epoch
        self.num_failed = 0

    def full_path(self, record: VideoRecord) -> str:
        return str(resolve_path(record.path, self.data_dir))

    # ------------------------------------------------------------------ loading
    def _rng(self, index: int, attempt: int) -> random.Random:
        return random.Random(f"{self.seed}-{self.epoch}-{index}-{attempt}")

    def _decode(self, record: VideoRecord, indices) -> torch.Tensor:
        frames, _ = decode_video(self.full_path(record), indices, self.decoder, self.decoder_fallback,
                                 seek_mode=self.seek_mode, device=self.decode_device)
        # NVDEC frees the CPU of decoding; the augmentation still runs here on the host copy
        return frames.cpu()  # (T, H, W, C) uint8

    # ------------------------------------------------------------------ two stages per item
    # Each item is decoded (stage 1) then transformed (stage 2); ``fetch`` runs them in turn, or
    # overlaps the decoding of the next items with the augmentation of the earlier ones.
    def _decode_train(self, index: int, seed: int, first: int = 0, failed: list[str] | None = None) -> _Decoded:
        """Stage 1 of a training item: decode its clip span, substituting unreadable videos.

        Attempt 0 augments with ``random.Random(seed)``; a substitute attempt k with a seed
        derived from (seed, k), so the item depends only on ``seed``. ``first``: the attempt to
        start at (after the transform rejected attempt ``first - 1``'s clip)."""
        failed = [] if failed is None else failed
        current = index if first == 0 else self._rng(index, first - 1).randrange(len(self.records))
        for attempt in range(first, MAX_SUBSTITUTE_ATTEMPTS):
            record = self.records[current]
            rng = random.Random(seed if attempt == 0 else f"{seed}-{attempt}")
            try:
                frames = self._decode(record, self._train_indices(rng))  # (T, H, W, C)
                return _Decoded(index, record, frames, rng, attempt, failed, seed=seed)
            except READ_ERRORS as err:
                self._record_failure(record, err, failed)
                current = self._rng(index, attempt).randrange(len(self.records))
        raise DataFailureError(
            f"item {index}: {MAX_SUBSTITUTE_ATTEMPTS} videos in a row could not be read "
            f"(last: {failed[-1]}); check DATA.PATH_TO_DATA_DIR and the list"
        )

    def _train_indices(self, rng: random.Random) -> Callable:
        s = self.sampling

        def indices(meta):
            return sample_train_indices(meta.num_frames, meta.fps, rng, **s.index_kwargs())

        return indices

    def _finish_train(self, d: _Decoded) -> dict[str, Any]:
        """Stage 2 of a training item: augment the decoded frames (K times with K clips per decode)."""
        if self.clips_per_decode == 1:
            video = self.transform(d.frames, d.rng)  # (C, T, S, S)
        else:
            video = stack_clips([self.transform(d.frames, d.rng) for _ in range(self.clips_per_decode)])  # (K, C, T, S, S)
        return {"video": video, "label": d.record.label, "index": d.index,
                "num_failed": len(d.failed), "failed_path": "\n".join(d.failed)}

    def _decode_test(self, index: int) -> _Decoded:
        """Stage 1 of a test item: decode every clip's frames; a failure is kept, not raised."""
        record, s = self.records[index], self.sampling

        def indices(meta):
            clips = sample_test_indices(meta.num_frames, meta.fps, num_clips=s.num_clips, **s.index_kwargs())
            return [i for c in clips for i in c]

        try:
            return _Decoded(index, record, self._decode(record, indices))  # (N*T, H, W, C)
        except READ_ERRORS as err:
            return _Decoded(index, record, None, error=err)

    def _finish_test(self, d: _Decoded) -> dict[str, Any]:
        """Stage 2 of a test item: the views of every clip, or the item marked failed."""
        item = {"label": d.record.label, "path": d.record.path, "index": d.index}
        err = d.error
        if err is None:
            try:
                s = self.sampling
                clips = d.frames.view(s.num_clips, s.num_frames, *d.frames.shape[1:])  # (N, T, H, W, C)
                views = torch.cat([self.transform(clip) for clip in clips])  # (N*crops, C, T, S, S), clip-major
                return {**item, "video": views, "failed": False, "error": ""}
            except READ_ERRORS as caught:
                err = caught
        err = _as_decode_error(d.record, err)
        self._warn(d.record.path, err)
        return {**item, "video": None, "failed": True, "error": str(err)}

    def _augment(self, d: _Decoded) -> tuple[dict[str, Any] | None, Exception | None]:
        """Stage 2 of any item, in any thread: the item, or why the transform rejected a training
        clip (``_substitute`` then replaces it, in the thread that decodes)."""
        if self.mode == "test":
            return self._finish_test(d), None
        try:
            return self._finish_train(d), None
        except READ_ERRORS as err:
            return None, err

    def _substitute(self, d: _Decoded, err: Exception) -> dict[str, Any]:
        """Count ``d``'s video as failed and produce the item from the next substitute attempt."""
        self._record_failure(d.record, err, d.failed)
        return self._finish(self._decode_train(d.index, d.seed, d.attempt + 1, d.failed))

    def _finish(self, d: _Decoded) -> dict[str, Any]:
        """Stage 2 of any item, in this thread, substituting a rejected training clip."""
        item, err = self._augment(d)
        return item if err is None else self._substitute(d, err)

    def _record_failure(self, record: VideoRecord, err: Exception, failed: list[str]) -> None:
        err = _as_decode_error(record, err)
        self._warn(record.path, err)
        failed.append(record.path)
        self._count_failure()

    def _warn(self, path: str, err: Exception) -> None:
        if path not in self._warned:
            self._warned.add(path)
            logger.warning("unreadable video (substituted in training, reported in testing): %s", err)

    # ------------------------------------------------------------------ items
    def _stage1(self, index: int, seed: int) -> _Decoded:
        return self._decode_test(index) if self.mode == "test" else self._decode_train(index, seed)

    def __getitem__(self, index: int) -> dict[str, Any]:
        # Augmentation draws from the process RNG (DataLoader reseeds it per worker and epoch);
        # only the choice of substitute is a pure function of (seed, epoch, index).
        return self.fetch([index], [random.getrandbits(64)])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        """A batch's items (the DataLoader's fetch): ``fetch`` with seeds drawn from the process RNG
        in order, as item-by-item ``__getitem__`` calls would draw them."""
        indices = list(indices)
        return self.fetch(indices, [random.getrandbits(64) for _ in indices])

    def fetch(self, indices: Sequence[int], seeds: Sequence[int]) -> list[dict[str, Any]]:
        """Items ``indices`` whose augmentation is seeded by ``seeds`` (one per item; what
        ``__getitem__`` draws from the process RNG).

        With ``decode_ahead`` on, this thread decodes item after item (up to ``DECODE_AHEAD_ITEMS``
        ahead of the augmentation) while one background thread augments the decoded ones at a
        lower scheduling priority: the decoder, the slower stage, keeps its cores and the
        augmentation fills the cycles it leaves idle. Decodes and all failure bookkeeping stay in
        this thread, in order, so the items are the same as one by one."""
        for _ in indices:
            _prepare_process()
        if not self.decode_ahead or len(indices) < 2:
            return [self._finish(self._stage1(i, s)) for i, s in zip(indices, seeds, strict=True)]
        items: list[dict[str, Any]] = []
        with ThreadPoolExecutor(1, thread_name_prefix="sfvideo-augment", initializer=_yield_to_decoding) as pool:
            queued: deque[tuple[_Decoded, Future]] = deque()
            for i, s in zip(indices, seeds, strict=True):
                d = self._stage1(i, s)
                queued.append((d, pool.submit(self._augment, d)))
                if len(queued) > DECODE_AHEAD_ITEMS:
                    items.append(self._collect(*queued.popleft()))
            # Nothing left to decode: augment the newest item here (if the thread has not started
            # it) while the thread finishes the older ones, instead of leaving this core idle.
            last = queued.pop() if len(queued) > 1 and queued[-1][1].cancel() else None
            last_item = self._finish(last[0]) if last is not None else None
            while queued:
                items.append(self._collect(*queued.popleft()))
            if last is not None:
                items.append(last_item)
        return items

    def _collect(self, d: _Decoded, augmented: Future) -> dict[str, Any]:
        """The background thread's stage 2 of ``d``, substituted here if the transform rejected it."""
        item, err = augmented.result()
        return item if err is None else self._substitute(d, err)

    def _count_failure(self) -> None:
        self.num_failed += 1
        limit = self.max_failure_fraction * len(self.records)
        if self.num_failed > limit:
            raise DataFailureError(
                f"{self.num_failed} unreadable videos in epoch {self.epoch} (of {len(self.records)} listed), "
                f"above DATA.MAX_FAILURE_FRACTION = {self.max_failure_fraction}; see the warnings for the files"
            )


def collate_train(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Collate training items: ``video`` stacked by ``transforms.stack_clips`` (B, C, T, H, W) or
    (B, K, C, T, H, W), in the clips' channels-last memory; ``label`` (B,) long; every other
    field a list (may hold None)."""
    batch: dict[str, Any] = {
        "video": stack_clips([it["video"] for it in items]),
        "label": torch.as_tensor([int(it["label"]) for it in items], dtype=torch.long),  # (B,)
    }
    for key in items[0]:
        if key not in batch:
            batch[key] = [it.get(key) for it in items]
    return batch


def collate_test(batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Collate test items, keeping failed videos apart.

    Returns:
        dict with ``video`` (B_ok, V, C, T, H, W) or ``None`` when every video failed,
        ``label`` (B_ok,), ``index`` (B_ok,), ``path`` (B_ok paths as listed), and for the failed
        items ``failed_path``, ``failed_label``, ``failed_error`` (lists).
    """
    ok = [b for b in batch if not b["failed"]]
    bad = [b for b in batch if b["failed"]]
    return {
        "video": torch.stack([b["video"] for b in ok]) if ok else None,
        "label": torch.tensor([b["label"] for b in ok], dtype=torch.long),
        "index": torch.tensor([b["index"] for b in ok], dtype=torch.long),
        "path": [b["path"] for b in ok],
        "failed_path": [b["path"] for b in bad],
        "failed_label": [b["label"] for b in bad],
        "failed_error": [b["error"] for b in bad],
    }


collate = collate_test  # the collate for test and validation loaders
