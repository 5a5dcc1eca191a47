"""A recipe holds on small data: SOLVER.MIN_STEPS raises the epochs of a run whose data gives
too few optimiser steps (the log says so once), build-lists and the start of training say how many
steps the run takes, and the toy recipe on its full set (`make demo`) is unchanged."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest

from engine_helpers import ROOT, make_video_dataset, tiny_opts
from sfvideo.config import load_config
from sfvideo.engine.plan import epoch_steps, min_steps, planned_epochs, steps_line

FAST = {"TRAIN.EVAL_PERIOD": 0, "TRAIN.EMA_DECAY": 0.0, "AUG.RAND_AUGMENT": "", "AUG.RE_PROB": 0.0}


def test_epochs_are_raised_to_reach_the_minimum():
    cfg = load_config("toy_tiny.yaml", ["SOLVER.MIN_STEPS_CLIPS", "0"])  # the same floor for every set
    assert epoch_steps(cfg, 160) == 20 and planned_epochs(cfg, 20, 160) == cfg.SOLVER.MIN_STEPS // 20
    assert planned_epochs(cfg, 21, 168) * 21 >= cfg.SOLVER.MIN_STEPS > (planned_epochs(cfg, 21, 168) - 1) * 21
    assert planned_epochs(load_config("toy_tiny.yaml", ["SOLVER.MIN_STEPS", "0"]), 20, 160) == 7
    capped = load_config("toy_tiny.yaml", ["TRAIN.MAX_STEPS_PER_EPOCH", "2"])
    assert planned_epochs(capped, 2, 160) == 7  # a capped epoch is a smoke test: left as asked
    assert epoch_steps(cfg, 160, world_size=2) == 10  # each process's share


def test_a_smaller_set_than_the_floor_was_set_for_gets_more_steps():
    """SOLVER.MIN_STEPS for SOLVER.MIN_STEPS_CLIPS clips, and MIN_STEPS more for each ten times fewer."""
    cfg = load_config("toy_tiny.yaml")
    assert (cfg.SOLVER.MIN_STEPS, cfg.SOLVER.MIN_STEPS_CLIPS) == (1680, 1920)
    assert [min_steps(cfg, n) for n in (3840, 1920, 192)] == [1680, 1680, 3360]
    assert min_steps(load_config("toy_tiny.yaml", ["SOLVER.MIN_STEPS_CLIPS", "2000"]), 20) == 3 * 1680
    assert min_steps(cfg, 160) == 3494 and planned_epochs(cfg, 20, 160) == 175  # 3500 steps
    floors = [min_steps(cfg, n) for n in range(8, 1921, 8)]
    assert floors == sorted(floors, reverse=True)  # fewer clips never get fewer steps
    assert min_steps(load_config("toy_tiny.yaml", ["SOLVER.MIN_STEPS", "0"]), 160) == 0


def test_the_toy_recipe_on_its_full_set_is_unchanged():
    """`make demo` trains the toy recipe on 8 x 240 clips: 7 epochs of 240 steps, as before."""
    from sfvideo.data import toy

    cfg = load_config("toy_tiny.yaml")
    clips = len(toy.CLASS_NAMES) * toy.DEFAULT_TRAIN_PER_CLASS
    steps = epoch_steps(cfg, clips)
    assert (steps, planned_epochs(cfg, steps, clips)) == (240, 7) and 7 * 240 >= cfg.SOLVER.MIN_STEPS > 0
    assert "raised" not in steps_line(cfg, steps, clips)


def test_the_toy_recipe_on_20_videos_a_class_trains_more_steps_than_on_its_full_set():
    cfg = load_config("toy_tiny.yaml")
    line = steps_line(cfg, epoch_steps(cfg, 160), 160)
    assert line == ("175 epochs x 20 optimiser steps = 3500 steps (SOLVER.MAX_EPOCH 7 raised to reach "
                    "SOLVER.MIN_STEPS 1680, raised to 3494 for 160 clips (SOLVER.MIN_STEPS_CLIPS 1920))")


def test_a_raised_run_warms_up_for_the_recipes_share_of_its_steps():
    """The warm-up is part of the schedule: 0.25 of 7 epochs is 60 of the full toy set's 1,680
    steps, and stays 1/28 of a raised run (not 0.25 of a 20-step epoch)."""
    from sfvideo.engine.optim import build_schedule
    from sfvideo.engine.train import _with_planned_epochs

    cfg = load_config("toy_tiny.yaml")
    flat = load_config("toy_tiny.yaml", ["SOLVER.MIN_STEPS_CLIPS", "0"])
    warmups = {}
    for name, c, clips in (("full", cfg, 1920), ("small", cfg, 160), ("flat", flat, 160), ("odd", flat, 168)):
        steps = epoch_steps(c, clips)
        schedule = build_schedule(_with_planned_epochs(c, steps, clips), None, steps, 1e-3)
        warmups[name] = (schedule.warmup_steps, schedule.total_steps)
    assert warmups == {"full": (60, 1680), "small": (125, 3500), "flat": (60, 1680), "odd": (60, 1680)}
    unraised = load_config("toy_tiny.yaml", ["SOLVER.MIN_STEPS", "0"])
    assert build_schedule(_with_planned_epochs(unraised, 20, 160), None, 20, 1e-3).warmup_steps == 5


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
    want = steps_line(cfg, epoch_steps(cfg, 16), 16)
    assert f"finetune_folder_tiny.yaml: {want}" in res.stdout
    res = subprocess.run([sys.executable, str(ROOT / "tools/build_lists.py"), "--format", "folder", "--root",
                          str(root), "--out-dir", str(tmp_path / "o"), "--cfg", "toy_tiny.yaml"],
                         capture_output=True, text=True, timeout=120)
    toy = load_config("toy_tiny.yaml")
    assert f"toy_tiny.yaml: {steps_line(toy, epoch_steps(toy, 16), 16)}" in res.stdout


@pytest.mark.slow
def test_the_small_data_benchmark_runs_at_a_tiny_scale(tmp_path):
    """The acceptance measurement (tools/benchmark_small_data.py) end to end, a few seconds long."""
    results = tmp_path / "small.csv"
    tiny = ["MODEL.ARCH", "video_test", "DATA.NUM_FRAMES", "4", "DATA.TRAIN_CROP_SIZE", "32",
            "DATA.TEST_CROP_SIZE", "32", "DATA.TRAIN_JITTER_SCALES", "[32,40]", "DATA.NUM_WORKERS", "0",
            "SOLVER.MAX_EPOCH", "1", "SOLVER.MIN_STEPS", "4", "SOLVER.MIN_STEPS_CLIPS", "0", "TRAIN.BATCH_SIZE", "4",
            "TEST.BATCH_SIZE", "4", "TRAIN.EVAL_PERIOD", "0"]
    res = subprocess.run([sys.executable, str(ROOT / "tools/benchmark_small_data.py"), "--out", str(tmp_path / "b"),
                          "--train-per-class", "2", "--val-per-class", "1", "--video-size", "32", "--longer", "2", "--max-gap", "100",
                          "--results", str(results), *tiny], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    rows = list(csv.DictReader(results.open()))
    assert [r["run"] for r in rows] == ["recipe", "2x longer"]
    assert [int(r["steps"]) for r in rows] == [4, 8] and all(0 <= float(r["top1"]) <= 100 for r in rows)
    assert rows[0]["benchmark"] == "small_data" and "benchmark_small_data" in rows[0]["command"]
    assert "| recipe |" in res.stdout and "points" in res.stdout
