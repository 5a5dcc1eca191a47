"""tools/benchmark.py: the model table on a tiny model, and the official comparison when available."""

from __future__ import annotations

import importlib.util
import math
import os
from pathlib import Path

import pytest

from conftest import FIXTURES
from sfvideo.bench import models as bench
from sfvideo.bench import official, results, zoo

# A checkout of the official SparseFormer code (fetched outside this repository), e.g.
# SFVIDEO_OFFICIAL_REPO=/path/to/official where /path/to/official/sparseformer/sparseformer/media.py exists.
OFFICIAL_ENV = "SFVIDEO_OFFICIAL_REPO"
OFFICIAL_DIR = Path(os.environ[OFFICIAL_ENV]) if os.environ.get(OFFICIAL_ENV) else None


def _official_missing_reason() -> str | None:
    """Why the official comparison cannot run here (None when it can)."""
    if OFFICIAL_DIR is None:
        return f"set {OFFICIAL_ENV} to a checkout of the official SparseFormer code to run this test"
    if not (OFFICIAL_DIR / "sparseformer" / "sparseformer" / "media.py").is_file():
        return f"{OFFICIAL_ENV}={OFFICIAL_DIR} has no sparseformer/sparseformer/media.py"
    return None


@pytest.mark.slow  # the memory columns are measured in a subprocess
def test_quick_table_has_the_columns(tmp_path, capsys):
    import torch

    from sfvideo.cli import benchmark

    md, data = tmp_path / "bench.md", tmp_path / "models.csv"
    threads = torch.get_num_threads()
    try:
        benchmark.main(["--quick", "--models", "video_test", "--threads", "1", "--markdown", str(md),
                        "--results", str(data)])
    finally:
        torch.set_num_threads(threads)  # --threads sets this process's
    table = md.read_text()
    assert table.strip() in capsys.readouterr().out  # printed as well as written
    (record,) = results.read_results(data)  # the same figures as data, the same table made from them
    assert record["benchmark"] == "models" and "--quick --models video_test" in record["command"]
    assert table.strip().endswith(results.render_table([record]))
    header, _, columns, rule, row = table.strip().splitlines()
    assert "threads" in header and "torch" in header and "device cpu" in header
    assert columns == "| " + " | ".join(bench.BENCHMARK_COLUMNS) + " |"
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[0] == "video_test" and cells[1] == f"{zoo.QUICK_FRAMES} x {zoo.QUICK_SIZE}^2"
    assert len(cells) == len(bench.BENCHMARK_COLUMNS)
    assert cells[2] == "eager" and cells[6] == "n/a"  # runtime; no slow_r50 row to compare with
    assert all(float(c) > 0 for c in cells[3:6] + cells[7:8])  # GFLOPs, params, clips/s, train clips/s
    assert all(float(c) >= 0 for c in cells[8:])  # memory above the baseline, measured in a child


def test_runtime_rows_and_ratios_to_slow_r50(monkeypatch):
    """One row per frame count and runtime; the other runtimes' steps are faked here (what they
    run: test_onnxruntime_step_runs_the_exported_model)."""
    made = []

    def fake_step(model, clip, runtime, threads=None, workdir=None):
        made.append((runtime, clip.shape[2]))
        return lambda: None

    monkeypatch.setattr(bench, "runtime_step", fake_step)
    rows = bench.benchmark_models(["video_test"], frames=[4, 8], quick=True, iters=1, warmup=0, memory=False,
                                  runtimes=("eager", "onnxruntime"), log=None)
    assert made == [("onnxruntime", 4), ("onnxruntime", 8)]
    assert [(r["key"], r["runtime"]) for r in rows] == [("video_test@4", "eager"), ("video_test@4", "onnxruntime"),
                                                        ("video_test@8", "eager"), ("video_test@8", "onnxruntime")]
    assert all(r["infer_clips_s"] > 0 for r in rows) and rows[1]["train_clips_s"] != rows[1]["train_clips_s"]  # NaN
    fake = [{"model": "slow_r50", "key": "slow_r50", "runtime": "eager", "infer_times": [2.0, 4.0, 2.0]},
            {"model": "m", "key": "m@8", "runtime": "onnxruntime", "infer_times": [1.0, 1.0, 2.0]}]
    assert bench.ratio_to(fake) == {"slow_r50/eager": 1.0, "m@8/onnxruntime": 2.0}  # median of per-round ratios


