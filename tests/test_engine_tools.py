"""predict.py prints the top-5 classes of one video; failed test videos are reported."""


import pytest

from engine_helpers import CLASS_NAMES, make_video_dataset, tiny_opts
from sfvideo.checkpoint import atomic_save, checkpoint_meta
from sfvideo.cli import predict
from sfvideo.config import load_config
from sfvideo.models import build_model


def test_predict_prints_top5(tmp_path, capsys):
    data = make_video_dataset(tmp_path / "videos", num_train=1, num_val=1)
    opts = tiny_opts(data, tmp_path / "out")
    ckpt = tmp_path / "video.pth"
    atomic_save({"model": build_model(load_config("k400_tiny.yaml", opts)).state_dict()}, ckpt)
    predict.main(["--cfg", "k400_tiny.yaml", str(data / "val" / "v00.mp4"), *opts, "TEST.CHECKPOINT", str(ckpt)])
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.strip()[:2] in {f"{i}." for i in range(1, 6)}]
    assert len(lines) == 4  # 4 classes in the tiny set: all of them, best first
    assert all(any(name in ln for name in CLASS_NAMES) for ln in lines)
    probs = [float(ln.split("%")[0].split()[-1]) for ln in lines]
    assert probs == sorted(probs, reverse=True) and sum(probs) == pytest.approx(100.0, abs=0.1)


def _top5(out: str) -> list[str]:
    return [ln.strip() for ln in out.splitlines() if ln.strip()[:2] in {f"{i}." for i in range(1, 6)}]


def test_predict_runs_a_checkpoint_without_its_config(tmp_path, capsys):
    """A checkpoint that records its model, protocol and class names needs no --cfg."""
    data = make_video_dataset(tmp_path / "videos", num_train=1, num_val=1)
    opts = tiny_opts(data, tmp_path / "out", **{"TEST.NUM_ENSEMBLE_VIEWS": 3})
    cfg = load_config("k400_tiny.yaml", opts)
    ckpt = tmp_path / "run.pth"
    names = ["w", "x", "y", "z"]
    atomic_save({"model": build_model(cfg).state_dict(), "meta": checkpoint_meta(cfg, names)}, ckpt)
    video = str(data / "val" / "v00.mp4")
    predict.main(["--cfg", "k400_tiny.yaml", video, *opts, "TEST.CHECKPOINT", str(ckpt), "DATA.CLASS_NAMES", ""])
    with_cfg = _top5(capsys.readouterr().out)
    predict.main(["--checkpoint", str(ckpt), video, "DATA.DECODER", "pyav"])
    out = capsys.readouterr().out
    alone = _top5(out)
    assert "(3 views" in out  # the recorded protocol, not the defaults' 4 x 3
    assert [ln.split()[-1] for ln in alone] == [ln.split()[-1] for ln in with_cfg]  # same classes, same order
    assert [ln.split("%")[0].split()[-1] for ln in alone] == [ln.split("%")[0].split()[-1] for ln in with_cfg]
    assert {ln.split()[1] for ln in alone} == set(names)


def test_unreadable_test_video_is_reported_not_scored(tmp_path):
    from sfvideo.engine.evaluate import run_test

    data = make_video_dataset(tmp_path / "videos", num_train=1, num_val=3)
    (data / "val" / "v01.mp4").write_bytes(b"not a video")
    opts = tiny_opts(data, tmp_path / "out")
    cfg = load_config("k400_tiny.yaml", opts)
    ckpt = tmp_path / "video.pth"
    atomic_save({"model": build_model(cfg).state_dict()}, ckpt)
    cfg = load_config("k400_tiny.yaml", opts + ["TEST.CHECKPOINT", str(ckpt)])
    results = run_test(cfg, config_name="k400_tiny.yaml", progress=False)
    assert results["failed_videos"] == ["val/v01.mp4"] and results["num_videos"] == 2
    rows = (tmp_path / "out" / "predictions.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[0].startswith("video,label,pred,top5,score")
    assert [r.split(",")[0] for r in rows[1:]] == ["val/v00.mp4", "val/v02.mp4"]
