"""build_lists: each format on a miniature tree in its official layout, made of real video files.

The annoying parts are kept: CRLF and 1-based indices in UCF101's files, trailing spaces in
HMDB51's, bracketed templates in SSv2's JSON, Kinetics rows whose video is missing, files present
but in no list.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sfvideo.data.formats import build_lists, summary, write_lists
from sfvideo.data.lists import ListFormatError, read_class_names, read_path_label_list

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def encoded(tmp_path_factory) -> dict[str, Path]:
    """One small real video per container (6 frames, 64x48): mp4 (H.264), avi (MPEG-4), webm (VP9)."""
    from sfvideo.data.encode import write_video

    out = tmp_path_factory.mktemp("encoded")
    frames = (np.random.default_rng(0).random((6, 48, 64, 3)) * 255).astype(np.uint8)
    return {ext: write_video(out / f"v.{ext}", frames, codec=codec)
            for ext, codec in (("mp4", "libx264"), ("avi", "mpeg4"), ("webm", "libvpx-vp9"))}


@pytest.fixture
def place(encoded):
    """``place(path)`` puts a real video of the path's container type at ``path``."""
    def _place(path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(encoded[path.suffix[1:]], path)
        return path
    return _place


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


# ------------------------------------------------------------------------------------ folder
def test_folder_stratified_split_is_exact_and_seeded(tmp_path, place):
    root = tmp_path / "videos"
    for name in ("a.mp4", "b.mp4", "c.avi", "d.mp4", "e.mp4"):
        place(root / "cats" / name)
    place(root / "dogs" / "x.mp4"), place(root / "dogs" / "y.webm")
    place(root / "birds" / "sub" / "z.mp4")  # nested below the class folder: still the class
    (root / "cats" / "notes.txt").write_text("not a video")
    (root / "cats" / ".hidden.mp4").write_bytes(b"")
    built = build_lists("folder", root, val_fraction=0.4, seed=1)
    assert built.classes == ["birds", "cats", "dogs"]
    train, val = built.splits["train"], built.splits["val"]
    # per class: round(0.4 n) held out, at least one once a class has two videos
    assert sorted(r.label for r in val) == [1, 1, 2]
    everything = {("birds/sub/z.mp4", 0), ("dogs/x.mp4", 2), ("dogs/y.webm", 2)} | {
        (f"cats/{n}", 1) for n in ("a.mp4", "b.mp4", "c.avi", "d.mp4", "e.mp4")}
    assert set(train) | set(val) == everything and not set(train) & set(val)
    assert build_lists("folder", root, val_fraction=0.4, seed=1).splits == built.splits  # seeded
    assert built.missing == [] and built.unlisted == []

    out = tmp_path / "lists"
    write_lists(built, out)
    assert lines(out / "classes.txt") == ["birds", "cats", "dogs"]
    assert lines(out / "train.txt") == [f"{r.path} {r.label}" for r in train]
    assert not (out / "test.txt").exists()
    # the lists read back with the package's own reader, names and all
    assert read_path_label_list(out / "val.txt", read_class_names(out / "classes.txt")) == val


def test_folder_train_val_folders_are_used_as_given(tmp_path, place):
    root = tmp_path / "videos"
    place(root / "train" / "jump" / "1.mp4"), place(root / "train" / "run" / "2.mp4")
    place(root / "train" / "run" / "3.avi"), place(root / "val" / "run" / "4.mp4")
    place(root / "train" / "élan" / "5.mp4")  # any folder name, written as UTF-8
    place(root / "stray.mp4")  # in no split
    built = build_lists("folder", root)
    out = tmp_path / "out"
    write_lists(built, out)
    assert (out / "classes.txt").read_bytes().decode("utf-8").splitlines() == ["jump", "run", "élan"]
    assert lines(out / "train.txt") == ["train/jump/1.mp4 0", "train/run/2.mp4 1", "train/run/3.avi 1",
                                        "train/élan/5.mp4 2"]
    assert lines(out / "val.txt") == ["val/run/4.mp4 1"]
    assert built.unlisted == ["stray.mp4"]
    (root / "val" / "swim").mkdir()
    with pytest.raises(ListFormatError, match="swim"):
        build_lists("folder", root)


def test_build_lists_tool_prints_summary_and_writes(tmp_path, place):
    root = tmp_path / "videos"
    for c in ("a", "b"):
        for i in range(3):
            place(root / c / f"{i}.mp4")
    out = subprocess.run([sys.executable, str(ROOT / "tools/build_lists.py"), "--format", "folder", "--root", str(root),
                          "--out-dir", str(tmp_path / "o"), "--val-fraction", "0.34", "--seed", "3"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "2 classes" in out.stdout and "train: 4 videos" in out.stdout and "val: 2 videos" in out.stdout
    assert "listed but missing: 0" in out.stdout and "present but unlisted: 0" in out.stdout
    assert len(lines(tmp_path / "o/train.txt")) == 4
    bad = subprocess.run([sys.executable, str(ROOT / "tools/build_lists.py"), "--format", "ucf101", "--root", str(root),
                          "--out-dir", str(tmp_path / "o2")], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "classInd.txt" in bad.stderr and not (tmp_path / "o2").exists()


# ------------------------------------------------------------------------------------ UCF101
def make_ucf(root: Path, place) -> None:
    videos = {
        "ApplyEyeMakeup": ["v_ApplyEyeMakeup_g08_c01.avi", "v_ApplyEyeMakeup_g01_c01.avi"],
        "Archery": ["v_Archery_g08_c01.avi", "v_Archery_g01_c02.avi", "v_Archery_g99_c01.avi"],
        "HandstandPushups": ["v_HandStandPushups_g08_c01.avi", "v_HandStandPushups_g01_c01.avi"],
    }
    for cls, names in videos.items():
        for n in names:
            place(root / "UCF-101" / cls / n)
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    crlf = lambda rows: "".join(r + "\r\n" for r in rows).encode()  # noqa: E731
    (lists / "classInd.txt").write_bytes(crlf(["1 ApplyEyeMakeup", "2 Archery", "3 HandstandPushups"]))
    (lists / "trainlist01.txt").write_bytes(crlf([
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1", "Archery/v_Archery_g08_c01.avi 2",
        "HandstandPushups/v_HandStandPushups_g08_c01.avi 3"]))
    (lists / "testlist01.txt").write_bytes(crlf([
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi", "Archery/v_Archery_g01_c02.avi",
        "HandstandPushups/v_HandStandPushups_g01_c01.avi",  # folder and file differ in case, as officially
        "Archery/v_Archery_g02_c01.avi"]))  # listed, not downloaded


def test_ucf101_lists_exact(tmp_path, place):
    root = tmp_path / "ucf101"
    make_ucf(root, place)
    built = build_lists("ucf101", root, split=1)
    out = tmp_path / "out"
    write_lists(built, out)
    assert lines(out / "classes.txt") == ["ApplyEyeMakeup", "Archery", "HandstandPushups"]
    assert lines(out / "train.txt") == [
        "UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 0", "UCF-101/Archery/v_Archery_g08_c01.avi 1",
        "UCF-101/HandstandPushups/v_HandStandPushups_g08_c01.avi 2"]
    test = lines(out / "test.txt")
    assert test == ["UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi 0", "UCF-101/Archery/v_Archery_g01_c02.avi 1",
                    "UCF-101/HandstandPushups/v_HandStandPushups_g01_c01.avi 2"]
    assert lines(out / "val.txt") == test
    assert built.missing == ["UCF-101/Archery/v_Archery_g02_c01.avi"]
    assert built.unlisted == ["UCF-101/Archery/v_Archery_g99_c01.avi"]
    assert "\r" not in (out / "classes.txt").read_text()


@pytest.mark.parametrize("file, content, match", [
    ("trainlist01.txt", "Archery/v_Archery_g08_c01.avi 2\r\nArchery/v_Archery_g01_c02.avi 4\r\n",
     r"trainlist01.txt:2: label 4 is not in .*classInd.txt"),
    ("trainlist01.txt", "Archery/v_Archery_g08_c01.avi 1\r\n", r"trainlist01.txt:1: label 1 \(ApplyEyeMakeup\) disagrees"),
    ("testlist01.txt", "Bowling/v_Bowling_g01_c01.avi\r\n", r"testlist01.txt:1: class folder 'Bowling'"),
    ("classInd.txt", "0 ApplyEyeMakeup\r\n1 Archery\r\n", r"classInd.txt: class indices must be 1..2"),
    ("testlist01.txt", None, r"testlist01.txt: split file missing"),
])
def test_ucf101_bad_input_names_file_and_line_and_writes_nothing(tmp_path, place, file, content, match):
    root = tmp_path / "ucf101"
    make_ucf(root, place)
    target = root / "ucfTrainTestlist" / file
    if content is None:
        target.unlink()
    else:
        target.write_bytes(content.encode())
    out = tmp_path / "out"
    out.mkdir()
    (out / "train.txt").write_text("old\n")
    with pytest.raises(ListFormatError, match=match):
        write_lists(build_lists("ucf101", root), out)
    assert sorted(p.name for p in out.iterdir()) == ["train.txt"] and lines(out / "train.txt") == ["old"]


# ------------------------------------------------------------------------------------ HMDB51
def make_hmdb(root: Path, place) -> None:
    vids = {"brush_hair": ["April_09_brush_hair_u_nm_np1_ba_goo_0.avi", "Blonde_being_brushed_brush_hair_f_nm_np2_ri_med_1.avi",
                           "unused_brush_hair_2.avi"],
            "cartwheel": ["Acrobacias_de_un_fenomeno_cartwheel_f_cm_np1_ba_bad_8.avi", "cart_test_cartwheel_1.avi"],
            "catch": ["Ball_hochwerfen_catch_u_cm_np1_fr_goo_0.avi", "catch_test_2.avi", "stray_catch.avi"]}
    for cls, names in vids.items():
        for n in names:
            place(root / "hmdb51_org" / cls / n)
    splits = root / "testTrainMulti_7030_splits"
    splits.mkdir(parents=True)
    rows = {"brush_hair": [(vids["brush_hair"][0], 1), (vids["brush_hair"][1], 2), (vids["brush_hair"][2], 0)],
            "cartwheel": [(vids["cartwheel"][0], 1), (vids["cartwheel"][1], 2), ("gone_cartwheel.avi", 1)],
            "catch": [(vids["catch"][0], 1), (vids["catch"][1], 2)]}
    for cls, entries in rows.items():
        for s in (1, 2):
            text = "".join(f"{n} {k} \n" for n, k in (entries if s == 1 else entries[::-1]))  # trailing space, official
            (splits / f"{cls}_test_split{s}.txt").write_text(text)


def test_hmdb51_lists_exact(tmp_path, place):
    root = tmp_path / "hmdb"
    make_hmdb(root, place)
    built = build_lists("hmdb51", root, split=1)
    out = tmp_path / "out"
    write_lists(built, out)
    assert lines(out / "classes.txt") == ["brush_hair", "cartwheel", "catch"]
    assert lines(out / "train.txt") == [
        "hmdb51_org/brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0.avi 0",
        "hmdb51_org/cartwheel/Acrobacias_de_un_fenomeno_cartwheel_f_cm_np1_ba_bad_8.avi 1",
        "hmdb51_org/catch/Ball_hochwerfen_catch_u_cm_np1_fr_goo_0.avi 2"]
    assert lines(out / "test.txt") == [
        "hmdb51_org/brush_hair/Blonde_being_brushed_brush_hair_f_nm_np2_ri_med_1.avi 0",
        "hmdb51_org/cartwheel/cart_test_cartwheel_1.avi 1", "hmdb51_org/catch/catch_test_2.avi 2"]
    assert lines(out / "val.txt") == lines(out / "test.txt")
    assert built.missing == ["cartwheel/gone_cartwheel.avi"]
    assert built.unlisted == ["hmdb51_org/brush_hair/unused_brush_hair_2.avi", "hmdb51_org/catch/stray_catch.avi"]
    assert "listed but missing: 1" in summary(built)


def test_hmdb51_errors(tmp_path, place):
    root = tmp_path / "hmdb"
    make_hmdb(root, place)
    bad = root / "testTrainMulti_7030_splits/catch_test_split2.txt"
    bad.write_text("catch_test_2.avi 2 \nBall_hochwerfen_catch_u_cm_np1_fr_goo_0.avi 3 \n")
    with pytest.raises(ListFormatError, match=r"catch_test_split2.txt:2: expected"):
        build_lists("hmdb51", root, split=2)
    (root / "testTrainMulti_7030_splits/catch_test_split1.txt").unlink()
    with pytest.raises(ListFormatError, match=r"split file missing for class folder\(s\) catch"):
        build_lists("hmdb51", root, split=1)
    with pytest.raises(ListFormatError, match=r"no HMDB51 split files \*_test_split3.txt"):
        build_lists("hmdb51", root, split=3)


# ------------------------------------------------------------------------------------ SSv2
def make_ssv2(root: Path, place, official_names: bool = False) -> None:
    for vid in ("101", "102", "103", "201", "999"):
        place(root / "20bn-something-something-v2" / f"{vid}.webm")
    labels = {"Approaching something with your camera": "0", "Holding something next to something": "1",
              "Pushing something from left to right": "2"}
    train = [
        {"id": "101", "label": "holding potato next to vicks vaporub bottle",
         "template": "Holding [something] next to [something]", "placeholders": ["potato", "vicks vaporub bottle"]},
        {"id": "102", "label": "pushing a cup from left to right", "template": "Pushing [something] from left to right",
         "placeholders": ["a cup"]},
        {"id": "103", "label": "approaching a tree with your camera",
         "template": "Approaching [something] with your camera", "placeholders": ["a tree"]},
        {"id": "104", "label": "pushing pen from left to right", "template": "Pushing [something] from left to right",
         "placeholders": ["pen"]},  # not downloaded
    ]
    val = [{"id": "201", "label": "holding a mug next to a book", "template": "Holding [something] next to [something]",
            "placeholders": ["a mug", "a book"]}]
    test = [{"id": "301"}]
    for kind, data in (("labels", labels), ("train", train), ("validation", val), ("test", test)):
        path = root / (f"something-something-v2-{kind}.json" if official_names else f"labels/{kind}.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1))


@pytest.mark.parametrize("official_names", [False, True])
def test_ssv2_lists_exact(tmp_path, place, official_names):
    root = tmp_path / "ssv2"
    make_ssv2(root, place, official_names)
    built = build_lists("ssv2", root)
    out = tmp_path / "out"
    write_lists(built, out)
    assert lines(out / "classes.txt") == ["Approaching something with your camera", "Holding something next to something",
                                          "Pushing something from left to right"]
    assert lines(out / "train.txt") == ["20bn-something-something-v2/101.webm 1", "20bn-something-something-v2/102.webm 2",
                                        "20bn-something-something-v2/103.webm 0"]
    assert lines(out / "val.txt") == ["20bn-something-something-v2/201.webm 1"]
    assert not (out / "test.txt").exists()
    assert built.missing == ["20bn-something-something-v2/104.webm"]
    assert built.unlisted == ["20bn-something-something-v2/999.webm"]
    # class names with spaces read back through the package's list reader
    assert read_path_label_list(out / "val.txt", read_class_names(out / "classes.txt"))[0].label == 1


def test_ssv2_unknown_template_names_file_and_entry(tmp_path, place):
    root = tmp_path / "ssv2"
    make_ssv2(root, place)
    val = root / "labels/validation.json"
    val.write_text(json.dumps([{"id": "201", "template": "Holding [something] next to [something]"},
                               {"id": "202", "template": "Spinning [something] that quickly stops spinning"}]))
    with pytest.raises(ListFormatError, match=r"validation.json: entry 1 \(id 202\): template .*Spinning.* not in"):
        build_lists("ssv2", root)
    (root / "labels/validation.json").unlink()
    with pytest.raises(ListFormatError, match="validation.json"):
        build_lists("ssv2", root)


# ------------------------------------------------------------------------------------ Kinetics
def test_kinetics_both_layouts_missing_rows_and_sorted_classes(tmp_path, place):
    root = tmp_path / "k600"
    (root / "annotations").mkdir(parents=True)
    (root / "annotations/train.csv").write_text(
        "label,youtube_id,time_start,time_end,split\n"
        "zumba,aaa,0,10,train\n"
        '"playing guitar",bbb,5,15,train\n'
        "abseiling,ccc,1,11,train\n"
        "abseiling,gone,2,12,train\n")
    (root / "annotations/validate.csv").write_text(
        "label,youtube_id,time_start,time_end,split\n"
        "zumba,ddd,3,13,validate\n"
        "abseiling,eee,4,14,validate\n")
    (root / "annotations/test.csv").write_text("youtube_id,time_start,time_end,split\nfff,0,10,test\n")
    place(root / "train/zumba/aaa_000000_000010.mp4")          # per-class layout
    place(root / "train/playing_guitar/bbb_000005_000015.mp4")  # class folder with underscores
    place(root / "train/ccc_000001_000011.webm")               # flat layout
    place(root / "val/ddd_000003_000013.mp4")                  # CSV says "validate", folder "val"
    place(root / "val/abseiling/eee_000004_000014.mkv".replace(".mkv", ".mp4"))
    place(root / "train/zumba/extra_000000_000010.mp4")        # in no CSV
    built = build_lists("kinetics", root)
    out = tmp_path / "out"
    write_lists(built, out)
    assert lines(out / "classes.txt") == ["abseiling", "playing guitar", "zumba"]
    assert lines(out / "train.txt") == ["train/zumba/aaa_000000_000010.mp4 2",
                                        "train/playing_guitar/bbb_000005_000015.mp4 1",
                                        "train/ccc_000001_000011.webm 0"]
    assert lines(out / "val.txt") == ["val/ddd_000003_000013.mp4 2", "val/abseiling/eee_000004_000014.mp4 0"]
    assert not (out / "test.txt").exists() and any("test.csv has no labels" in n for n in built.notes)
    assert built.missing == ["train/abseiling/gone_000002_000012.mp4"]
    assert built.unlisted == ["train/zumba/extra_000000_000010.mp4"]
    # a class-name file fixes another order; an unknown label is an error with file and line
    names = tmp_path / "names.txt"
    names.write_text("zumba\nabseiling\nplaying guitar\n")
    assert [r.label for r in build_lists("kinetics", root, class_names=names).splits["val"]] == [0, 1]
    names.write_text("zumba\nabseiling\n")
    with pytest.raises(ListFormatError, match=r"train.csv:3: unknown class name 'playing guitar'"):
        build_lists("kinetics", root, class_names=names)


def test_write_lists_is_all_or_nothing(tmp_path, monkeypatch):
    from sfvideo.data import formats
    from sfvideo.data.lists import VideoRecord
    from sfvideo.utils import io

    built = formats.BuiltLists(str(tmp_path), ["a", "b"], {"train": [VideoRecord("a/1.mp4", 0)],
                                                          "val": [VideoRecord("b/2.mp4", 1)]}, [], [], [])
    out = tmp_path / "out"
    out.mkdir()
    (out / "classes.txt").write_text("old\n")
    real, opened = io.atomic_write, []

    def failing(path, mode="wb"):
        opened.append(path)
        if len(opened) == 3:
            raise OSError("disk full")
        return real(path, mode)

    monkeypatch.setattr(io, "atomic_write", failing)
    with pytest.raises(OSError, match="disk full"):
        write_lists(built, out)
    assert len(opened) == 3  # classes.txt and train.txt were open when val.txt failed ...
    assert sorted(p.name for p in out.iterdir()) == ["classes.txt"]  # ... and neither replaced anything
    assert lines(out / "classes.txt") == ["old"]


# ------------------------------------------------------------------------------------ mistakes
@pytest.mark.parametrize("name", ["two\nlines", "carriage\rreturn", " leading", "trailing ", "#hash"])
def test_a_class_folder_that_cannot_be_a_line_is_refused_naming_it(tmp_path, place, name):
    root = tmp_path / "videos"
    place(root / "fine" / "1.mp4"), place(root / name / "2.mp4")
    with pytest.raises(ListFormatError) as err:
        build_lists("folder", root)
    message = str(err.value)
    assert repr(str(root / name)) in message and "\n" not in message and "rename" in message
    root2 = tmp_path / "split"
    place(root2 / "train" / "fine" / "1.mp4"), place(root2 / "train" / name / "2.mp4")
    place(root2 / "val" / "fine" / "3.mp4")
    with pytest.raises(ListFormatError, match="rename"):
        build_lists("folder", root2)


def test_a_video_file_name_that_cannot_be_a_line_is_refused_naming_it(tmp_path, place):
    root = tmp_path / "videos"
    place(root / "a" / "1.mp4"), place(root / "a" / "bad\nname.mp4"), place(root / "b" / "2.mp4")
    with pytest.raises(ListFormatError, match=r"bad\\nname\.mp4.*rename"):
        build_lists("folder", root)


def test_a_train_folder_without_val_is_split_not_a_class_named_train(tmp_path, place):
    root = tmp_path / "videos"
    for c in ("jump", "run"):
        for i in range(5):
            place(root / "train" / c / f"{i}.mp4")
    built = build_lists("folder", root, val_fraction=0.2)
    assert built.classes == ["jump", "run"]
    assert len(built.splits["train"]) == 8 and len(built.splits["val"]) == 2
    assert all(r.path.startswith("train/") for s in built.splits.values() for r in s)


def test_a_class_named_train_in_a_flat_layout_stays_a_class(tmp_path, place):
    root = tmp_path / "videos"
    for c in ("bus", "train"):
        for i in range(3):
            place(root / c / f"{i}.mp4")
    built = build_lists("folder", root, val_fraction=0.0)
    assert built.classes == ["bus", "train"] and len(built.splits["train"]) == 6


@pytest.mark.parametrize("line", ["../outside/v_Escape_g01_c01.avi 2", "{outside}/v_Escape_g01_c01.avi 2"])
def test_a_ucf101_line_leaving_the_root_is_refused(tmp_path, place, line):
    root = tmp_path / "ucf101"
    make_ucf(root, place)
    outside = place(tmp_path / "outside" / "v_Escape_g01_c01.avi")
    place(root / "UCF-101" / "Archery" / "x.avi")
    trainlist = root / "ucfTrainTestlist" / "trainlist01.txt"
    bad = line.format(outside=outside.parent).replace("../", "Archery/../../../")
    trainlist.write_bytes(trainlist.read_bytes() + f"{bad}\r\n".encode())
    with pytest.raises(ListFormatError, match=r"trainlist01.txt:4: .*leaves --root"):
        build_lists("ucf101", root)


def test_an_hmdb51_line_with_a_folder_is_refused(tmp_path, place):
    root = tmp_path / "hmdb"
    make_hmdb(root, place)
    split = root / "testTrainMulti_7030_splits/catch_test_split1.txt"
    split.write_text(split.read_text() + "../../brush_hair/unused_brush_hair_2.avi 1 \n")
    with pytest.raises(ListFormatError, match=r"catch_test_split1.txt:3: .*a file name"):
        build_lists("hmdb51", root)


def test_repeated_lines_are_written_once_and_the_summary_says_so(tmp_path, place):
    root = tmp_path / "ucf101"
    make_ucf(root, place)
    trainlist = root / "ucfTrainTestlist" / "trainlist01.txt"
    trainlist.write_bytes(trainlist.read_bytes() * 2)
    built = build_lists("ucf101", root)
    write_lists(built, tmp_path / "out")
    assert len(lines(tmp_path / "out" / "train.txt")) == 3
    assert "3 repeated lines in train written once" in summary(built)


def test_a_val_fraction_that_leaves_a_class_without_training_videos_warns(tmp_path, place):
    root = tmp_path / "videos"
    place(root / "few" / "1.mp4"), place(root / "few" / "2.mp4")
    for i in range(10):
        place(root / "many" / f"{i}.mp4")
    built = build_lists("folder", root, val_fraction=0.75)
    assert [w for w in built.warnings if "few" in w and "no training video" in w]
    assert "warning: class 'few' has no training video" in summary(built)


def test_build_lists_refuses_a_read_only_out_dir_in_one_line(tmp_path, place, read_only_dir):
    root = tmp_path / "videos"
    place(root / "a" / "1.mp4"), place(root / "b" / "2.mp4")
    before = sorted(p.name for p in read_only_dir.iterdir())
    res = subprocess.run([sys.executable, str(ROOT / "tools/build_lists.py"), "--format", "folder", "--root",
                          str(root), "--out-dir", str(read_only_dir)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "--out-dir" in res.stderr and str(read_only_dir) in res.stderr
    assert sorted(p.name for p in read_only_dir.iterdir()) == before
    res = subprocess.run([sys.executable, str(ROOT / "tools/build_lists.py"), "--format", "folder", "--root",
                          str(root), "--out-dir", str(root / "a" / "1.mp4")], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "not a folder" in res.stderr and len(res.stderr.strip().splitlines()) == 1
