"""Results writers of the docs' tables that are not timings: ``sfvideo benchmark --parity`` (sfvideo
against the official code's fixture logits) and ``sfvideo demo --results`` (held-out accuracy per
class and seed); each writes a results file whose table ``sfvideo.bench.results`` renders."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import FIXTURES
from sfvideo.bench import parity, results
from sfvideo.checkpoint import CheckpointError
from sfvideo.cli import benchmark as benchmark_cli
from sfvideo.cli import demo as demo_cli
from sfvideo.data.toy import CLASS_NAMES
from sfvideo.demo import DemoResult, demo_records


def test_parity_writes_the_official_differences_as_data(tmp_path, capsys):
    path = tmp_path / "official_parity.csv"
    benchmark_cli.main(["--parity", "--fixtures", str(FIXTURES), "--results", str(path)])
    rows = results.read_results(path)
    assert [r["check"] for r in rows] == [c.name for c in parity.CHECKS]
    assert {r["benchmark"] for r in rows} == {"parity"} and "--parity" in rows[0]["command"]
    diff = {r["check"]: float(r["max_abs_diff"]) for r in rows}
    assert all(r["argmax_agrees"] == "True" for r in rows)
    # library numerics differ from the v1 code's by design (variance, eps); everything else matches
    assert 1e-4 < diff.pop("v1_library_numerics") < 5e-2
    assert max(diff.values()) < 1e-4
    table = results.render_table(rows)
    assert table.splitlines()[0] == "| check | max abs difference of the logits | same argmax |"
    assert f"| {parity.CHECKS[0].description} | {float(rows[0]['max_abs_diff']):.1e} | yes |" in table
    assert table in capsys.readouterr().out


def test_parity_refuses_a_missing_fixture_folder_or_file(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        benchmark_cli.main(["--parity", "--fixtures", str(tmp_path / "nowhere")])
    assert exit_info.value.code == 2 and "nowhere does not exist" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match="v2_small_image.pth"):
        parity.parity_records(tmp_path)  # an empty folder: the first fixture is named


def _run(seed: int, frames: int = 8, accuracies=None) -> DemoResult:
    per_class = dict(zip(CLASS_NAMES, accuracies or [100.0, 96.0, 92.0, 100.0, 88.0, 96.0, 100.0, 100.0]))
    top1 = sum(per_class.values()) / len(per_class)
    return DemoResult(Path(f"out/seed{seed}"), frames, seed, top1, 100.0, top1, per_class, 0.0625, 0.01,
                      None if frames == 1 else True)


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_demo_records_make_one_row_per_run_with_every_class(tmp_path, suffix):
    runs = [_run(0), _run(1, frames=1, accuracies=[50.0, 40.0, 4.0, 60.0, 0.0, 20.0, 48.0, 12.0])]
    path = results.write_results(tmp_path / f"demo{suffix}", demo_records(runs), {"benchmark": "demo"})
    lines = results.render_table(results.read_results(path)).splitlines()
    assert lines[0] == ("| seed | frames | " + " | ".join(CLASS_NAMES)
                        + " | video top-1 (%) | mean class (%) | RoI displacement |")
    assert lines[2] == "| 0 | 8 | 100 | 96 | 92 | 100 | 88 | 96 | 100 | 100 | 96.5 | 96.5 | 0.062 |"
    assert lines[3] == "| 1 | 1 | 50 | 40 | 4 | 60 | 0 | 20 | 48 | 12 | 29.2 | 29.2 | 0.062 |"


def test_demo_seeds_run_once_per_seed_and_write_their_records(tmp_path, monkeypatch, capsys):
    import sfvideo.demo

    seen = []

    def fake_run_demo(out_dir, options, log=print):
        seen.append((str(out_dir), options.seed, options.run_name, options.epochs))
        return _run(options.seed)

    monkeypatch.setattr(sfvideo.demo, "run_demo", fake_run_demo)
    path = tmp_path / "demo.csv"
    assert demo_cli.main(["--out", str(tmp_path), "--epochs", "1", "--seeds", "3", "5", "--results", str(path)]) == 0
    assert seen == [(str(tmp_path), 3, "seed3", 1), (str(tmp_path), 5, "seed5", 1)]
    rows = results.read_results(path)
    assert [r["seed"] for r in rows] == ["3", "5"] and {r["benchmark"] for r in rows} == {"demo"}
    assert "--seeds 3 5" in rows[0]["command"] and "seed 3" in capsys.readouterr().out  # the side-by-side table


@pytest.mark.parametrize("argv,message", [
    (["--seeds", "1", "--seed", "2"], "leave out --seed"),
    (["--seeds", "1", "--run-name", "x"], "leave out --seed and --run-name"),
    (["--ablation", "--seeds", "1"], "leave out --frames, --run-name and --seeds"),
])
def test_demo_modes_that_choose_their_run_folders_refuse_clashing_options(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        demo_cli.main(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_only_the_named_tables_are_written(tmp_path, capsys):
    from sfvideo.cli import results_tables

    root = tmp_path / "checkout"
    (root / "docs").mkdir(parents=True)
    record = {"check": "c", "description": "a check", "max_abs_diff": 2.5e-7, "argmax_agrees": True}
    results.write_results(root / "results" / "official_parity.csv", [record], {"benchmark": "parity"})
    page = root / "docs" / "results.md"
    page.write_text("<!-- results:official_parity -->\nold\n<!-- /results:official_parity -->\n"
                    "<!-- results:loader -->\nnot measured\n<!-- /results:loader -->\n")
    assert results_tables.main(["--root", str(root)]) == 1  # loader.csv does not exist
    assert "expected one of loader.csv" in capsys.readouterr().err and "old" in page.read_text()
    assert results_tables.main(["--root", str(root), "--only", "official_parity"]) == 0
    assert "| a check | 2.5e-07 | yes |" in page.read_text() and "not measured" in page.read_text()
    assert results_tables.main(["--root", str(root), "--only", "flops"]) == 1
    assert "no results markers named flops" in capsys.readouterr().err
