"""The data tools: --help runs, list building from CSVs, resumable re-encoding."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from _data_helpers import make_video
from sfvideo.data.decoding import decode_video
from sfvideo.data.prepare import prepare_dataset, scaled_size

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ["build_kinetics_lists.py", "prepare_kinetics.py", "benchmark_loader.py"]


@pytest.mark.parametrize("tool", TOOLS)
def test_help_runs(tool):
    out = subprocess.run([sys.executable, str(ROOT / "tools" / tool), "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "usage:" in out.stdout and "--" in out.stdout


def test_build_kinetics_lists_tool(tmp_path):
    data = tmp_path / "k400"
    (data / "val/zumba").mkdir(parents=True)
    (data / "val/zumba/aaa_000000_000010.mp4").write_bytes(b"x")
    (data / "val/bbb_000001_000011.webm").write_bytes(b"x")
    csv = tmp_path / "validate.csv"
    csv.write_text("label,youtube_id,time_start,time_end,split\nzumba,aaa,0,10,val\nabseiling,bbb,1,11,val\nzumba,ccc,2,12,val\n")
    classes = tmp_path / "classes.txt"
    classes.write_text("abseiling\nzumba\n")
    out = subprocess.run(
        [sys.executable, str(ROOT / "tools/build_kinetics_lists.py"), "--csv", str(csv), "--out-dir", str(tmp_path / "lists"),
         "--data-dir", str(data), "--class-names", str(classes), "MODEL.NUM_CLASSES", "2"],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "lists/validate.txt").read_text().splitlines() == [
        "val/zumba/aaa_000000_000010.mp4 1", "val/bbb_000001_000011.webm 0"]
    assert "ccc" in (tmp_path / "lists/validate_missing.txt").read_text()
    assert "1 missing" in out.stdout


@pytest.mark.parametrize("h, w, short, expected", [(480, 640, 320, (320, 426)), (640, 360, 320, (568, 320)), (240, 320, 320, (240, 320))])
def test_scaled_size(h, w, short, expected):
    assert scaled_size(h, w, short) == expected


def test_prepare_reencodes_resumably(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_video(src / "a" / "one.mp4", num_frames=10, height=64, width=96)
    make_video(src / "two.mp4", num_frames=10, height=96, width=64)
    (src / "broken.mp4").write_bytes(b"not a video")
    first = prepare_dataset(src, dst, short_side=32, workers=2, progress=False)
    assert sorted(r.status for r in first) == ["done", "done", "failed"]
    frames, meta = decode_video(dst / "a" / "one.mp4", lambda m: [0], "pyav")
    assert frames.shape[1:3] == (32, 48) and meta.num_frames == 10
    assert not list(dst.rglob(".*part*"))  # no temporary files left
    second = prepare_dataset(src, dst, short_side=32, workers=1, progress=False)
    assert sorted(r.status for r in second) == ["failed", "skipped", "skipped"]
