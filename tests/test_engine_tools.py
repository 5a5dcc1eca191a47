"""predict.py prints the top-5 classes of one video; failed test videos are reported."""

import sys

import pytest

from engine_helpers import CLASS_NAMES, ROOT, make_video_dataset, tiny_opts
from sfvideo.checkpoint import atomic_save
from sfvideo.config import load_config
from sfvideo.models import build_model


def test_predict_prints_top5(tmp_path, capsys):
    data = make_video_dataset(tmp_path / "videos", num_train=1, num_val=1)
    opts = tiny_opts(data, tmp_path / "out")
    ckpt = tmp_path / "video.pth"
    atomic_save({"model": build_model(load_config("k400_tiny.yaml", opts)).state_dict()}, ckpt)
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import predict
    finally:
        sys.path.remove(str(ROOT / "tools"))
    predict.main(["--cfg", "k400_tiny.yaml", str(data / "val" / "v00.mp4"), *opts, "TEST.CHECKPOINT", str(ckpt)])
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.strip()[:2] in {f"{i}." for i in range(1, 6)}]
    assert len(lines) == 4  # 4 classes in the tiny set: all of them, best first
    assert all(any(name in ln for name in CLASS_NAMES) for ln in lines)
    probs = [float(ln.split("%")[0].split()[-1]) for ln in lines]
    assert probs == sorted(probs, reverse=True) and sum(probs) == pytest.approx(100.0, abs=0.1)


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
