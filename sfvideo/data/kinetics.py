"""Video datasets as pytorchvideo composes them: list records + a clip sampler (``SamplingParams``)
+ a decode callable (``FrameDecoder``) + a transform callable (``TrainTransform`` /
``EvalTransform``), in the two stages of ``loading.StagedMapDataset`` (decode, then augment).

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
In testing a failed video is never replaced: its item is marked ``failed`` (the evaluation
loop reports its path in ``failed_videos``).

A training item depends only on its seed (``__getitem__`` draws it from the process RNG) and on
(seed, epoch, index) for the choice of substitutes, so a batch fetched with decoding ahead
(``loading.run_stages``) holds the same items as one-by-one calls.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch

from .decoding import DecodeError, IndexFn, decode_video
from .lists import VideoRecord, resolve_path
from .loading import Rejected, StagedMapDataset, finish
from .sampling import sample_test_indices, sample_train_indices
from .transforms import EvalTransform, TrainTransform, stack_clips

logger = logging.getLogger(__name__)

MAX_SUBSTITUTE_ATTEMPTS = 10
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


@dataclass(frozen=True)
class SamplingParams:
    """The clip sampler: which frames of a video make its clips (from ``DATA.*`` / ``TEST.*``)."""

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

    def train_indices(self, rng: random.Random) -> IndexFn:
        """The frame indices of one random training clip, drawn from ``rng`` once the video is open."""
        return lambda meta: sample_train_indices(meta.num_frames, meta.fps, rng, **self.index_kwargs())

    def test_indices(self) -> IndexFn:
        """The frame indices of every test clip, clip after clip (``num_clips`` x ``num_frames``)."""

        def indices(meta):
            clips = sample_test_indices(meta.num_frames, meta.fps, num_clips=self.num_clips, **self.index_kwargs())
            return [i for c in clips for i in c]

        return indices


@dataclass(frozen=True)
class FrameDecoder:
    """The decode callable: ``(path, index_fn) -> frames`` (T, H, W, C) uint8 in host memory.

    Attributes:
        backend: one of ``decoding.BACKENDS`` (``"auto"``: the first of torchcodec, decord, PyAV that works).
        fallback: retry a failing video with the other decoders before giving up.
        seek_mode: torchcodec's ``"exact"`` or ``"approximate"`` seek mode.
        device: ``"cpu"`` or ``"cuda"`` (torchcodec's NVDEC path).
    """

    backend: str = "auto"
    fallback: bool = True
    seek_mode: str = "exact"
    device: str = "cpu"

    def __call__(self, path: str, index_fn: IndexFn, data: bytes | None = None) -> torch.Tensor:
        """Frames of ``path`` (or of the video bytes ``data``, which ``path`` then names)."""
        frames, _ = decode_video(path, index_fn, self.backend, self.fallback, seek_mode=self.seek_mode,
                                 device=self.device, data=data)
        # NVDEC frees the CPU of decoding; the augmentation still runs on the host copy
        return frames.cpu()  # (T, H, W, C) uint8


@dataclass
class Decoded:
    """What an item's decode stage hands to its augment stage."""

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


class VideoDataset(StagedMapDataset[Decoded, dict]):
    """Map-style dataset over ``VideoRecord``s for training or multi-view testing.

    Args:
        records: the list (paths as listed, label indices).
        data_dir: paths in ``records`` are relative to it unless absolute.
        mode: ``"train"`` (one random augmented clip) or ``"test"`` (all views of a video).
        sampling: the clip sampler.
        transform: ``TrainTransform`` for train, ``EvalTransform`` for test.
        decode: the decode callable, ``(path, index_fn) -> (T, H, W, C) uint8``.
        clips_per_decode: training clips per decoded span (K): the frames are decoded once and
            augmented K times independently (VideoMAE's repeated augmentation); K > 1 items hold
            (K, C, T, H, W).
        decode_ahead: in a batch fetch, decode the items one after another while a background
            thread augments the decoded ones (``loading.run_stages``).
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
        decode: Callable[[str, IndexFn], torch.Tensor] = FrameDecoder(),
        clips_per_decode: int = 1,
        decode_ahead: bool = True,
        seed: int = 0,
        max_failure_fraction: float = 0.05,
    ):
        if mode not in ("train", "test"):
            raise ValueError(f"mode must be 'train' or 'test', got {mode!r}")
        if not records:
            raise ValueError("the video list is empty")
        if clips_per_decode < 1:
            raise ValueError(f"clips_per_decode must be >= 1, got {clips_per_decode}")
        self.records = list(records)
        self.data_dir = data_dir
        self.mode = mode
        self.sampling = sampling
        self.transform = transform
        self.decode = decode
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

    # ------------------------------------------------------------------ stage 1: decode
    def decode_item(self, index: int, seed: int) -> Decoded:
        """Stage 1 of item ``index`` (``seed``: its augmentation seed, used in training)."""
        return self._decode_test(index) if self.mode == "test" else self._decode_train(index, seed)

    def _decode_train(self, index: int, seed: int, first: int = 0, failed: list[str] | None = None) -> Decoded:
        """Decode a training item's clip span, substituting unreadable videos.

        Attempt 0 augments with ``random.Random(seed)``; a substitute attempt k with a seed
        derived from (seed, k), so the item depends only on ``seed``. ``first``: the attempt to
        start at (after stage 2 rejected attempt ``first - 1``'s clip)."""
        failed = [] if failed is None else failed
        current = index if first == 0 else self._substitute_index(index, first - 1)
        for attempt in range(first, MAX_SUBSTITUTE_ATTEMPTS):
            record = self.records[current]
            rng = random.Random(seed if attempt == 0 else f"{seed}-{attempt}")
            try:
                frames = self.decode(self.full_path(record), self.sampling.train_indices(rng))  # (T, H, W, C)
                return Decoded(index, record, frames, rng, attempt, failed, seed=seed)
            except READ_ERRORS as err:
                self._record_failure(record, err, failed)
                current = self._substitute_index(index, attempt)
        raise DataFailureError(
            f"item {index}: {MAX_SUBSTITUTE_ATTEMPTS} videos in a row could not be read "
            f"(last: {failed[-1]}); check DATA.PATH_TO_DATA_DIR and the list"
        )

    def _substitute_index(self, index: int, attempt: int) -> int:
        """The video that replaces attempt ``attempt`` of item ``index``: fixed by (seed, epoch, index, attempt)."""
        return random.Random(f"{self.seed}-{self.epoch}-{index}-{attempt}").randrange(len(self.records))

    def _decode_test(self, index: int) -> Decoded:
        """Decode every clip of a test item; a failure is kept in the result, not raised."""
        record = self.records[index]
        try:
            return Decoded(index, record, self.decode(self.full_path(record), self.sampling.test_indices()))
        except READ_ERRORS as err:
            return Decoded(index, record, None, error=err)

    # ------------------------------------------------------------------ stage 2: augment (any thread)
    def augment(self, d: Decoded) -> dict[str, Any]:
        """Stage 2: the item of ``d``; raises ``loading.Rejected`` for a training clip the
        transform cannot make (``substitute`` then replaces it, in the thread that decodes)."""
        if self.mode == "test":
            return self._augment_test(d)
        try:
            return self._augment_train(d)
        except READ_ERRORS as err:
            raise Rejected(err) from err

    def _augment_train(self, d: Decoded) -> dict[str, Any]:
        return train_item(d, self.transform, self.clips_per_decode)

    def _augment_test(self, d: Decoded) -> dict[str, Any]:
        item = test_item(d, self.sampling, self.transform)
        if item["failed"]:
            self._warn(d.record.path, DecodeError(item["error"]))
        return item

    def substitute(self, d: Decoded, rejected: Rejected) -> dict[str, Any]:
        """Count ``d``'s video as failed and make the item from the next substitute attempt."""
        self._record_failure(d.record, rejected.cause, d.failed)
        return finish(self, self._decode_train(d.index, d.seed, d.attempt + 1, d.failed))

    # ------------------------------------------------------------------ failure bookkeeping (stage-1 thread)
    def _record_failure(self, record: VideoRecord, err: Exception, failed: list[str]) -> None:
        self._warn(record.path, _as_decode_error(record, err))
        failed.append(record.path)
        self.num_failed += 1
        if self.num_failed > self.max_failure_fraction * len(self.records):
            raise DataFailureError(
                f"{self.num_failed} unreadable videos in epoch {self.epoch} (of {len(self.records)} listed), "
                f"above DATA.MAX_FAILURE_FRACTION = {self.max_failure_fraction}; see the warnings for the files"
            )

    def _warn(self, path: str, err: Exception) -> None:
        if path not in self._warned:
            self._warned.add(path)
            logger.warning("unreadable video (substituted in training, reported in testing): %s", err)


def train_item(d: Decoded, transform: TrainTransform, clips_per_decode: int = 1) -> dict[str, Any]:
    """Stage 2 of a training item: the decoded frames augmented once (K times with K clips per
    decode), with the item's fields (see the module docstring)."""
    if clips_per_decode == 1:
        video = transform(d.frames, d.rng)  # (C, T, S, S)
    else:
        video = stack_clips([transform(d.frames, d.rng) for _ in range(clips_per_decode)])  # (K, C, T, S, S)
    return {"video": video, "label": d.record.label, "index": d.index,
            "num_failed": len(d.failed), "failed_path": "\n".join(d.failed)}


def test_item(d: Decoded, sampling: SamplingParams, transform: EvalTransform) -> dict[str, Any]:
    """Stage 2 of a test item: the views of every clip, or the item marked failed (``d.error``, or
    frames the transform cannot take) with the reason in ``error``."""
    item = {"label": d.record.label, "path": d.record.path, "index": d.index}
    err = d.error
    if err is None:
        try:
            clips = d.frames.view(sampling.num_clips, sampling.num_frames, *d.frames.shape[1:])  # (N, T, H, W, C)
            views = torch.cat([transform(clip) for clip in clips])  # (N*crops, C, T, S, S), clip-major
            return {**item, "video": views, "failed": False, "error": ""}
        except READ_ERRORS as caught:
            err = caught
    return {**item, "video": None, "failed": True, "error": str(_as_decode_error(d.record, err))}


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
