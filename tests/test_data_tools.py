"""The data tools: the Kinetics list alias, resumable re-encoding."""

from __future__ import annotations

import pytest

from _data_helpers import make_video
from sfvideo.data.decoding import decode_video
from sfvideo.data.prepare import prepare_dataset, scaled_size


def test_build_kinetics_lists_is_build_lists_format_kinetics(tmp_path, capsys):
    from sfvideo.cli import build_kinetics_lists, build_lists

    data = tmp_path / "k400"
    (data / "val/zumba").mkdir(parents=True)
    (data / "val/zumba/aaa_000000_000010.mp4").write_bytes(b"x")
    (data / "val/bbb_000001_000011.webm").write_bytes(b"x")
    (data / "validate.csv").write_text("label,youtube_id,time_start,time_end,split\n"
                                       "zumba,aaa,0,10,val\nabseiling,bbb,1,11,val\nzumba,ccc,2,12,val\n")
    assert build_kinetics_lists.main(["--root", str(data), "--out-dir", str(tmp_path / "alias")]) == 0
    assert "listed but missing: 1" in capsys.readouterr().out
    assert build_lists.main(["--format", "kinetics", "--root", str(data), "--out-dir", str(tmp_path / "lists")]) == 0
    written = sorted(p.name for p in (tmp_path / "alias").iterdir())
    assert written == sorted(p.name for p in (tmp_path / "lists").iterdir()) == ["classes.txt", "val.txt"]
    for name in written:
        assert (tmp_path / "alias" / name).read_bytes() == (tmp_path / "lists" / name).read_bytes()
    assert (tmp_path / "alias/val.txt").read_text().splitlines() == [
        "val/zumba/aaa_000000_000010.mp4 1", "val/bbb_000001_000011.webm 0"]
    with pytest.raises(SystemExit):  # the format is fixed
        build_kinetics_lists.main(["--format", "folder", "--root", str(data), "--out-dir", str(tmp_path / "x")])


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
    assert not [p for p in dst.rglob("*") if p.name.startswith(".")]  # no temporary files left
    second = prepare_dataset(src, dst, short_side=32, workers=1, progress=False)
    assert sorted(r.status for r in second) == ["failed", "skipped", "skipped"]