@pytest.mark.slow  # an ONNX export
def test_onnxruntime_step_runs_the_exported_model(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    import torch

    from sfvideo.deploy import export
    from sfvideo.models import create_model

    monkeypatch.setattr(export, "onnxruntime_cpu_opset", lambda: 17)  # the quick exporter; any opset runs the same

    model = create_model("video_test", num_classes=5).eval()
    clip = torch.randn(2, 3, 8, 32, 32)  # (B, C, T, H, W): 8 frames, not the variant's 4
    step = bench.runtime_step(model, clip, "onnxruntime", threads=1, workdir=str(tmp_path))
    with torch.no_grad():
        want = model(clip).numpy()
    assert [p.name for p in tmp_path.iterdir()] == ["model_8x32.onnx"]
    assert abs(step() - want).max() < 1e-4


def test_unknown_model_is_a_usage_error(capsys):
    from sfvideo.cli import benchmark

    with pytest.raises(SystemExit) as exc:
        benchmark.main(["--models", "video_huge"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "video_huge" in err and "video_tiny" in err


def test_model_specs_cover_the_zoo_inputs():
    assert (zoo.model_spec("video_tiny").frames, zoo.model_spec("video_tiny").size) == (32, 224)
    assert zoo.model_spec("slowfast_r50").frames == 32  # the fast pathway; slow = every 4th frame
    assert [zoo.model_spec(n).frames for n in ("x3d_m", "mvit_b_16x4", "slow_r50")] == [16, 16, 8]
    with pytest.raises(KeyError, match="available"):
        zoo.model_spec("video_huge")


def test_bf16_fixture_agreement():
    result = official.bf16_agreement_on_fixture(FIXTURES)
    assert result["fp32_vs_official_max_abs"] < 1e-4
    assert result["argmax_agreement"] == 1.0 and math.isfinite(result["bf16_vs_fp32_max_abs"])


@pytest.mark.slow  # builds two SF-T models (about a minute of CPU)
@pytest.mark.skipif(_official_missing_reason() is not None, reason=str(_official_missing_reason()))
def test_official_mode_runs():
    if importlib.util.find_spec("timm") is None:
        pytest.skip("the official code needs timm (e.g. PYTHONPATH=/tmp/bench_site)")
    result = official.compare_with_official(OFFICIAL_DIR, FIXTURES, frames=(2,), batch=1, size=32, iters=1, warmup=0,
                                            log=None)
    assert result["max_abs_diff"] < 1e-4
    (row,) = result["rows"]
    assert all(row[k] > 0 for k in ("infer_ratio", "train_ratio", "bf16_infer_ratio"))
    table = official.format_official_table(result, "header")
    assert "inference fp32" in table and "argmax agreement 100%" in table


def test_official_table_and_records_agree(tmp_path):
    seconds = {"official/infer": 0.2, "sfvideo/infer": 0.1, "sfvideo_bf16/infer": 0.5, "official/train": 0.6,
               "sfvideo/train": 0.4}
    result = {"max_abs_diff": 4.8e-7, "fixture": {"clips": 2, "argmax_agreement": 1.0, "bf16_vs_fp32_max_abs": 0.0047,
                                                  "fp32_vs_official_max_abs": 1.5e-7},
              "rows": [{"frames": 8, "batch": 2, "size": 224, "seconds": seconds, "infer_ratio": 2.0,
                        "train_ratio": 1.5, "bf16_infer_ratio": 0.4}]}
    table = official.format_official_table(result, "header")
    assert "| 2 x 8 x 224^2 | 2.00 | 1.50 | 0.40 | 0.200 / 0.100 / 0.500 / 0.600 / 0.400 |" in table
    assert "max |official - sfvideo| logits = 4.80e-07" in table and "argmax agreement 100%" in table
    path = results.write_results(tmp_path / "official.csv", official.official_records(result), {"benchmark": "official"})
    assert table.endswith(results.render_table(results.read_results(path)))


def test_training_step_benchmark_writes_its_figures(tmp_path, capsys):
    from sfvideo.cli import train

    data = tmp_path / "train_step.json"
    assert train.main(["--cfg", "k400_tiny.yaml", "--benchmark-steps", "2", "--benchmark-warmup", "0",
                       "--results", str(data), "MODEL.ARCH", "video_test", "MODEL.NUM_CLASSES", "4",
                       "DATA.NUM_FRAMES", "4", "DATA.TRAIN_CROP_SIZE", "32", "TRAIN.BATCH_SIZE", "2"]) == 0
    (record,) = results.read_results(data)
    assert record["arch"] == "video_test" and record["steps"] == 2 and record["clips_per_s"] > 0
    assert record["benchmark"] == "train_step" and record["command"].startswith("sfvideo train --cfg k400_tiny.yaml")
    assert f"{record['clips_per_s']:.3f} clips/s training" in capsys.readouterr().out
