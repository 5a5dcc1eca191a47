"""Shards: make-shards' layout, index and resumption; the epoch plan; reading from bytes; exact
resume of the training stream without decoding what was consumed; bad samples skipped and named;
evaluation scoring every sample once; the refusal of fewer shards than reading slots; retries."""

import dataclasses
import hashlib
import io
import json
import random
import tarfile

import pytest
import torch
from torch.utils.data import DataLoader

from engine_helpers import make_video_dataset
from sfvideo.config import load_config
from sfvideo.data import build_dataset, collate_train
from sfvideo.data.decoding import available_backends, decode_video
from sfvideo.data.shards.index import ShardIndexError, expand_pattern, index_url_for
from sfvideo.data.shards.io import RetryingReader, ShardFetchError, Storage
from sfvideo.data.shards.plan import (
    EpochPlan,
    ShuffleOrder,
    batches_of_role,
    deal_shards,
    role_of,
    shard_permutation,
)
from sfvideo.data.shards.write import parse_size, sample_key
from sfvideo.engine.train_state import ConsumedData
from shard_helpers import shard_opts, write_shards


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_video_dataset(tmp_path_factory.mktemp("videos"), num_train=10)



@pytest.fixture(scope="module")
def shards(data_dir, tmp_path_factory):
    """train.txt as 4 shards of 3, 3, 3, 1 samples."""
    return write_shards(data_dir, tmp_path_factory.mktemp("shards"), max_count=3)


def cfg_for(data_dir, tmp_path, index, **extra):
    return load_config("k400_tiny.yaml", shard_opts(data_dir, tmp_path, str(index), **extra))


