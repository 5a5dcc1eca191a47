"""Training and testing from shards: a SIGTERM mid-epoch, and a SIGKILL after a periodic
checkpoint, resume to parameters identical to the uninterrupted run's; two gloo processes x two
loader workers over uneven shards take the same steps and finish; a multi-view test from shards
scores every video once, as from the lists."""

import json
import signal

import pytest
import torch

from engine_helpers import make_video_dataset, run_tool, train_until_signal
from sfvideo.checkpoint import safe_load
from sfvideo.config import load_config
from sfvideo.engine.train import train
from shard_helpers import shard_opts, write_shards

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_video_dataset(tmp_path_factory.mktemp("videos"), num_train=10)

WORKERS = {"DATA.NUM_WORKERS": 2, "TRAIN.EVAL_PERIOD": 2}





@pytest.fixture(scope="module")
def shards(data_dir, tmp_path_factory):
    """train.txt as 4 uneven shards (3, 3, 3, 1 samples), val.txt as 2."""
    out = tmp_path_factory.mktemp("shards")
    write_shards(data_dir, out, "val", max_count=4)
    return str(write_shards(data_dir, out, max_count=3)), str(out / "val-shards.json")


def opts(data_dir, out, shards, **extra):
    return shard_opts(data_dir, out, shards[0], shards[1], **{**WORKERS, **extra})


@pytest.fixture(scope="module")
def reference(data_dir, shards, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    result = train(load_config("k400_tiny.yaml", opts(data_dir, out, shards)))
    assert result.status == "finished" and result.step == 10  # 10 samples, batch 2: 5 steps per epoch
    return out


def weights(out):
    return safe_load(out / "checkpoints" / "last.pth")["model"]


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_sigterm_mid_epoch_resumes_exactly_from_shards(data_dir, shards, reference, tmp_path):
    status, log = train_until_signal(opts(data_dir, tmp_path, shards), "epoch 2/2 step 2/5", signal.SIGTERM)
    assert status == 128 + signal.SIGTERM and "stopped by SIGTERM" in log, log
    ckpt = safe_load(tmp_path / "checkpoints" / "last.pth")
    assert ckpt["epoch"] == 1 and 0 < ckpt["step_in_epoch"] < 5
    assert [d["positions"] for d in ckpt["data_state"]][0] != [0, 0]
    result = train(load_config("k400_tiny.yaml", opts(data_dir, tmp_path, shards)))
    assert result.status == "finished" and result.step == 10
    assert_same_weights(weights(tmp_path), weights(reference))


def test_sigkill_after_a_periodic_checkpoint_resumes_exactly_from_shards(data_dir, shards, reference, tmp_path):
    o = opts(data_dir, tmp_path, shards, **{"TRAIN.CHECKPOINT_MINUTES": 1e-6})  # due at every step
    status, log = train_until_signal(o, "periodic checkpoint at epoch 2, step 3/5", signal.SIGKILL)
    assert status == -signal.SIGKILL, log
    ckpt = safe_load(tmp_path / "checkpoints" / "last.pth")
    assert ckpt["epoch"] == 1 and ckpt["step_in_epoch"] >= 3, (ckpt["epoch"], ckpt["step_in_epoch"])
    result = train(load_config("k400_tiny.yaml", o))
    assert result.status == "finished" and result.step == 10
    assert_same_weights(weights(tmp_path), weights(reference))
    record = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["epoch"] == 2 and record["failed_videos"] == 0 and record["failed_samples"] == []


def test_two_processes_two_workers_over_uneven_shards(data_dir, shards, tmp_path):
    proc = run_tool("train_video.py", ["--cfg", "k400_tiny.yaml", *opts(data_dir, tmp_path, shards)], nproc=2,
                    timeout=600)
    assert "total batch 4 (2 x 2 processes" in proc.stdout + proc.stderr
    ckpt = safe_load(tmp_path / "checkpoints" / "last.pth")
    assert ckpt["world_size"] == 2 and ckpt["step"] == 4  # 10 samples / 2 processes / batch 2: 2 steps an epoch
    assert [json.loads(x)["epoch"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [1, 2]


def test_multi_view_test_from_shards_scores_each_video_once(data_dir, shards, reference, tmp_path):
    ckpt = str(reference / "checkpoints" / "last.pth")
    results = {}
    for fmt, nproc in (("lists", 1), ("shards", 2)):
        out = tmp_path / fmt
        o = opts(data_dir, out, shards, **{"TEST.CHECKPOINT": ckpt, "DATA.FORMAT": fmt})
        run_tool("test_video.py", ["--cfg", "k400_tiny.yaml", *o], nproc=nproc, timeout=600)
        results[fmt] = json.loads((out / "test_results.json").read_text())
        results[fmt + "_rows"] = (out / "predictions.csv").read_text().splitlines()
    assert results["shards"]["num_videos"] == results["lists"]["num_videos"] == 7
    assert results["shards"]["failed_videos"] == []
    for key in ("top1", "top5", "mean_class_accuracy", "clip_top1"):
        assert results["shards"][key] == pytest.approx(results["lists"][key], abs=1e-6), key
    assert sorted(results["shards_rows"]) == sorted(results["lists_rows"])
