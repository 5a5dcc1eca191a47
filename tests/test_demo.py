"""The demo pipeline end to end at a tiny scale (sfvideo.demo.run_demo): every file it reports is
there and parses, and the numbers it prints agree with each other and with predictions.csv."""

import csv
import dataclasses
import json

import pytest
import torch
from PIL import Image

from sfvideo.cli.demo import build_parser
from sfvideo.data.toy import CLASS_NAMES
from sfvideo.demo import (
    MIN_CLASS_ACC,
    MIN_TOP1,
    DemoOptions,
    format_class_table,
    meets_acceptance,
    per_class_accuracy,
    roi_displacement,
    run_demo,
)

EPOCHS = 2


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The whole demo at a tiny scale (its tests are marked slow: toy data, training, test, pictures)."""
    out = tmp_path_factory.mktemp("demo")
    lines: list[str] = []
    options = DemoOptions(arch="video_test", epochs=EPOCHS, crop_size=32, video_size=32, train_per_class=2,
                          val_per_class=2, batch_size=8, num_workers=0,
                          opts=["DATA.NUM_FRAMES", "4", "TEST.NUM_ENSEMBLE_VIEWS", "2", "SOLVER.MIN_STEPS", "0"])
    res = run_demo(out / "demo", options, log=lines.append)
    return res, out / "demo" / "run", "\n".join(lines)


def _predictions(run):
    with open(run / "predictions.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_reported_files_exist_and_parse(demo):
    res, run, _ = demo
    assert res.run_dir == run
    for key in ("checkpoint", "metrics", "test_results", "predictions", "rois_png", "rois_gif", "rois_all_png",
                "curves", "summary"):
        assert key in res.files and res.files[key].startswith(str(run)), key
    ckpt = torch.load(res.files["checkpoint"], weights_only=True)
    assert ckpt["epoch"] == EPOCHS and ckpt["step"] > 0
    metrics = [json.loads(x) for x in open(res.files["metrics"]).read().splitlines()]
    assert [m["epoch"] for m in metrics] == list(range(1, EPOCHS + 1))
    for key in ("rois_png", "rois_all_png", "curves"):
        with Image.open(res.files[key]) as im:
            assert im.format == "PNG" and min(im.size) > 32, key
    with Image.open(res.files["rois_gif"]) as im:
        assert im.format == "GIF" and im.n_frames > 1
    summary = json.loads(open(res.files["summary"]).read())
    assert summary["files"]["checkpoint"] == res.files["checkpoint"]


@pytest.mark.slow
def test_test_results_agree_with_predictions_csv(demo):
    res, run, _ = demo
    results = json.loads((run / "test_results.json").read_text())
    rows = _predictions(run)
    assert results["num_videos"] == len(rows) == 2 * len(CLASS_NAMES) and results["failed_videos"] == []
    assert results["views_per_video"] == 2  # the multi-view test, not the 1-view validation
    assert list(rows[0])[:4] == ["video", "label", "pred", "top5"]
    hits = [int(r["label"]) == int(r["pred"]) for r in rows]
    assert results["top1"] == pytest.approx(100.0 * sum(hits) / len(rows))
    for r in rows:  # the top-5 starts with the prediction and names 5 different classes
        top5 = [int(k) for k in r["top5"].split()]
        assert top5[0] == int(r["pred"]) and len(set(top5)) == 5
        assert r["label_name"] == CLASS_NAMES[int(r["label"])] and r["pred_name"] == CLASS_NAMES[int(r["pred"])]
    for k, name in enumerate(CLASS_NAMES):
        mine = [h for r, h in zip(rows, hits) if int(r["label"]) == k]
        entry = results["per_class_accuracy"][name]
        assert entry["index"] == k and entry["num_videos"] == len(mine) == 2
        assert entry["accuracy"] == pytest.approx(100.0 * sum(mine) / len(mine)), name


@pytest.mark.slow
def test_summary_agrees_with_test_results(demo):
    res, run, text = demo
    results = json.loads((run / "test_results.json").read_text())
    summary = json.loads((run / "demo_summary.json").read_text())
    assert summary["top1"] == res.top1 == results["top1"]
    assert summary["mean_class_accuracy"] == results["mean_class_accuracy"]
    assert list(summary["per_class"]) == list(CLASS_NAMES)
    assert summary["per_class"] == per_class_accuracy(results)
    bar = results["top1"] >= MIN_TOP1 and all(v["accuracy"] >= MIN_CLASS_ACC
                                             for v in results["per_class_accuracy"].values())
    assert summary["passed"] is res.passed is bar
    assert f"video top-1 {results['top1']:.1f}%" in text
    verdict = "PASSED" if res.passed else "NOT MET"
    assert f"every class >= {MIN_CLASS_ACC:.0f}%): {verdict}" in text
    assert format_class_table({"4 frames": summary["per_class"]}) in text
    assert "[7/7] summary" in text


@pytest.mark.slow
def test_prediction_and_rois_are_what_the_model_gives(demo):
    from sfvideo.checkpoint import load_test_weights
    from sfvideo.config import load_config
    from sfvideo.models import build_model
    from sfvideo.viz.rois import load_clip

    res, run, text = demo
    cfg = load_config(str(run / "config.yaml"))
    model = build_model(cfg)
    load_test_weights(model, res.files["checkpoint"], log=lambda s: None)
    model.eval()
    first = (run.parent / "toy_data" / "val.txt").read_text().splitlines()[0].rsplit(" ", 1)[0]
    clip = load_clip(run.parent / "toy_data" / first, cfg)  # (C, T, S, S)
    with torch.no_grad():
        details = model.forward_details(clip.unsqueeze(0))
    assert res.roi_displacement == pytest.approx(roi_displacement(details), rel=1e-5)
    assert f"mean |final RoI - initial RoI| = {res.roi_displacement:.4f}" in text
    predicted = [ln.split()[1] for ln in text.splitlines() if ln.strip()[:3] in ("1. ", "2. ", "3. ")]
    assert len(predicted) == 3 and set(predicted) <= set(CLASS_NAMES)


@pytest.mark.parametrize("top1, per_class, expected", [
    (MIN_TOP1, {"a": MIN_CLASS_ACC, "b": 100.0}, True),
    (MIN_TOP1 - 0.1, {"a": 100.0, "b": 100.0}, False),
    (100.0, {"a": MIN_CLASS_ACC - 0.1, "b": 100.0}, False),
])
def test_acceptance_bar(top1, per_class, expected):
    assert meets_acceptance(top1, per_class) is expected


def test_roi_displacement_and_table():
    a = torch.zeros(1, 2, 6)
    b = a + 0.25
    assert roi_displacement({"rois": [a, a, b]}) == 0.25
    table = format_class_table({"8 frames": {"x": 100.0, "y": 50.0}, "1 frame": {"x": 50.0, "y": 50.0}})
    assert "8 frames" in table and "100.0%" in table and table.count("\n") == 3


def test_options_become_config_overrides_with_opts_last():
    options = DemoOptions(frames=1, crop_size=96, batch_size=4, opts=["DATA.NUM_FRAMES", "2"])
    assert options.config_overrides() == [
        "DATA.NUM_FRAMES", "1", "DATA.TRAIN_CROP_SIZE", "96", "DATA.TEST_CROP_SIZE", "96",
        "DATA.TRAIN_JITTER_SCALES", "[96, 112]", "TRAIN.BATCH_SIZE", "4", "TEST.BATCH_SIZE", "4",
        "DATA.NUM_FRAMES", "2"]
    assert DemoOptions().config_overrides() == []


def test_command_line_options_are_demo_options():
    args = vars(build_parser().parse_args(["--cfg", "x.yaml", "--workers", "2", "--val-per-class", "3", "K", "V"]))
    assert (args.pop("out"), args.pop("ablation")) == ("demo_output", False)
    assert DemoOptions(**args) == DemoOptions(cfg_file="x.yaml", num_workers=2, val_per_class=3, opts=["K", "V"])
    every = {a.dest for a in build_parser()._actions} - {"help", "out", "ablation", "seeds", "results"}
    assert every == {f.name for f in dataclasses.fields(DemoOptions)}  # each option once, each field reachable
