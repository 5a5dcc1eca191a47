"""Randomness that does not depend on where a run was interrupted, how many workers load the data,
or which process loads an item.

* :func:`derive_seed` turns a tuple such as ``(RNG_SEED, epoch, rank)`` into an unrelated stream.
* :func:`get_rng_state` / :func:`set_rng_state` capture and restore the process RNGs as plain data
  (they go into checkpoints loadable with ``weights_only``).
* :class:`SeededDataset` draws item ``i`` of epoch ``e`` from RNGs seeded by ``(seed, e, i)``.
* :class:`WorkerInit` seeds DataLoader worker ``w`` from ``(seed, epoch, rank, w)``.
* :class:`ResumableSampler` starts an epoch after the samples a resumed run already used.
"""

from __future__ import annotations

import contextlib
import random
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler

from sfvideo.utils.seeding import derive_seed

# Salts that keep the streams derived from the same (seed, epoch, ...) apart.
ITEM_SALT = 0x5EED  # per training item (SeededDataset)
LOADER_SALT = 0xDA7A  # the DataLoader's own generator
EPOCH_SALT = 0x7A1  # the main process's RNGs at the start of an epoch (drop path, ...)
MIXUP_SALT = 0x313  # mixup/cutmix's private random.Random


def seed_all(seed: int) -> None:
    """Seed Python's, numpy's and torch's global RNGs."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def get_rng_state() -> dict[str, Any]:
    """Python, numpy, torch and CUDA RNG states as plain data (loadable with weights_only)."""
    np_state = np.random.get_state()
    cuda_ready = torch.cuda.is_available() and torch.cuda.is_initialized()
    return {
        "python": random.getstate(),
        "numpy": (np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if cuda_ready else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`get_rng_state` captured (lists come back as lists from the checkpoint)."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch_state = state["torch"]
    torch.set_rng_state(torch_state.cpu() if torch.is_tensor(torch_state) else torch.as_tensor(torch_state))
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def private_rng(obj: Any) -> random.Random | None:
    """The ``random.Random`` an object such as mixup/cutmix keeps in ``.rng``, if any."""
    rng = getattr(obj, "rng", None)
    return rng if isinstance(rng, random.Random) else None


def get_private_rng_state(obj: Any) -> tuple | None:
    """State of ``obj``'s private RNG (None when it has none)."""
    rng = private_rng(obj)
    return rng.getstate() if rng is not None else None


def set_private_rng_state(obj: Any, state: Any) -> None:
    """Restore ``obj``'s private RNG from :func:`get_private_rng_state` (no-op without either)."""
    rng = private_rng(obj)
    if rng is not None and state is not None:
        rng.setstate((state[0], tuple(state[1]), state[2]))


@contextlib.contextmanager
def seeded_rng(seed: int) -> Iterator[None]:
    """Run a block with python/numpy/torch RNGs seeded by ``seed``, then restore their states."""
    saved = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    seed_all(seed)
    try:
        yield
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])
        torch.set_rng_state(saved[2])


def reseed_epoch(seed: int, epoch: int, rank: int, mixup: Any = None) -> None:
    """Reseed the main process's RNGs (and mixup's own) for the start of ``epoch`` on ``rank``."""
    seed_all(derive_seed(seed, epoch, rank, EPOCH_SALT))
    rng = private_rng(mixup)
    if rng is not None:
        rng.seed(derive_seed(seed, epoch, rank, MIXUP_SALT))


def loader_generator(seed: int, epoch: int, rank: int) -> torch.Generator:
    """The DataLoader's generator for ``epoch`` on ``rank`` (it seeds the workers' base seed)."""
    return torch.Generator().manual_seed(derive_seed(seed, epoch, rank, LOADER_SALT))


def with_index(item: Any, index: int) -> Any:
    """A dict item gets ``index`` unless it has one."""
    if isinstance(item, dict):
        item.setdefault("index", index)
    return item


class SeededDataset(Dataset):
    """Wraps a training dataset so item ``i`` of epoch ``e`` draws its augmentation from
    RNGs seeded by ``(seed, e, i)`` whichever worker or process loads it; adds ``index``."""

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset = dataset
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.dataset, "set_epoch"):  # substitute choice and failure count are per epoch
            self.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        with seeded_rng(derive_seed(self.seed, self.epoch, index, ITEM_SALT)):
            item = self.dataset[index]
        return with_index(item, index)

    def __getitems__(self, indices: Sequence[int]) -> list:
        """A batch (the DataLoader's fetch). A dataset with ``fetch(indices, seeds)`` (``VideoDataset``,
        which then decodes ahead in a thread) gets each item's seed as ``__getitem__`` would draw
        it, so the items are the same either way; any other dataset is read item by item."""
        fetch = getattr(self.dataset, "fetch", None)
        if fetch is None:
            return [self[i] for i in indices]
        seeds = []
        for i in indices:
            with seeded_rng(derive_seed(self.seed, self.epoch, i, ITEM_SALT)):
                seeds.append(random.getrandbits(64))  # the first draw of the item's __getitem__
        return [with_index(item, i) for i, item in zip(indices, fetch(list(indices), seeds), strict=True)]


class WorkerInit:
    """Picklable ``worker_init_fn`` seeding worker ``w`` from ``(seed, epoch, rank, w)`` (and
    leaving a process group's stop signals to the main process: ``loaders.shield_worker``)."""

    shields_stop_signals = True  # ``loaders.start_loader`` forks its workers with them blocked

    def __init__(self, seed: int, epoch: int, rank: int):
        self.seed, self.epoch, self.rank = seed, epoch, rank

    def __call__(self, worker_id: int) -> None:
        from sfvideo.engine.loaders import shield_worker

        shield_worker(worker_id)
        seed_all(derive_seed(self.seed, self.epoch, self.rank, worker_id))


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` that can start an epoch after its first ``skip`` indices."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.skip = 0

    def __iter__(self):
        indices = list(super().__iter__())
        return iter(indices[self.skip:])

    def __len__(self) -> int:
        return max(0, self.num_samples - self.skip)