# ------------------------------------------------------------------------------ make-shards
def test_make_shards_layout_and_index(data_dir, shards):
    doc = json.loads(shards.read_text())
    assert doc["classes"] == ["left", "right", "up", "down"] and doc["num_samples"] == 10
    assert [s["count"] for s in doc["shards"]] == [3, 3, 3, 1]
    lines = (data_dir / "train.txt").read_text().split()
    seen = {}
    for s in doc["shards"]:
        path = shards.parent / s["name"]
        assert s["bytes"] == path.stat().st_size and s["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        with tarfile.open(path) as tar:
            names = tar.getnames()
            assert [tar.getmember(n).offset for n in names[::2]] == s["offsets"]
            for key in s["keys"]:
                meta = json.loads(tar.extractfile(f"{key}.json").read())
                video = tar.extractfile(f"{key}.mp4").read()
                assert video == (data_dir / meta["path"]).read_bytes()  # the original bytes
                assert meta["num_frames"] == 8 and meta["fps"] == pytest.approx(30, rel=0.01) and meta["duration"] > 0
                seen[meta["path"]] = (meta["label"], meta["class"])
    listed = dict(zip(lines[0::2], map(int, lines[1::2])))
    assert {p: lab for p, (lab, _) in seen.items()} == listed  # every video once, with its label
    first_shard = {json.loads(shards.read_text())["shards"][0]["keys"][i][:8] for i in range(3)}
    assert first_shard != {"00000001", "00000002", "00000003"}  # spread, not in list order


def test_make_shards_resumes_keeping_finished_shards(data_dir, shards, tmp_path):
    out = tmp_path / "s"
    write_shards(data_dir, out, max_count=3)
    before = {p.name: p.read_bytes() for p in out.glob("*.tar")}
    (out / "train-000002.tar").unlink()  # the shard being written when the run was killed
    (out / "train-000003.tar").unlink()
    from sfvideo.cli.make_shards import main

    assert main(["--list", str(data_dir / "train.txt"), "--root", str(data_dir), "--out", str(out),
                 "--max-count", "3", "--workers", "1"]) == 0
    assert {p.name: p.read_bytes() for p in out.glob("*.tar")} == before
    doc = json.loads((out / "train-shards.json").read_text())
    assert doc["command"].startswith("sfvideo make-shards --list") and len(doc["shards"]) == 4


def test_make_shards_reports_unreadable_sources_and_reencodes(data_dir, tmp_path, capsys):
    root = tmp_path / "root"
    shutil_copy = __import__("shutil").copytree
    shutil_copy(data_dir, root)
    (root / "train" / "v01.mp4").write_bytes(b"not a video")
    from sfvideo.cli.make_shards import main

    status = main(["--list", str(root / "train.txt"), "--root", str(root), "--out", str(tmp_path / "o"),
                   "--short-side", "16", "--workers", "2"])
    out = capsys.readouterr().out
    assert status == 1 and "train/v01.mp4" in out
    assert (tmp_path / "o" / "failed.txt").read_text().startswith("train/v01.mp4\t")
    doc = json.loads((tmp_path / "o" / "train-shards.json").read_text())
    assert doc["num_samples"] == 9  # never written
    with tarfile.open(tmp_path / "o" / doc["shards"][0]["name"]) as tar:
        video = tar.extractfile(doc["shards"][0]["keys"][0] + ".mp4").read()
    frames, meta = decode_video("x.mp4", lambda m: [0], backend="pyav", data=video)
    assert min(frames.shape[1:3]) == 16 and meta.num_frames == 8


def test_make_shards_needs_the_class_order_of_a_kinetics_csv(tmp_path, capsys):
    from sfvideo.cli.make_shards import main

    csv_list = tmp_path / "train.csv"
    csv_list.write_text("label,youtube_id,time_start,time_end,split\nabseiling,abc,0,10,train\n")
    assert main(["--list", str(csv_list), "--root", str(tmp_path), "--out", str(tmp_path / "o")]) == 1
    assert f"put their order in {tmp_path / 'classes.txt'}" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_sizes_keys_and_patterns():
    assert parse_size("1GB") == 1 << 30 and parse_size("1.5M") == 3 << 19 and parse_size(4096) == 4096
    with pytest.raises(ValueError, match="1 gallon"):
        parse_size("1 gallon")
    assert sample_key(42, "abseiling/a.b-c d.mp4") == "00000042_a_b-c_d"
    assert expand_pattern("s3://b/k/train-{000..002}.tar")[-1] == "s3://b/k/train-002.tar"
    assert index_url_for("https://h/k400/train-000012.tar") == "https://h/k400/train-shards.json"


# ------------------------------------------------------------------------------ decoding from memory
@pytest.mark.parametrize("backend", available_backends())
def test_decode_from_bytes_equals_decode_from_file(data_dir, backend):
    path = data_dir / "train" / "v03.mp4"
    from_file, meta_f = decode_video(path, lambda m: [0, 3, 7], backend=backend, fallback=False)
    from_bytes, meta_b = decode_video("sample#key", lambda m: [0, 3, 7], backend=backend, fallback=False,
                                      data=path.read_bytes())
    assert meta_f == meta_b and torch.equal(from_file, from_bytes)


# ------------------------------------------------------------------------------ the epoch plan
def test_plan_is_a_pure_function_and_balanced():
    counts = (5, 1, 4, 4, 2, 7, 3)
    assert shard_permutation(7, 0, 3) == shard_permutation(7, 0, 3) != shard_permutation(7, 0, 4)
    slots = deal_shards(shard_permutation(7, 0, 3), counts, 4)
    assert sorted(s for slot in slots for s in slot) == list(range(7)) and all(slots)
    loads = [sum(counts[s] for s in slot) for slot in slots]
    assert max(loads) - min(loads) <= max(counts)
    with pytest.raises(ValueError):
        deal_shards(range(3), counts, 4)
    plan = EpochPlan(counts, 0, 1, 2, 2, 4)
    assert plan.reads(1, 0).shards == tuple(plan.slots()[2])


def test_shuffle_order_restarts_exactly():
    full = ShuffleOrder(5, random.Random(3))
    outputs = [next(full) for _ in range(40)]
    assert sorted(outputs[:20]) != outputs[:20] and len(set(outputs)) == 40
    resumed = ShuffleOrder(5, random.Random(3))
    resumed.skip(13)
    assert [next(resumed) for _ in range(27)] == outputs[13:]


def test_batches_per_role_and_rotation():
    assert [batches_of_role(7, 3, r) for r in range(3)] == [3, 2, 2]
    assert sum(batches_of_role(7, 3, r, start=4) for r in range(3)) == 3
    # a loader started at batch q: worker w supplies batches q + w, q + w + W, ... as role (w + q) % W did
    for q in range(7):
        for w in range(3):
            assert batches_of_role(7, 3, role_of(w, 3, q), q) == len(range(q + w, 7, 3))


# ------------------------------------------------------------------------------ the training stream
class CountingDecoder:
    """The dataset's decoder, counting its calls in every (forked) loader worker."""

    def __init__(self, decode):
        import multiprocessing

        self.decode, self.count = decode, multiprocessing.Value("i", 0)

    def __call__(self, *args, **kwargs):
        with self.count.get_lock():
            self.count.value += 1
        return self.decode(*args, **kwargs)

    @property
    def calls(self) -> int:
        return self.count.value


def epoch_batches(ds, num_batches, start=0, positions=None, workers=2):
    ds.start_epoch(1, num_batches, start, positions)
    return list(ConsumedData(DataLoader(ds, batch_size=2, num_workers=workers, collate_fn=collate_train,
                                        drop_last=True), positions or [0] * max(1, workers)))


def test_resumed_stream_gives_the_same_batches_without_decoding_consumed_samples(data_dir, shards, tmp_path):
    cfg = cfg_for(data_dir, tmp_path, shards, **{"DATA.NUM_WORKERS": 2, "DATA.DECODE_AHEAD": False})
    ds = build_dataset(cfg, "train")
    assert ds.samples_per_rank == 10
    full = epoch_batches(ds, 5)
    assert [len(b["index"]) for b in full] == [2] * 5
    consumed = ConsumedData(full[:3], [0, 0])
    list(consumed)  # the loop took 3 batches: roles 0, 1, 0
    ds2 = build_dataset(cfg, "train")
    counting = CountingDecoder(ds2.reading.decode)
    ds2.reading = dataclasses.replace(ds2.reading, decode=counting)
    resumed = epoch_batches(ds2, 5, 3, consumed.positions)
    assert counting.calls == 4  # only the two batches still to come
    for a, b in zip(full[3:], resumed, strict=True):
        assert a["index"] == b["index"] and torch.equal(a["video"], b["video"])


# ------------------------------------------------------------------------------ bad data
def _tar_bytes(samples):
    from webdataset import TarWriter

    buf = io.BytesIO()
    with TarWriter(buf, encoder=False) as w:
        for key, files in samples:
            w.write({"__key__": key, **files})
    return buf.getvalue()


@pytest.fixture(scope="module")
def bad_shards(data_dir, tmp_path_factory):
    """Two shards: k0, k4 good; k1 undecodable, k2 without .json, k3 label 7; the second cut short
    inside m1 (its index lists m0, m1, m2). Returns their pattern."""
    from sfvideo.data.shards.index import ShardEntry, index_document, index_text

    out = tmp_path_factory.mktemp("bad")
    good = (data_dir / "train" / "v00.mp4").read_bytes()
    meta = json.dumps({"label": 1, "path": "train/v00.mp4"}).encode()
    first = [("k0", {"mp4": good, "json": meta}), ("k1", {"mp4": b"\0garbage" * 50, "json": meta}),
             ("k2", {"mp4": good}), ("k3", {"mp4": good, "json": json.dumps({"label": 7}).encode()}),
             ("k4", {"mp4": good, "json": meta})]
    second = _tar_bytes([("m0", {"mp4": good, "json": meta}), ("m1", {"mp4": good, "json": meta})])
    (out / "bad-000000.tar").write_bytes(_tar_bytes(first))
    with tarfile.open(fileobj=io.BytesIO(second)) as tar:
        cut = tar.getmember("m1.json").offset + 700
    (out / "bad-000001.tar").write_bytes(second[:cut])  # cut short inside m1
    entries = [ShardEntry("bad-000000.tar", 5, keys=tuple(k for k, _ in first)),
               ShardEntry("bad-000001.tar", 3, keys=("m0", "m1", "m2"))]
    (out / "bad-shards.json").write_text(index_text(index_document("bad", entries, [], "")))
    return out / "bad-{000000..000001}.tar"


def test_bad_samples_are_skipped_counted_and_named(data_dir, bad_shards, tmp_path, caplog):
    cfg = cfg_for(data_dir, tmp_path / "out", bad_shards, **{"DATA.NUM_WORKERS": 0})
    ds = build_dataset(cfg, "train")
    batches = epoch_batches(ds, 3, workers=0)
    consumed = ConsumedData(batches, [0])
    list(consumed)
    assert sum(len(b["index"]) for b in batches) == 6 and all(b["label"].tolist() == [1, 1] for b in batches)
    names = consumed.failed
    assert sum(sum(b["num_failed"]) for b in batches) == len(names)
    text = "\n".join(names)
    assert "bad-000000.tar#k1: " in text and "cannot be decoded" in text
    assert "bad-000000.tar#k2: no k2.json" in text
    assert "bad-000000.tar#k3: label 7 outside 0..3" in text
    assert "bad-000001.tar#m0" not in text
    assert "bad-000001.tar#m1: the shard breaks off" in text and "bad-000001.tar#m2: the shard breaks off" in text
    assert "skipped a bad training sample: " + names[0] in caplog.text


def test_a_training_run_names_the_skipped_samples_in_its_metrics(data_dir, bad_shards, tmp_path):
    from sfvideo.engine.train import train

    cfg = cfg_for(data_dir, tmp_path, bad_shards, **{"DATA.NUM_WORKERS": 0, "SOLVER.MAX_EPOCH": 1,
                                                      "TRAIN.EVAL_PERIOD": 0, "DATA.MAX_FAILURE_FRACTION": 1.0})
    assert train(cfg).step == 4
    record = json.loads((tmp_path / "metrics.jsonl").read_text())
    assert record["failed_videos"] == len(record["failed_samples"]) > 0
    assert any(name.endswith("bad-000000.tar#k3: label 7 outside 0..3 (MODEL.NUM_CLASSES 4)")
               for name in record["failed_samples"])


def test_clips_per_decode_and_segment_sampling_from_shards(data_dir, shards, tmp_path):
    cfg = cfg_for(data_dir, tmp_path, shards, **{"DATA.NUM_WORKERS": 0, "DATA.CLIPS_PER_DECODE": 2,
                                                  "DATA.SAMPLING": "segment"})
    batch = epoch_batches(build_dataset(cfg, "train"), 1, workers=0)[0]
    assert batch["video"].shape == (2, 2, 3, 4, 32, 32) and batch["video"].dtype == torch.uint8


def test_fewer_shards_than_reading_slots_is_refused(data_dir, shards, tmp_path):
    cfg = cfg_for(data_dir, tmp_path, shards, **{"DATA.NUM_WORKERS": 5})
    with pytest.raises(ShardIndexError, match=r"4 shards for 1 processes x 5 loader workers .*at least 5 shards"):
        build_dataset(cfg, "train")


def test_evaluation_reads_every_sample_once_over_ranks_and_workers(data_dir, shards, tmp_path):
    from sfvideo.engine.evaluate import list_collate

    cfg = cfg_for(data_dir, tmp_path, shards, **{"DATA.NUM_WORKERS": 2})
    ds = build_dataset(cfg, "val")
    assert len(ds) == 10
    items = []
    for rank in range(3):  # 3 processes x 2 workers = 6 slots for 4 shards: some read nothing
        ds.reading = dataclasses.replace(ds.reading, rank=rank, world=3)
        items += [it for batch in DataLoader(ds, batch_size=3, num_workers=2, collate_fn=list_collate) for it in batch]
    assert sorted(it["index"] for it in items) == list(range(10))
    lines = (data_dir / "train.txt").read_text().split()
    assert sorted(it["path"] for it in items) == sorted(lines[0::2]) and not any(it["failed"] for it in items)
    assert all(it["video"].shape == (1, 3, 4, 32, 32) for it in items)


# ------------------------------------------------------------------------------ fetching
class FlakyFile:
    """Reads from ``data`` at ``offset``; raises after ``fail_after`` bytes (once per opening)."""

    def __init__(self, data, offset, fail_after):
        self.buf, self.left = io.BytesIO(data[offset:]), fail_after

    def read(self, n=-1):
        if self.left <= 0:
            raise ConnectionResetError("connection reset by peer")
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return self.buf.read(n)

    def close(self):
        pass


def test_retrying_reader_reopens_where_it_stopped_then_gives_up():
    data = bytes(range(256)) * 4
    opened, waits = [], []

    def opener(url, storage, offset):
        opened.append(offset)
        return FlakyFile(data, offset, 300)

    r = RetryingReader("s3://b/x.tar", Storage(retries=2, backoff_s=0.5), opener=opener, sleep=waits.append)
    got = b"".join(iter(lambda: r.read(100), b""))
    assert got == data and opened == [0, 300, 600, 900] and waits == [0.5, 0.5, 0.5]

    def broken(url, storage, offset):
        raise PermissionError("Access Denied")

    r = RetryingReader("s3://b/x.tar", Storage(retries=2, backoff_s=0.5), opener=broken, sleep=waits.append)
    with pytest.raises(ShardFetchError, match=r"s3://b/x.tar: cannot be fetched \(PermissionError: Access Denied; "
                                              r"gave up after 3 attempts over 2 s\)"):
        r.read(10)
    assert waits[-2:] == [0.5, 1.0]
