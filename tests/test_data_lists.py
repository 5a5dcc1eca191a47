"""List parsing: ``path label`` lines, official Kinetics CSVs in both layouts, missing-video report."""

from __future__ import annotations

import pytest

from sfvideo.config import load_config
from sfvideo.data import build_dataset
from sfvideo.data.build import missing_report_path
from sfvideo.data.lists import (
    ListFormatError,
    VideoRecord,
    kinetics_candidates,
    load_video_list,
    read_class_names,
    read_kinetics_csv,
    read_path_label_list,
)

CLASSES = ["abseiling", "playing guitar", "zumba"]
HEADER = "label,youtube_id,time_start,time_end,split,is_cc\n"


def _write(path, text):
    path.write_text(text)
    return path


def test_path_label_with_indices_names_and_spaces(tmp_path):
    lst = _write(tmp_path / "l.txt", "a/b.mp4 0\n\n# comment\nmy videos/clip one.mp4 2\nx.mp4 zumba\ny.mp4 playing guitar\n")
    records = read_path_label_list(lst, CLASSES)
    assert records == [
        VideoRecord("a/b.mp4", 0),
        VideoRecord("my videos/clip one.mp4", 2),
        VideoRecord("x.mp4", 2),
        VideoRecord("y.mp4", 1),
    ]


@pytest.mark.parametrize(
    "bad_line, reason",
    [("just_a_path.mp4", "expected 'path label'"), ("v.mp4 notaclass", "unknown class"), ("v.mp4 7", "out of range")],
)
def test_malformed_line_names_file_and_line(tmp_path, bad_line, reason):
    lst = _write(tmp_path / "train.txt", f"a.mp4 0\nb.mp4 1\n{bad_line}\n")
    with pytest.raises(ListFormatError, match=rf"train\.txt:3: .*{reason}"):
        read_path_label_list(lst, CLASSES)


def test_integer_labels_need_no_class_names(tmp_path):
    lst = _write(tmp_path / "l.txt", "a.mp4 5\n")
    assert read_path_label_list(lst, None) == [VideoRecord("a.mp4", 5)]
    _write(lst, "a.mp4 zumba\n")
    with pytest.raises(ListFormatError, match="l.txt:1: .*DATA.CLASS_NAMES"):
        read_path_label_list(lst, None)


def test_class_names_file(tmp_path):
    names = _write(tmp_path / "c.txt", "a\nb c\n\n")
    assert read_class_names(names) == ["a", "b c"]
    _write(names, "a\nb\na\n")
    with pytest.raises(ListFormatError, match="c.txt:3: .*line 1"):
        read_class_names(names)


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")


def test_kinetics_csv_both_layouts_and_missing(tmp_path):
    data = tmp_path / "k400"
    _touch(data / "train/abseiling/aaa_000010_000020.mp4")  # label-folder layout
    _touch(data / "train/bbb_000000_000010.mkv")  # flat layout
    _touch(data / "train/playing_guitar/ccc_000005_000015.webm")  # underscore label folder
    csv = _write(
        tmp_path / "train.csv",
        HEADER
        + "abseiling,aaa,10,20,train,0\n"
        + "zumba,bbb,0,10,train,1\n"
        + '"playing guitar",ccc,5.0,15.0,train,0\n'
        + "zumba,ddd,0,10,train,0\n",
    )
    result = load_video_list(csv, data, CLASSES)
    assert result.records == [
        VideoRecord("train/abseiling/aaa_000010_000020.mp4", 0),
        VideoRecord("train/bbb_000000_000010.mkv", 2),
        VideoRecord("train/playing_guitar/ccc_000005_000015.webm", 1),
    ]
    assert [(m.line, m.youtube_id) for m in result.missing] == [(5, "ddd")]
    assert result.missing[0].expected == "train/zumba/ddd_000000_000010.mp4"


def test_kinetics_candidates_cover_layouts_and_extensions():
    cands = kinetics_candidates("val", "playing guitar", "id", 3, 13)
    assert "val/playing guitar/id_000003_000013.mp4" == cands[0]
    for ext in ("mp4", "mkv", "webm"):
        assert f"val/id_000003_000013.{ext}" in cands
        assert f"val/playing_guitar/id_000003_000013.{ext}" in cands


@pytest.mark.parametrize(
    "row, reason",
    [("zumba,id,0,10\n", "5 or 6"), ("zumba,id,zero,10,train\n", "could not convert|invalid"), ("salsa,id,0,10,train\n", "unknown class")],
)
def test_kinetics_csv_malformed_row(tmp_path, row, reason):
    csv = _write(tmp_path / "val.csv", HEADER + "zumba,ok,0,10,train,0\n" + row)
    with pytest.raises(ListFormatError, match=rf"val\.csv:3: .*({reason})"):
        read_kinetics_csv(csv, tmp_path, CLASSES)


def test_build_dataset_writes_missing_report(tmp_path):
    from _data_helpers import make_video

    data = tmp_path / "data"
    make_video(data / "train/zumba/have_000000_000010.mp4", num_frames=8)
    _write(data / "train.csv", HEADER + "zumba,have,0,10,train,0\nzumba,gone1,0,10,train,0\nabseiling,gone2,3,13,train,0\n")
    _write(tmp_path / "classes.txt", "\n".join(CLASSES) + "\n")
    out = tmp_path / "out"
    cfg = load_config(None, [
        "DATA.PATH_TO_DATA_DIR", str(data), "DATA.TRAIN_LIST", "train.csv", "DATA.CLASS_NAMES", str(tmp_path / "classes.txt"),
        "MODEL.NUM_CLASSES", "3", "OUTPUT_DIR", str(out),
    ])
    ds = build_dataset(cfg, "train")
    assert len(ds) == 1 and ds.records[0].label == 2
    report = missing_report_path(cfg, "train")
    assert report.parent == out
    lines = [l for l in report.read_text().splitlines() if not l.startswith("#")]
    assert len(lines) == 2
    assert "gone1" in lines[0] and "\t3\t" in lines[0] and "gone2" in lines[1]


def test_build_dataset_rejects_label_above_num_classes(tmp_path):
    _write(tmp_path / "train.txt", "a.mp4 0\nb.mp4 9\n")
    cfg = load_config(None, ["DATA.PATH_TO_DATA_DIR", str(tmp_path), "DATA.CLASS_NAMES", "", "MODEL.NUM_CLASSES", "5"])
    with pytest.raises(ListFormatError, match="label 9"):
        build_dataset(cfg, "train")


def test_build_dataset_missing_list_names_it(tmp_path):
    cfg = load_config(None, ["DATA.PATH_TO_DATA_DIR", str(tmp_path), "DATA.TRAIN_LIST", "nope.txt"])
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        build_dataset(cfg, "train")
