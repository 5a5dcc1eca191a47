"""Datasets: item shapes, view order, crop positions, bad input in train and test, the loader."""

from __future__ import annotations

import logging

import pytest
import torch
from torch.utils.data import DataLoader

from _data_helpers import corrupt_variants, make_video
from sfvideo.config import load_config
from sfvideo.data import DataFailureError, build_dataset, build_mixup, check_failure_fraction
from sfvideo.data.transforms import batch_to_device, normalize_clip

BASE = [
    "DATA.NUM_FRAMES", "4", "DATA.SAMPLING_RATE", "2", "DATA.TRAIN_JITTER_SCALES", "[40, 48]",
    "DATA.TRAIN_CROP_SIZE", "32", "DATA.TEST_CROP_SIZE", "32", "DATA.CLASS_NAMES", "", "MODEL.NUM_CLASSES", "4",
    "TEST.NUM_ENSEMBLE_VIEWS", "2", "TEST.NUM_SPATIAL_CROPS", "3", "AUG.RAND_AUGMENT", "rand-m7-n2",
    "DATA.MAX_FAILURE_FRACTION", "0.5",
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    for label in range(3):
        make_video(root / f"class {label}" / f"v{label}.mp4", num_frames=24, marker="left" if label == 0 else None)
    corrupt_variants(root / "class 0" / "v0.mp4", root)
    good = "".join(f"class {i}/v{i}.mp4 {i}\n" for i in range(3))
    (root / "train.txt").write_text(good)
    (root / "val.txt").write_text(good)
    (root / "test.txt").write_text(good)
    return root


def _cfg(data_dir, *opts):
    return load_config(None, ["DATA.PATH_TO_DATA_DIR", str(data_dir), *BASE, *opts])


@pytest.mark.parametrize("decoder", ["auto", "torchcodec", "decord", "pyav"])
def test_train_items(data_dir, decoder):
    ds = build_dataset(_cfg(data_dir, "DATA.DECODER", decoder), "train")
    assert len(ds) == 3
    item = ds[1]
    assert item["video"].shape == (3, 4, 32, 32) and item["video"].dtype == torch.uint8
    assert item["label"] == 1 and item["index"] == 1
    assert item["num_failed"] == 0 and item["failed_path"] == ""


def test_train_random_resized_crop(data_dir):
    ds = build_dataset(_cfg(data_dir, "DATA.RANDOM_RESIZED_CROP", "True", "AUG.RE_PROB", "1.0"), "train")
    assert ds[0]["video"].shape == (3, 4, 32, 32)


def test_test_items_views_clip_major(data_dir):
    ds = build_dataset(_cfg(data_dir), "test")
    item = ds[0]
    assert item["video"].shape == (6, 3, 4, 32, 32)  # 2 clips x 3 crops
    assert item["path"] == "class 0/v0.mp4" and item["label"] == 0 and not item["failed"]
    # clip-major: views 0..2 are clip 0's left/centre/right crops; the red band is at the left.
    assert item["video"].dtype == torch.uint8
    red = [bool(((v[0] > 230) & (v[1] < 30)).any()) for v in item["video"]]  # v (C, T, H, W)
    assert red == [True, False, False, True, False, False]


def test_val_is_single_centre_view(data_dir):
    item = build_dataset(_cfg(data_dir), "val")[0]
    assert item["video"].shape == (1, 3, 4, 32, 32)
    assert item["video"].dtype == torch.uint8
    assert not bool(((item["video"][0, 0] > 230) & (item["video"][0, 1] < 30)).any())


def test_test_split_val_reads_val_list(data_dir):
    (data_dir / "val_only.txt").write_text("class 2/v2.mp4 2\n")
    ds = build_dataset(_cfg(data_dir, "TEST.SPLIT", "val", "DATA.VAL_LIST", "val_only.txt"), "test")
    assert len(ds) == 1 and ds[0]["label"] == 2


def _bad_list(data_dir, kind):
    name = f"bad_{kind}.txt"
    (data_dir / name).write_text("".join(f"class {i}/v{i}.mp4 {i}\n" for i in range(3)) + f"{kind}.mp4 3\n")
    return name


@pytest.mark.parametrize("kind", ["corrupt", "truncated", "zero", "missing"])
def test_train_substitutes_bad_video(data_dir, kind, caplog):
    ds = build_dataset(_cfg(data_dir, "DATA.TRAIN_LIST", _bad_list(data_dir, kind)), "train")
    with caplog.at_level(logging.WARNING):
        item = ds[3]
        again = ds[3]
    assert item["video"].shape == (3, 4, 32, 32)
    assert item["num_failed"] == 1 and item["failed_path"] == f"{kind}.mp4"
    assert item["label"] in (0, 1, 2) and item["index"] == 3
    assert again["label"] == item["label"]  # substitute is deterministic for (seed, epoch, index)
    assert ds.num_failed == 2
    assert sum(f"{kind}.mp4" in r.getMessage() for r in caplog.records) == 1  # warned once per file
    ds.set_epoch(1)
    assert ds.num_failed == 0


def test_train_stops_past_failure_fraction(data_dir):
    ds = build_dataset(_cfg(data_dir, "DATA.TRAIN_LIST", _bad_list(data_dir, "zero"), "DATA.MAX_FAILURE_FRACTION", "0.3"), "train")
    ds[3]  # 1 failure of 4 videos: 0.25 is allowed
    with pytest.raises(DataFailureError, match="MAX_FAILURE_FRACTION"):
        ds[3]


def test_check_failure_fraction():
    check_failure_fraction(5, 100, 0.05)
    with pytest.raises(DataFailureError, match="6 of 100"):
        check_failure_fraction(6, 100, 0.05)


@pytest.mark.parametrize("kind", ["corrupt", "truncated", "zero", "missing"])
def test_test_marks_bad_video_failed_and_the_eval_loader_keeps_it(data_dir, kind):
    from sfvideo.engine.evaluate import eval_loader

    ds = build_dataset(_cfg(data_dir, "DATA.TEST_LIST", _bad_list(data_dir, kind)), "test")
    item = ds[3]
    assert item["failed"] and item["video"] is None and item["path"] == f"{kind}.mp4"
    assert f"{kind}.mp4" in item["error"]
    (batch,) = list(eval_loader(ds, batch_size=4, num_workers=0))  # items kept as a list
    assert [it["path"] for it in batch] == ["class 0/v0.mp4", "class 1/v1.mp4", "class 2/v2.mp4", f"{kind}.mp4"]
    assert [it["failed"] for it in batch] == [False, False, False, True] and batch[3]["video"] is None
    assert batch[0]["video"].shape == (6, 3, 4, 32, 32) and batch[3]["label"] == 3


def test_the_eval_loader_fetches_a_shards_batch_at_once_with_the_items_of_one_by_one_calls(data_dir, monkeypatch):
    """Test and validation batches go through the dataset's ``__getitems__`` (which decodes ahead),
    with the shard's dataset indices; datasets without it are read item by item."""
    from sfvideo.engine.evaluate import eval_loader, shard

    ds = build_dataset(_cfg(data_dir, "DATA.TEST_LIST", _bad_list(data_dir, "zero")), "test")
    one_by_one = [ds[i] for i in range(len(ds))]
    fetched, fetch = [], ds.fetch
    monkeypatch.setattr(ds, "fetch", lambda indices, seeds: fetched.append(list(indices)) or fetch(indices, seeds))
    (batch,) = list(eval_loader(ds, batch_size=4))
    assert fetched == [[0, 1, 2, 3]]
    for got, want in zip(batch, one_by_one, strict=True):
        assert got.keys() == want.keys() and got["index"] == want["index"] and got["failed"] == want["failed"]
        assert got["video"] is None if want["failed"] else torch.equal(got["video"], want["video"])
    fetched.clear()
    assert [item["index"] for item in shard(ds, rank=1, world=2).__getitems__([0, 1])] == [1, 3]
    assert fetched == [[1, 3]]

    class Plain(torch.utils.data.Dataset):  # no __getitems__, items without an index
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return {"value": 10 * i}

    assert shard(Plain(), rank=0, world=2).__getitems__([0, 1]) == [{"value": 0, "index": 0}, {"value": 20, "index": 2}]


def test_loader_with_workers_and_mixup(data_dir):
    from sfvideo.data import collate_train

    cfg = _cfg(data_dir, "DATA.TRAIN_LIST", _bad_list(data_dir, "truncated"))
    ds = build_dataset(cfg, "train")
    loader = DataLoader(ds, batch_size=2, num_workers=2, shuffle=False, collate_fn=collate_train)
    batches = list(loader)
    assert sum(sum(b["num_failed"]) for b in batches) == 1  # aggregated across workers
    assert [p for b in batches for p in b["failed_path"] if p] == ["truncated.mp4"]
    assert batches[0]["video"].dtype == torch.uint8  # a quarter of the bytes through the workers
    assert batches[0]["video"].stride(1) == 1  # channels-last memory made in the worker's shared memory
    clips, labels = batch_to_device(batches[0]["video"], batches[0]["label"], "cpu", cfg.DATA.MEAN, cfg.DATA.STD)
    assert clips.dtype == torch.float32
    clips, targets = build_mixup(cfg)(clips, labels)
    assert clips.shape == (2, 3, 4, 32, 32) and targets.shape == (2, 4)
    assert targets.sum(1).tolist() == pytest.approx([1.0, 1.0])


def test_build_test_views_equals_dataset_item(data_dir):
    from sfvideo.data import DecodeError, build_test_views

    cfg = _cfg(data_dir)
    views = build_test_views(cfg, data_dir / "class 1" / "v1.mp4")
    assert torch.equal(views, build_dataset(cfg, "test")[1]["video"])
    with pytest.raises(DecodeError, match="zero.mp4"):
        build_test_views(cfg, data_dir / "zero.mp4")


def test_clips_per_decode_decodes_once_and_augments_each_clip(data_dir, monkeypatch):
    from sfvideo.data import kinetics

    calls = []
    real = kinetics.decode_video
    monkeypatch.setattr(kinetics, "decode_video", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    cfg = _cfg(data_dir, "DATA.CLIPS_PER_DECODE", "3", "AUG.RAND_AUGMENT", "", "DATA.TRAIN_JITTER_SCALES", "[32, 64]")
    ds = build_dataset(cfg, "train")
    item = ds[0]
    assert calls == [ds.full_path(ds.records[0])]  # one decode for the three clips
    assert item["video"].shape == (3, 3, 4, 32, 32) and item["video"].dtype == torch.uint8
    assert not (torch.equal(item["video"][0], item["video"][1]) and torch.equal(item["video"][1], item["video"][2]))
    batch = next(iter(DataLoader(ds, batch_size=2, shuffle=False)))  # (B, K, C, T, H, W)
    clips, labels = batch_to_device(batch["video"], batch["label"], "cpu", cfg.DATA.MEAN, cfg.DATA.STD)
    assert clips.shape == (6, 3, 4, 32, 32) and labels.tolist() == [0, 0, 0, 1, 1, 1]
    # validation and test items are unaffected
    assert build_dataset(cfg, "val")[0]["video"].shape == (1, 3, 4, 32, 32)


def test_normalize_clip_matches_the_formula(data_dir):
    cfg = _cfg(data_dir)
    views = build_dataset(cfg, "test")[0]["video"]  # (V, C, T, H, W) uint8
    out = normalize_clip(views, cfg.DATA.MEAN, cfg.DATA.STD)
    mean = torch.tensor(cfg.DATA.MEAN).view(3, 1, 1, 1)
    std = torch.tensor(cfg.DATA.STD).view(3, 1, 1, 1)
    assert out.dtype == torch.float32 and out.shape == views.shape
    assert torch.allclose(out, (views.float() / 255 - mean) / std, atol=1e-5)
    with pytest.raises(TypeError, match="uint8"):
        normalize_clip(out, cfg.DATA.MEAN, cfg.DATA.STD)


def _items_equal(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if torch.is_tensor(a[key]):
            assert torch.equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key


@pytest.mark.parametrize("split, kind, k", [("train", "zero", 1), ("train", "corrupt", 2), ("test", "truncated", 1)])
def test_decode_ahead_gives_the_items_of_one_by_one_calls(data_dir, split, kind, k):
    """``__getitems__`` (decoding one item ahead in a thread) returns exactly what ``__getitem__``
    calls in the same order return from the same process RNG state, bad videos included."""
    import random

    key = "DATA.TRAIN_LIST" if split == "train" else "DATA.TEST_LIST"
    ds = build_dataset(_cfg(data_dir, key, _bad_list(data_dir, kind), "DATA.CLIPS_PER_DECODE", str(k),
                            "DATA.MAX_FAILURE_FRACTION", "1.0"), split)
    order = [3, 0, 2, 3, 1]
    random.seed(7)
    one_by_one = [ds[i] for i in order]
    random.seed(7)
    batch = ds.__getitems__(order)
    for a, b in zip(one_by_one, batch, strict=True):
        _items_equal(a, b)
    if split == "train":
        assert batch[0]["num_failed"] == 1 and ds.num_failed == 4  # two bad draws in each pass
    else:
        assert batch[0]["failed"] and batch[3]["failed"] and not batch[1]["failed"]


def test_decode_ahead_substitutes_a_clip_the_transform_rejects(data_dir, monkeypatch):
    """A training clip that fails in the transform stage (e.g. frames of an impossible size) is
    counted and substituted like an unreadable video, also while the next item is decoding."""
    import random

    ds = build_dataset(_cfg(data_dir), "train")
    real = ds.transform

    def picky(frames, rng):
        if frames.shape[0] and int(frames[0, 0, 0].sum()) == int(ds._reject_sum):
            raise ValueError("rejected")
        return real(frames, rng)

    first = ds.decode_item(0, 1).frames
    object.__setattr__(ds, "_reject_sum", int(first[0, 0, 0].sum()))
    ds.transform = picky
    random.seed(3)
    items = ds.__getitems__([0, 1, 2])
    assert items[0]["num_failed"] == 1 and items[0]["failed_path"] == "class 0/v0.mp4"
    assert [it["num_failed"] for it in items[1:]] == [0, 0] and ds.num_failed == 1


def test_loader_uses_decode_ahead_and_can_turn_it_off(data_dir):
    on = build_dataset(_cfg(data_dir), "train")
    off = build_dataset(_cfg(data_dir, "DATA.DECODE_AHEAD", "False"), "train")
    assert on.decode_ahead and not off.decode_ahead
    calls = []
    fetch = on.__getitems__
    on.__getitems__ = lambda indices: calls.append(list(indices)) or fetch(indices)  # the loader's batch fetch
    import random

    random.seed(0)  # with num_workers 0 the items draw from this process's RNG
    a = next(iter(DataLoader(on, batch_size=3, num_workers=0)))
    random.seed(0)
    b = next(iter(DataLoader(off, batch_size=3, num_workers=0)))
    assert torch.equal(a["video"], b["video"]) and a["label"].tolist() == b["label"].tolist()
    assert calls == [[0, 1, 2]]


def test_training_clips_are_channels_last_views_they_own(data_dir):
    """Training clips keep the channels-innermost memory of decoding and augmentation (no
    reordering copy); they never share memory with the decoded frames, so erasing one of K
    clips per decode cannot leak into the others."""
    from sfvideo.data import collate_train

    cfg = _cfg(data_dir, "DATA.CLIPS_PER_DECODE", "2", "AUG.RAND_AUGMENT", "", "AUG.RE_PROB", "1.0",
               "DATA.TRAIN_JITTER_SCALES", "[32, 32]")  # crop = whole short side: no resize, no copy by ops
    item = build_dataset(cfg, "train")[0]
    video = item["video"]  # (K, C, T, H, W)
    assert video.shape == (2, 3, 4, 32, 32) and video.stride(1) == 1  # channels innermost
    assert not torch.equal(video[0], video[1])  # each clip erased in its own box
    batch = collate_train([item, item])
    assert batch["video"].shape == (2, 2, 3, 4, 32, 32) and torch.equal(batch["video"][1], video)
    assert batch["video"].stride(2) == 1 and batch["label"].dtype == torch.long


def test_seeded_training_set_decodes_ahead_with_the_items_of_one_by_one_calls(data_dir):
    """The trainer's ``SeededDataset`` passes each item's own seed to ``VideoDataset.fetch``, so a
    batch fetch (decoding ahead) gives exactly its item-by-item items, in any process state."""
    import random

    from sfvideo.engine.determinism import SeededDataset

    ds = build_dataset(_cfg(data_dir, "DATA.TRAIN_LIST", _bad_list(data_dir, "corrupt"),
                            "DATA.MAX_FAILURE_FRACTION", "1.0"), "train")
    seeded = SeededDataset(ds, seed=5)
    seeded.set_epoch(2)
    calls = []
    fetch = ds.fetch
    ds.fetch = lambda indices, seeds: calls.append(len(indices)) or fetch(indices, seeds)
    random.seed(0)
    batch = seeded.__getitems__([3, 1, 0, 2])
    random.seed(123)  # the process RNG does not matter
    one_by_one = [seeded[i] for i in [3, 1, 0, 2]]
    assert calls[0] == 4 and ds.decode_ahead
    for a, b in zip(one_by_one, batch, strict=True):
        _items_equal(a, b)
    assert batch[0]["num_failed"] == 1 and [it["index"] for it in batch] == [3, 1, 0, 2]
