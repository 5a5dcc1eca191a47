"""torchrun on loopback with gloo: 2-process training equals 1 process with the same global
batch; a 2-process multi-view test scores every video exactly once, with 1-process metrics; a run
resumed with another number of processes stays on its LR curve (a function of epochs)."""

import csv
import json
import re
import shutil

import pytest
import torch

from engine_helpers import run_tool, tiny_opts
from sfvideo.checkpoint import safe_load
from sfvideo.config import load_config
from sfvideo.engine.evaluate import run_test

pytestmark = pytest.mark.slow

NO_AUG = {"AUG.FLIP": False, "AUG.RAND_AUGMENT": "", "AUG.RE_PROB": 0.0, "AUG.MIXUP_ALPHA": 0.0,
          "AUG.CUTMIX_ALPHA": 0.0, "MODEL.DROP_PATH_RATE": 0.0, "TRAIN.EVAL_PERIOD": 0, "TRAIN.EMA_DECAY": 0.0}


@pytest.fixture(scope="module")
def data_dir(videos):
    return videos  # generated once per session (conftest)


def train_here(opts: list[str]) -> None:
    """A one-process run in this process (the multi-process runs are torchrun subprocesses)."""
    from sfvideo.engine.train import train

    assert train(load_config("k400_tiny.yaml", opts)).status == "finished"


@pytest.fixture(scope="module")
def single_run(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("train1")
    train_here(tiny_opts(data_dir, out, **NO_AUG, **{"TRAIN.BATCH_SIZE": 4}))
    return out


@pytest.fixture(scope="module")
def two_proc_run(data_dir, tmp_path_factory):
    """2 processes x batch 2: 2 steps per epoch."""
    out = tmp_path_factory.mktemp("train2")
    proc = run_tool("train_video.py", ["--cfg", "k400_tiny.yaml",
                                       *tiny_opts(data_dir, out, **NO_AUG, **{"TRAIN.BATCH_SIZE": 2})], nproc=2)
    assert "total batch 4 (2 x 2 processes" in proc.stdout + proc.stderr
    return out


def test_two_process_training_matches_one_process(single_run, two_proc_run):
    tmp_path = two_proc_run
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
        opts = tiny_opts(data_dir, out, **{"TEST.CHECKPOINT": ckpt})
        if nproc == 1:
            run_test(load_config("k400_tiny.yaml", opts), config_name="k400_tiny.yaml", progress=False)
        else:
            run_tool("test_video.py", ["--cfg", "k400_tiny.yaml", *opts], nproc=nproc)
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


# ------------------------------------------------------------------ resume with another world size
@pytest.fixture(scope="module")
def one_proc_run(data_dir, tmp_path_factory):
    """1 process x batch 2 (the config of two_proc_run in one process): 4 steps per epoch."""
    out = tmp_path_factory.mktemp("train1b2")
    train_here(tiny_opts(data_dir, out, **NO_AUG, **{"TRAIN.BATCH_SIZE": 2}))
    return out


def logged_lrs(out) -> dict[float, float]:
    """{epochs of progress after the step: LR logged} from train.log's step lines."""
    found = re.findall(r"epoch (\d+)/\d+ step (\d+)/(\d+) loss \S+ lr (\S+)", (out / "train.log").read_text())
    return {int(e) - 1 + int(s) / int(n): float(lr) for e, s, n, lr in found}


def metrics(out) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("first, then", [(2, 1), (1, 2)])
def test_resume_with_another_world_size_follows_the_same_lr_curve(data_dir, one_proc_run, two_proc_run, tmp_path,
                                                                   first, then):
    original = {1: one_proc_run, 2: two_proc_run}[first]
    (tmp_path / "checkpoints").mkdir()
    shutil.copy2(original / "checkpoints" / "epoch_0001.pth", tmp_path / "checkpoints" / "last.pth")  # killed here
    proc = run_tool("train_video.py", ["--cfg", "k400_tiny.yaml",
                                       *tiny_opts(data_dir, tmp_path, **NO_AUG, **{"TRAIN.BATCH_SIZE": 2})], nproc=then)
    assert "its LR curve is kept" in proc.stdout + proc.stderr
    steps = {1: 4, 2: 2}  # steps per epoch with 1 or 2 processes of batch 2
    resumed, done = safe_load(tmp_path / "checkpoints" / "last.pth"), safe_load(original / "checkpoints" / "last.pth")
    assert resumed["epoch"] == 2 and resumed["step"] == steps[first] + steps[then]
    assert resumed["scheduler"]["peak_lr"] == done["scheduler"]["peak_lr"]  # not halved or doubled
    assert resumed["scheduler"]["last_step"] == resumed["scheduler"]["total_steps"] == 2 * steps[then]
    assert metrics(tmp_path)[-1]["lr"] == pytest.approx(metrics(original)[-1]["lr"])  # ends at SOLVER.MIN_LR
    a, b = logged_lrs(original), logged_lrs(tmp_path)
    common = [p for p in b if p in a and p > 1]
    assert common and all(b[p] == pytest.approx(a[p], rel=1e-3) for p in common), (a, b)
