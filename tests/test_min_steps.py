"""A recipe holds on small data: SOLVER.MIN_STEPS raises the epochs of a run whose data gives
too few optimiser steps (the log says so once), build-lists and the start of training say how many
steps the run takes, and the toy recipe on its full set (`make demo`) is unchanged."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest

from engine_helpers import ROOT, make_video_dataset, tiny_opts, wait_for
from sfvideo.config import load_config
from sfvideo.engine.plan import epoch_steps, planned_epochs, steps_line

FAST = {"TRAIN.EVAL_PERIOD": 0, "TRAIN.EMA_DECAY": 0.0, "AUG.RAND_AUGMENT": "", "AUG.RE_PROB": 0.0}


def test_epochs_are_raised_to_reach_the_minimum():
    cfg = load_config("toy_tiny.yaml")
    assert epoch_steps(cfg, 160) == 20 and planned_epochs(cfg, 20) == cfg.SOLVER.MIN_STEPS // 20
    assert planned_epochs(cfg, 21) * 21 >= cfg.SOLVER.MIN_STEPS > (planned_epochs(cfg, 21) - 1) * 21
    assert planned_epochs(load_config("toy_tiny.yaml", ["SOLVER.MIN_STEPS", "0"]), 20) == 7
    capped = load_config("toy_tiny.yaml", ["TRAIN.MAX_STEPS_PER_EPOCH", "2"])
    assert planned_epochs(capped, 2) == 7  # a capped epoch is a smoke test: left as asked
    assert epoch_steps(cfg, 160, world_size=2) == 10  # each process's share


def test_the_toy_recipe_on_its_full_set_is_unchanged():
    """`make demo` trains the toy recipe on 8 x 240 clips: 7 epochs of 240 steps, as before."""
    from sfvideo.data import toy

    cfg = load_config("toy_tiny.yaml")
    clips = len(toy.CLASS_NAMES) * toy.DEFAULT_TRAIN_PER_CLASS
    steps = epoch_steps(cfg, clips)
    assert (steps, planned_epochs(cfg, steps)) == (240, 7) and 7 * 240 >= cfg.SOLVER.MIN_STEPS > 0
    assert "raised" not in steps_line(cfg, steps)


def test_the_toy_recipe_on_20_videos_a_class_trains_as_many_steps_as_on_its_full_set():
    cfg = load_config("toy_tiny.yaml")
    line = steps_line(cfg, epoch_steps(cfg, 160))
    assert line == ("84 epochs x 20 optimiser steps = 1680 steps (SOLVER.MAX_EPOCH 7 raised to reach "
                    "SOLVER.MIN_STEPS 1680)")


def test_a_raised_run_keeps_the_recipes_warm_up_steps():
    """The warm-up is part of the schedule set for the recipe's steps: 0.25 of a 240-step epoch is
    60 steps on the full toy set, and stays 60 (3 of the 84 epochs) on 20 videos a class."""
    from sfvideo.engine.optim import build_schedule
    from sfvideo.engine.train import _with_planned_epochs

    cfg = load_config("toy_tiny.yaml")
    warmups = {}
    for clips in (1920, 160, 168):
        steps = epoch_steps(cfg, clips)
        schedule = build_schedule(_with_planned_epochs(cfg, steps), None, steps, 1e-3)
        warmups[clips] = (schedule.warmup_steps, schedule.total_steps)
    assert warmups == {1920: (60, 1680), 160: (60, 1680), 168: (60, 1680)}  # 168: 80 epochs of 21 steps
    unraised = load_config("toy_tiny.yaml", ["SOLVER.MIN_STEPS", "0"])
    assert build_schedule(_with_planned_epochs(unraised, 20), None, 20, 1e-3).warmup_steps == 5


def test_training_raises_the_epochs_says_so_once_and_states_the_steps(tmp_path):
    from sfvideo.engine.train import train

    data = make_video_dataset(tmp_path / "videos", num_train=4, num_val=2)
    out = tmp_path / "run"
    cfg = load_config("k400_tiny.yaml", tiny_opts(data, out, **FAST, **{"SOLVER.MAX_EPOCH": 1,
                                                                         "SOLVER.MIN_STEPS": 5}))
    result = train(cfg)  # 4 clips at batch 2: 2 steps an epoch, 3 epochs reach 5 steps
    assert result.status == "finished" and (result.epoch, result.step) == (3, 6)
    log = (out / "train.log").read_text()
    assert log.count("SOLVER.MAX_EPOCH 1 raised to 3") == 1 and "SOLVER.WARMUP_EPOCHS 1 to 3" in log
    assert "3 epochs x 2 optimiser steps = 6 steps" in log
    assert "MAX_EPOCH: 1" in (out / "config.yaml").read_text()  # the config as given


def test_build_lists_says_how_many_steps_the_recipe_takes(tmp_path):
    import numpy as np

    from sfvideo.data.encode import write_video

    root = tmp_path / "videos"
    frames = (np.random.default_rng(0).random((4, 32, 32, 3)) * 255).astype(np.uint8)
    for c in ("a", "b"):
        for i in range(10):
            write_video(root / c / f"{i}.mp4", frames)
    res = subprocess.run([sys.executable, str(ROOT / "tools/build_lists.py"), "--format", "folder", "--root",
                          str(root), "--out-dir", str(root), "--val-fraction", "0.2"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    cfg = load_config("finetune_folder_tiny.yaml", ["MODEL.NUM_CLASSES", "2"])
    want = steps_line(cfg, epoch_steps(cfg, 16))
    assert f"finetune_folder_tiny.yaml: {want}" in res.stdout
    res = subprocess.run([sys.executable, str(ROOT / "tools/build_lists.py"), "--format", "folder", "--root",
                          str(root), "--out-dir", str(tmp_path / "o"), "--cfg", "toy_tiny.yaml"],
                         capture_output=True, text=True, timeout=120)
    toy = load_config("toy_tiny.yaml")
    assert f"toy_tiny.yaml: {steps_line(toy, epoch_steps(toy, 16))}" in res.stdout


@pytest.mark.slow
def test_the_small_data_benchmark_runs_at_a_tiny_scale(tmp_path):
    """The acceptance measurement (tools/benchmark_small_data.py) end to end, a few seconds long."""
    results = tmp_path / "small.csv"
    tiny = ["MODEL.ARCH", "video_test", "DATA.NUM_FRAMES", "4", "DATA.TRAIN_CROP_SIZE", "32",
            "DATA.TEST_CROP_SIZE", "32", "DATA.TRAIN_JITTER_SCALES", "[32,40]", "DATA.NUM_WORKERS", "0",
            "SOLVER.MAX_EPOCH", "1", "SOLVER.MIN_STEPS", "4", "TRAIN.BATCH_SIZE", "4", "TEST.BATCH_SIZE", "4",
            "TRAIN.EVAL_PERIOD", "0"]
    res = subprocess.run([sys.executable, str(ROOT / "tools/benchmark_small_data.py"), "--out", str(tmp_path / "b"),
                          "--train-per-class", "2", "--val-per-class", "1", "--video-size", "32", "--longer", "2",
                          "--seeds", "2", "--max-gap", "100", "--results", str(results), *tiny],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    rows = list(csv.DictReader(results.read_text().splitlines()))
    assert [(r["run"], r["seed"]) for r in rows] == [("recipe", "0"), ("2x longer", "0"), ("recipe", "1"),
                                                     ("2x longer", "1"), ("recipe", "mean of 2"),
                                                     ("2x longer", "mean of 2")]
    assert [int(r["steps"]) for r in rows] == [4, 8] * 3 and all(0 <= float(r["top1"]) <= 100 for r in rows)
    for i in (0, 1):
        assert float(rows[4 + i]["top1"]) == pytest.approx((float(rows[i]["top1"]) + float(rows[2 + i]["top1"])) / 2,
                                                           abs=0.01)
    assert (tmp_path / "b" / "seed1" / "longer" / "checkpoints" / "last.pth").is_file()
    assert load_config(str(tmp_path / "b" / "seed1" / "recipe" / "config.yaml")).RNG_SEED == 1
    assert rows[0]["benchmark"] == "small_data" and "benchmark_small_data" in rows[0]["command"]
    assert "| recipe |" in res.stdout and "mean of seeds" in res.stdout


def test_the_small_data_verdict_compares_the_means_over_the_seeds():
    from sfvideo.bench.small_data import mean_records, verdict

    def run(name, seed, top1):
        return {"run": name, "seed": seed, "top1": top1, "top5": 100.0}

    records = [run("recipe", 0, 68.5), run("4x longer", 0, 74.0), run("recipe", 1, 64.5), run("4x longer", 1, 70.0)]
    ok, line = verdict(records + mean_records(records), 5.0)
    assert not ok and "+5.50 points" in line and "mean of seeds 68.50, 64.50" in line
    records[3]["top1"] = 68.0
    ok, line = verdict(records, 5.0)
    assert ok and "+4.50 points (within the 5 allowed)" in line
    assert [r["top1"] for r in mean_records(records)] == [66.5, 71.0]
    ok, line = verdict(records[:2], 5.0)  # one seed: the pair itself
    assert not ok and "mean of" not in line and "+5.50" in line


@pytest.mark.slow
def test_a_signal_stops_the_small_data_benchmark_in_one_line_keeping_the_checkpoint(tmp_path):
    """SIGTERM during a run: the run stops at a step boundary with its checkpoint, and the benchmark
    says which run stopped and how to go on (exit 143, no traceback) instead of raising."""
    import signal

    out = tmp_path / "b"
    tiny = ["MODEL.ARCH", "video_test", "DATA.NUM_FRAMES", "2", "DATA.TRAIN_CROP_SIZE", "32",
            "DATA.TEST_CROP_SIZE", "32", "DATA.TRAIN_JITTER_SCALES", "[32,40]", "DATA.NUM_WORKERS", "0",
            "SOLVER.MAX_EPOCH", "1", "SOLVER.MIN_STEPS", "100000", "TRAIN.BATCH_SIZE", "4", "TRAIN.LOG_PERIOD", "1",
            "TRAIN.EVAL_PERIOD", "0"]
    with open(tmp_path / "stdout", "w") as so, open(tmp_path / "stderr", "w") as se:
        proc = subprocess.Popen([sys.executable, str(ROOT / "tools/benchmark_small_data.py"), "--out", str(out),
                                 "--train-per-class", "2", "--val-per-class", "1", "--video-size", "32",
                                 "--seeds", "1", *tiny], stdout=so, stderr=se)
        log = out / "seed0" / "recipe" / "train.log"
        # until training has taken a step (or the benchmark has ended, which the next line refuses)
        wait_for(lambda: proc.poll() is not None or (log.is_file() and " step " in log.read_text()), 600)
        assert proc.poll() is None, (tmp_path / "stderr").read_text()[-3000:]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=600) == 128 + signal.SIGTERM
    err = (tmp_path / "stderr").read_text()
    assert "Traceback" not in err, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert "recipe" in last and "seed 0" in last and "interrupted" in last and "run the same command" in last, last
    assert (out / "seed0" / "recipe" / "checkpoints" / "last.pth").is_file()
