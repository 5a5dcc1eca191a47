"""Benchmark results as data: files written with their provenance, tables generated from them into
Markdown between markers, and ``--check`` catching a table edited by hand."""

from __future__ import annotations

import math

import pytest

from sfvideo.bench import results
from sfvideo.cli import results_tables

RECORDS = [
    {"model": "video_tiny", "input": "32 x 224^2", "runtime": "eager", "gflops": 21.49, "params_m": 31.33,
     "infer_clips_s": 2.741, "infer_speed_vs_slow_r50": 0.86, "train_clips_s": 0.805, "infer_mem_mb": float("nan"),
     "train_mem_mb": 1024.4},
    {"model": "slow_r50", "input": "8 x 224^2", "runtime": "eager", "gflops": 41.74, "params_m": 32.45,
     "infer_clips_s": 3.204, "infer_speed_vs_slow_r50": 1.0, "train_clips_s": float("nan"), "infer_mem_mb": 7.25,
     "train_mem_mb": 900.0},
]
META = {"benchmark": "models", "command": "sfvideo benchmark --iters 5", "date": "2026-12-01T10:00+00:00",
        "cpu": "Test CPU", "cores": 2, "threads": 2, "device": "cpu", "torch": "2.13.0", "onnxruntime": ""}


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_results_file_round_trips_to_the_same_table(tmp_path, suffix):
    path = results.write_results(tmp_path / f"models{suffix}", RECORDS, META)
    back = results.read_results(path)
    assert [r["command"] for r in back] == [META["command"]] * 2 and back[0]["cpu"] == "Test CPU"
    assert math.isnan(float(back[0]["infer_mem_mb"]))
    table = results.render_table(back)
    assert table == results.render_table([{**r, **META} for r in RECORDS])
    lines = table.splitlines()
    assert lines[0] == "| " + " | ".join(c.header for c in results.TABLES["models"].columns) + " |"
    assert lines[2].split(" | ")[-2:] == ["n/a", "1024 |"] and lines[3].split(" | ")[-3:] == ["n/a", "7.2", "900 |"]


def test_machine_info_names_the_machine_and_libraries():
    info = results.run_metadata("models", "sfvideo benchmark", "cpu")
    assert info["cores"] >= 1 and info["threads"] >= 1 and info["torch"] and info["date"][:2] == "20"
    assert {"cpu", "python", "onnxruntime", "torchcodec", "av"} <= set(info)


def _checkout(tmp_path):
    root = tmp_path / "checkout"
    (root / "docs" / "guide").mkdir(parents=True)
    results.write_results(root / "results" / "models_cpu.csv", RECORDS, META)
    (root / "README.md").write_text("# sfvideo\n\nNo table here.\n")
    page = root / "docs" / "guide" / "speed.md"
    page.write_text("# Speed\n\n<!-- results:models_cpu -->\nstale\n<!-- /results:models_cpu -->\n\nAfter.\n")
    return root, page


def test_tables_are_written_between_markers_and_check_catches_a_hand_edit(tmp_path, capsys):
    root, page = _checkout(tmp_path)
    assert results_tables.main(["--root", str(root), "--check"]) == 1  # "stale" is not the table
    assert "docs/guide/speed.md" in capsys.readouterr().err and "stale" in page.read_text()  # --check writes nothing
    assert results_tables.main(["--root", str(root)]) == 0
    text = page.read_text()
    assert text.startswith("# Speed\n\n<!-- results:models_cpu -->\n| model |") and text.endswith("\n\nAfter.\n")
    assert "| video_tiny | 32 x 224^2 | eager | 21.49 |" in text
    assert "Measured 2026-12-01T10:00+00:00 on Test CPU, 2 cores, 2 threads, torch 2.13.0, device cpu: " \
           "`sfvideo benchmark --iters 5`" in text
    assert results_tables.main(["--root", str(root), "--check"]) == 0
    page.write_text(text.replace("| 21.49 |", "| 12.49 |", 1))  # a figure edited by hand
    capsys.readouterr()
    assert results_tables.main(["--root", str(root), "--check"]) == 1
    err = capsys.readouterr().err
    assert "speed.md: results:models_cpu disagree" in err and "README.md" not in err


def test_a_changed_results_file_makes_the_table_stale(tmp_path):
    root, page = _checkout(tmp_path)
    assert results_tables.main(["--root", str(root)]) == 0
    results.write_results(root / "results" / "models_cpu.csv", RECORDS[:1], META)
    assert results_tables.main(["--root", str(root), "--check"]) == 1
    assert results_tables.main(["--root", str(root)]) == 0 and "| slow_r50 |" not in page.read_text()


@pytest.mark.parametrize("text,message", [
    ("a\n<!-- results:models_cpu -->\nno end\n", "speed.md:2: <!-- results:models_cpu --> has no matching"),
    ("<!-- results:other -->\n<!-- /results:other -->\n", "speed.md:1: results:other: expected one of other.csv"),
    ("<!-- results:bad -->\n<!-- /results:bad -->\n", "bad.csv: cannot make its table"),
])
def test_unusable_markers_are_refused_naming_file_and_line(tmp_path, capsys, text, message):
    root, page = _checkout(tmp_path)
    (root / "results" / "bad.csv").write_text("benchmark,model,gflops\nmodels,m,not a number\n")
    page.write_text(text)
    assert results_tables.main(["--root", str(root), "--check"]) == 1
    assert message in capsys.readouterr().err


def test_flops_table_has_one_row_per_model_and_one_column_per_input():
    records = [{"model": m, "frames": t, "size": 224, "gflops": g, "params_m": p}
               for m, p, gs in (("video_tiny", 31.33, (17.24, 21.49)), ("video_small", 47.37, (31.54, 35.78)))
               for t, g in zip((8, 32), gs)]
    assert results.render_table(records, "flops").splitlines() == [
        "| model | GFLOPs, 8 x 224^2 | GFLOPs, 32 x 224^2 | params (M) |", "|---|---|---|---|",
        "| video_tiny | 17.24 | 21.49 | 31.33 |", "| video_small | 31.54 | 35.78 | 47.37 |"]
