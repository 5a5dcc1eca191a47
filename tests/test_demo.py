"""The demo pipeline end to end at a tiny scale (sfvideo.demo.run_demo): files, not accuracy."""

import json

from sfvideo.data.toy import CLASS_NAMES
from sfvideo.demo import format_class_table, roi_displacement, run_demo


def test_run_demo_tiny_end_to_end(tmp_path):
    lines: list[str] = []
    res = run_demo(tmp_path / "demo", arch="video_test", epochs=1, crop_size=32, video_size=32,
                   train_per_class=2, val_per_class=1, batch_size=8, num_workers=0,
                   opts=["DATA.NUM_FRAMES", "4", "TEST.NUM_ENSEMBLE_VIEWS", "2"], log=lines.append)
    run = tmp_path / "demo" / "run"
    assert res.run_dir == run
    for name in ("config.yaml", "metrics.jsonl", "checkpoints/last.pth", "test_results.json", "predictions.csv",
                 "curves.png", "demo_summary.json"):
        assert (run / name).is_file(), name
    for key in ("rois_png", "rois_gif", "rois_all_png"):
        assert res.files[key].startswith(str(run / "rois")) and (run / "rois").joinpath(
            res.files[key].rsplit("/", 1)[-1]).is_file()

    results = json.loads((run / "test_results.json").read_text())
    for key in ("top1", "top5", "mean_class_accuracy", "num_videos", "views_per_video", "failed_videos",
                "per_class_accuracy"):
        assert key in results, key
    assert results["num_videos"] == len(CLASS_NAMES) and results["failed_videos"] == []
    assert results["views_per_video"] == 2  # the multi-view test, not the 1-view validation
    assert 0.0 <= results["top1"] <= 100.0
    assert set(results["per_class_accuracy"]) == set(CLASS_NAMES)
    rows = (run / "predictions.csv").read_text().splitlines()
    assert rows[0].startswith("video,label,pred,top5") and len(rows) == 1 + len(CLASS_NAMES)

    summary = json.loads((run / "demo_summary.json").read_text())
    assert list(summary["per_class"]) == list(CLASS_NAMES)
    assert summary["roi_displacement"] >= 0.0 and res.passed in (True, False)
    text = "\n".join(lines)
    assert "[7/7] summary" in text and "moving_left" in text and "mean |final RoI - initial RoI|" in text


def test_roi_displacement_and_table():
    import torch

    a = torch.zeros(1, 2, 6)
    b = a + 0.25
    assert roi_displacement({"rois": [a, a, b]}) == 0.25
    table = format_class_table({"8 frames": {"x": 100.0, "y": 50.0}, "1 frame": {"x": 50.0, "y": 50.0}})
    assert "8 frames" in table and "100.0%" in table and table.count("\n") == 3
