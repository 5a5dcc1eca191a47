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
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch.utils.data import Dataset

from .decoding import DecodeError, decode_video
from .lists import VideoRecord, resolve_path
from .memory import bound_heap_growth
from .sampling import sample_test_indices, sample_train_indices
from .transforms import EvalTransform, TrainTransform

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

    def _train_clip(self, record: VideoRecord, rng: random.Random) -> torch.Tensor:
        s = self.sampling

        def indices(meta):
            return sample_train_indices(meta.num_frames, meta.fps, rng, **s.index_kwargs())

        frames = self._decode(record, indices)  # (T, H, W, C)
        if self.clips_per_decode == 1:
            return self.transform(frames, rng)  # (C, T, S, S)
        return torch.stack([self.transform(frames, rng) for _ in range(self.clips_per_decode)])  # (K, C, T, S, S)

    def _test_views(self, record: VideoRecord) -> torch.Tensor:
        s = self.sampling

        def indices(meta):
            clips = sample_test_indices(meta.num_frames, meta.fps, num_clips=s.num_clips, **s.index_kwargs())
            return [i for c in clips for i in c]

        frames = self._decode(record, indices)  # (N*T, H, W, C)
        clips = frames.view(s.num_clips, s.num_frames, *frames.shape[1:])  # (N, T, H, W, C)
        views = [self.transform(clip) for clip in clips]  # N x (crops, C, T, S, S)
        return torch.cat(views)  # (N*crops, C, T, S, S), clip-major

    def _warn(self, path: str, err: Exception) -> None:
        if path not in self._warned:
            self._warned.add(path)
            logger.warning("unreadable video (substituted in training, reported in testing): %s", err)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if torch.utils.data.get_worker_info() is not None:
            bound_heap_growth()  # keeps the worker's memory flat over long runs (see memory.py)
        if self.mode == "test":
            return self._get_test(index)
        return self._get_train(index)

    def _get_test(self, index: int) -> dict[str, Any]:
        record = self.records[index]
        item = {"label": record.label, "path": record.path, "index": index}
        try:
            return {**item, "video": self._test_views(record), "failed": False, "error": ""}
        except READ_ERRORS as err:
            err = err if isinstance(err, DecodeError) else DecodeError(f"{record.path}: {type(err).__name__}: {err}")
            self._warn(record.path, err)
            return {**item, "video": None, "failed": True, "error": str(err)}

    def _get_train(self, index: int) -> dict[str, Any]:
        failed: list[str] = []
        current = index
        for attempt in range(MAX_SUBSTITUTE_ATTEMPTS):
            record = self.records[current]
            # Augmentation draws from the process RNG (DataLoader reseeds it per worker and
            # epoch); only the choice of substitute is a pure function of (seed, epoch, index).
            rng = random.Random(random.getrandbits(64))
            try:
                video = self._train_clip(record, rng)
            except READ_ERRORS as err:
                err = err if isinstance(err, DecodeError) else DecodeError(f"{record.path}: {type(err).__name__}: {err}")
                self._warn(record.path, err)
                failed.append(record.path)
                self._count_failure()
                current = self._rng(index, attempt).randrange(len(self.records))
                continue
            return {
                "video": video,
                "label": record.label,
                "index": index,
                "num_failed": len(failed),
                "failed_path": "\n".join(failed),
            }
        raise DataFailureError(
            f"item {index}: {MAX_SUBSTITUTE_ATTEMPTS} videos in a row could not be read "
            f"(last: {failed[-1]}); check DATA.PATH_TO_DATA_DIR and the list"
        )

    def _count_failure(self) -> None:
        self.num_failed += 1
        limit = self.max_failure_fraction * len(self.records)
        if self.num_failed > limit:
            raise DataFailureError(
                f"{self.num_failed} unreadable videos in epoch {self.epoch} (of {len(self.records)} listed), "
                f"above DATA.MAX_FAILURE_FRACTION = {self.max_failure_fraction}; see the warnings for the files"
            )


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
