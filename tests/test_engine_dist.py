"""torchrun on loopback with gloo: 2-process training equals 1 process with the same global
batch; a 2-process multi-view test scores every video exactly once, with 1-process metrics."""

import csv
import json

import pytest
import torch

from engine_helpers import make_video_dataset, run_tool, tiny_opts
from sfvideo.checkpoint import safe_load

pytestmark = pytest.mark.slow

NO_AUG = {"AUG.FLIP": False, "AUG.RAND_AUGMENT": "", "AUG.RE_PROB": 0.0, "AUG.MIXUP_ALPHA": 0.0,
          "AUG.CUTMIX_ALPHA": 0.0, "MODEL.DROP_PATH_RATE": 0.0, "TRAIN.EVAL_PERIOD": 0, "TRAIN.EMA_DECAY": 0.0}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_video_dataset(tmp_path_factory.mktemp("videos"))


@pytest.fixture(scope="module")
def single_run(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("train1")
    run_tool("train_video.py", ["--cfg", "k400_tiny.yaml", *tiny_opts(data_dir, out, **NO_AUG, **{"TRAIN.BATCH_SIZE": 4})])
    return out


def test_two_process_training_matches_one_process(data_dir, single_run, tmp_path):
    proc = run_tool("train_video.py", ["--cfg", "k400_tiny.yaml",
                                       *tiny_opts(data_dir, tmp_path, **NO_AUG, **{"TRAIN.BATCH_SIZE": 2})], nproc=2)
    assert "total batch 4 (2 x 2 processes" in proc.stdout + proc.stderr
    one = safe_load(single_run / "checkpoints" / "last.pth")
    two = safe_load(tmp_path / "checkpoints" / "last.pth")
    assert one["step"] == two["step"] == 4 and two["world_size"] == 2 and len(two["rng"]) == 2
    for k, v in one["model"].items():
        torch.testing.assert_close(two["model"][k], v, rtol=1e-4, atol=1e-5, msg=k)  # AdamW: float-rounding noise only
    # Only rank 0 writes: one metrics line per epoch.
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 2


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_two_process_test_scores_each_video_once(data_dir, single_run, tmp_path):
    ckpt = str(single_run / "checkpoints" / "last.pth")
    results = {}
    for nproc in (1, 2):
        out = tmp_path / f"test{nproc}"
        run_tool("test_video.py", ["--cfg", "k400_tiny.yaml",
                                   *tiny_opts(data_dir, out, **{"TEST.CHECKPOINT": ckpt})], nproc=nproc)
        results[nproc] = (json.loads((out / "test_results.json").read_text()), read_rows(out / "predictions.csv"))
    (r1, rows1), (r2, rows2) = results[1], results[2]
    assert len(rows1) == len(rows2) == 7
    assert [r["video"] for r in rows2] == [f"val/v{i:02d}.mp4" for i in range(7)]
    for a, b in zip(rows1, rows2):
        assert (a["video"], a["label"], a["pred"], a["top5"]) == (b["video"], b["label"], b["pred"], b["top5"])
        assert float(a["score"]) == pytest.approx(float(b["score"]), abs=1e-5)
    assert set(rows1[0]) >= {"video", "label", "pred", "top5", "score", "label_name", "pred_name"}
    for key in ("top1", "top5", "mean_class_accuracy", "clip_top1", "num_videos", "views_per_video", "failed_videos"):
        assert r1[key] == r2[key], key
    assert r1["num_videos"] == 7 and r1["views_per_video"] == 2 and r1["failed_videos"] == []
    assert r1["checkpoint"] == ckpt and r1["config"] == "k400_tiny.yaml" and "per_class_accuracy" in r1
