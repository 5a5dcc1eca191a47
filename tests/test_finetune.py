"""Fine-tuning on one's own videos: automatic class count, head re-initialisation from a video
checkpoint of another label set, the dataset configs, and the README's three commands end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from engine_helpers import run_tool
from sfvideo.checkpoint import load_pretrained
from sfvideo.config import ConfigError, load_config
from sfvideo.models import build_model

ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------ MODEL.NUM_CLASSES -1
def test_num_classes_minus_one_counts_class_names(tmp_path):
    (tmp_path / "classes.txt").write_text("walk\nrun\njump\nswim\n")
    cfg = load_config(None, ["MODEL.NUM_CLASSES", "-1", "DATA.PATH_TO_DATA_DIR", str(tmp_path),
                             "DATA.CLASS_NAMES", "classes.txt", "MODEL.ARCH", "video_test"])
    assert cfg.MODEL.NUM_CLASSES == 4
    assert build_model(cfg).proj.out_features == 4
    # written into the run's config.yaml as the resolved count
    assert "NUM_CLASSES: 4" in cfg.dump()


def test_num_classes_minus_one_without_names_fails_clearly(tmp_path):
    with pytest.raises(ConfigError, match=r"DATA.CLASS_NAMES .*nothere/classes.txt does not exist.*build_lists"):
        load_config(None, ["MODEL.NUM_CLASSES", "-1", "DATA.PATH_TO_DATA_DIR", str(tmp_path / "nothere"),
                           "DATA.CLASS_NAMES", "classes.txt"])
    with pytest.raises(ConfigError, match="DATA.CLASS_NAMES is empty"):
        load_config(None, ["MODEL.NUM_CLASSES", "-1", "DATA.CLASS_NAMES", ""])
    (tmp_path / "classes.txt").write_text("a\na\n")
    with pytest.raises(ConfigError, match=r"classes.txt:2: class 'a' already on line 1"):
        load_config(None, ["MODEL.NUM_CLASSES", "-1", "DATA.PATH_TO_DATA_DIR", str(tmp_path),
                           "DATA.CLASS_NAMES", "classes.txt"])
    with pytest.raises(ConfigError, match=r"MODEL\.NUM_CLASSES = -2; expected -1 or an integer >= 1"):
        load_config(None, ["MODEL.NUM_CLASSES", "-2"])


# ------------------------------------------------------------------------ head re-initialisation
def test_video_checkpoint_of_other_class_count_loads_all_but_classifier(tmp_path):
    cfg5 = load_config(None, ["MODEL.ARCH", "video_test", "MODEL.NUM_CLASSES", "5"])
    source = build_model(cfg5)
    with torch.no_grad():
        for p in source.parameters():
            p.add_(torch.randn_like(p))  # unlike any fresh initialisation
    torch.save({"model": source.state_dict(), "epoch": 3}, tmp_path / "k5.pth")

    target = build_model(load_config(None, ["MODEL.ARCH", "video_test", "MODEL.NUM_CLASSES", "3"]))
    with torch.no_grad():
        target.proj.weight.fill_(1.0)  # whatever the model's classifier held before the load
    lines: list[str] = []
    report = load_pretrained(target, tmp_path / "k5.pth", log=lines.append, allow_new_classifier=True)
    assert report.initialised == ["proj.weight", "proj.bias"]
    assert target.proj.out_features == 3 and not target.proj.bias.any()
    assert target.proj.weight.abs().max() < 0.2  # re-initialised (truncated normal, std 0.02)
    src = source.state_dict()
    for key, value in target.state_dict().items():
        if not key.startswith("proj."):
            assert torch.equal(value, src[key]), key
    notes = [ln for ln in "\n".join(lines).splitlines() if "classifier re-initialised" in ln]
    assert len(notes) == 1 and "checkpoint has 5 classes, the model 3" in notes[0]


# ------------------------------------------------------------------------ configs
def test_ssv2_config_is_segment_sampled_without_flip():
    from sfvideo.data.build import eval_sampling_and_transform

    cfg = load_config("ssv2_tiny.yaml")
    assert (cfg.DATA.SAMPLING, cfg.DATA.NUM_FRAMES, cfg.AUG.FLIP, cfg.MODEL.NUM_CLASSES) == ("segment", 16, False, 174)
    assert (cfg.TEST.NUM_ENSEMBLE_VIEWS, cfg.TEST.NUM_SPATIAL_CROPS) == (2, 3)
    sampling, _ = eval_sampling_and_transform(cfg, "test")
    assert sampling.sampler == "segment" and sampling.num_clips == 2


def test_segment_sampling_reaches_the_dataset(tmp_path):
    """DATA.SAMPLING segment makes the test items take frames across the whole video."""
    from _data_helpers import frame_code, make_video
    from sfvideo.data import build_dataset

    make_video(tmp_path / "a.mp4", num_frames=40)
    (tmp_path / "test.txt").write_text("a.mp4 0\n")
    opts = ["DATA.PATH_TO_DATA_DIR", str(tmp_path), "DATA.CLASS_NAMES", "", "MODEL.NUM_CLASSES", "2",
            "DATA.NUM_FRAMES", "4", "DATA.TEST_CROP_SIZE", "48", "TEST.NUM_ENSEMBLE_VIEWS", "1",
            "TEST.NUM_SPATIAL_CROPS", "1", "DATA.DECODER", "pyav", "DATA.MEAN", "[0,0,0]", "DATA.STD", "[1,1,1]"]
    # segment: bounds round(9.75 i) = 0, 10, 20, 29 (19.5 rounds to even), plus int(9.75 / 2) = 4;
    # dense: a 4 x 2 test clip spans 7 frames, centred at (40 - 7) // 2 = 16
    for sampling, expected in (("segment", [4, 14, 24, 33]), ("dense", [16, 18, 20, 22])):
        cfg = load_config(None, opts + ["DATA.SAMPLING", sampling])
        video = build_dataset(cfg, "test")[0]["video"]  # (1, C, T, H, W) uint8
        assert video.dtype == torch.uint8
        frames = video[0].permute(1, 2, 3, 0).numpy()  # (T, H, W, C)
        assert [frame_code(f) for f in frames] == expected, sampling


# ------------------------------------------------------------------------ end to end
def make_class_folder(root: Path, per_class: int = 4, frames: int = 8, size: int = 32) -> list[str]:
    """``root/<class>/<n>.mp4`` for three classes whose videos move in different directions."""
    from sfvideo.data.encode import write_video

    classes = ["drifting left", "drifting_right", "still"]  # a space in a class name, on purpose
    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        for i in range(per_class):
            base = rng.integers(0, 255, size=(size, size, 3))
            shift = (c - 1) * 3
            video = np.stack([np.roll(base, shift * t, axis=1) for t in range(frames)]).astype(np.uint8)
            write_video(root / name / f"clip{i}.mp4", video, fps=30)
    return classes


@pytest.mark.slow  # a training run (the train tool in a subprocess), test and predict
def test_folder_to_trained_tested_model_and_prediction(tmp_path, capsys):
    from sfvideo.cli import build_lists, predict, test

    data, out = tmp_path / "my_videos", tmp_path / "run"
    classes = make_class_folder(data)

    # 1. lists
    assert build_lists.main(["--format", "folder", "--root", str(data), "--out-dir", str(data),
                             "--val-fraction", "0.25"]) == 0
    assert (data / "classes.txt").read_text().splitlines() == classes
    assert len((data / "train.txt").read_text().splitlines()) == 9
    assert len((data / "val.txt").read_text().splitlines()) == 3

    # a video checkpoint trained on another label set (5 classes)
    other = build_model(load_config(None, ["MODEL.ARCH", "video_test", "MODEL.NUM_CLASSES", "5"]))
    torch.save({"model": other.state_dict()}, tmp_path / "other5.pth")

    tiny = ["MODEL.ARCH", "video_test", "DATA.PATH_TO_DATA_DIR", str(data), "DATA.DECODER", "pyav",
            "DATA.NUM_FRAMES", "4", "DATA.SAMPLING_RATE", "1", "DATA.TRAIN_CROP_SIZE", "32", "DATA.TEST_CROP_SIZE", "32",
            "DATA.TRAIN_JITTER_SCALES", "[32,40]", "DATA.NUM_WORKERS", "0", "TEST.NUM_ENSEMBLE_VIEWS", "2",
            "TEST.NUM_SPATIAL_CROPS", "1", "TEST.BATCH_SIZE", "3", "DEVICE", "cpu", "OUTPUT_DIR", str(out)]
    # 2. train one short epoch from the 5-class checkpoint
    train = run_tool("train_video.py", ["--cfg", "finetune_folder_tiny.yaml", *tiny, "TRAIN.CHECKPOINT",
                                        str(tmp_path / "other5.pth"), "TRAIN.BATCH_SIZE", "3", "SOLVER.MAX_EPOCH", "1",
                                        "SOLVER.WARMUP_EPOCHS", "0.5", "TRAIN.MAX_STEPS_PER_EPOCH", "2"])
    log = (out / "train.log").read_text()
    assert log.count("classifier re-initialised: checkpoint has 5 classes, the model 3") == 1
    assert "classifier re-initialised" in train.stdout + train.stderr  # and on the console
    assert "NUM_CLASSES: 3" in (out / "config.yaml").read_text()
    ckpt = out / "checkpoints" / "last.pth"
    assert ckpt.is_file()

    best = out / "checkpoints" / "best.pth"
    assert best.is_file()

    # 3. test, then predict one video, with the run's merged config as the README does
    test.main(["--cfg", str(out / "config.yaml"), "TEST.CHECKPOINT", str(best)])
    results = json.loads((out / "test_results.json").read_text())
    assert results["num_videos"] == 3 and results["failed_videos"] == [] and results["views_per_video"] == 2
    video = data / (data / "val.txt").read_text().splitlines()[0].rsplit(" ", 1)[0]
    capsys.readouterr()
    predict.main(["--cfg", str(out / "config.yaml"), str(video), "TEST.CHECKPOINT", str(best)])
    ranked = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip()[:2] in ("1.", "2.", "3.")]
    assert len(ranked) == 3 and {c for c in classes if any(c in ln for ln in ranked)} == set(classes)
