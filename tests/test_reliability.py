"""The tools against hostile input and conditions (foreign or crafted weights, bad config values, odd
encodings, a full disk): each fails clearly, naming the file or key, and loses nothing written."""

from __future__ import annotations

import errno
import json
import os
import stat

import pytest
import torch

from engine_helpers import make_video_dataset, tiny_opts
from sfvideo.checkpoint import atomic_save
from sfvideo.utils import io as sfio


# ------------------------------------------------------------------ output files honour the umask
@pytest.mark.parametrize("umask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_honour_the_umask(tmp_path, umask, expected):
    old = os.umask(umask)
    try:
        with sfio.atomic_write(tmp_path / "results.json", "w") as f:
            f.write("{}")
        atomic_save({"epoch": 1}, tmp_path / "last.pth")
        with sfio.atomic_path(tmp_path / "model.onnx") as tmp:
            tmp.write_bytes(b"onnx")
    finally:
        os.umask(old)
    for name in ("results.json", "last.pth", "model.onnx"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == expected, name


# ------------------------------------------------------------------ a full disk is named as such
class _FullDisk:
    """A file object that accepts ``limit`` bytes, then fails as a full disk does."""

    def __init__(self, f, limit: int):
        self._f, self._left = f, limit

    def write(self, data):
        if len(data) > self._left:
            raise OSError(errno.ENOSPC, "No space left on device")
        self._left -= len(data)
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._f.__exit__(*exc)


@pytest.mark.parametrize("failure", ["oserror", "torch_message"])
def test_full_disk_says_so_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch, failure):
    path = tmp_path / "last.pth"
    atomic_save({"epoch": 1}, path)
    real_fdopen = os.fdopen
    if failure == "oserror":
        monkeypatch.setattr(sfio.os, "fdopen", lambda *a, **k: _FullDisk(real_fdopen(*a, **k), 100))
    else:  # what torch.save itself reports when its writer runs out of room
        def fail(*a, **k):
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")
        monkeypatch.setattr(torch, "save", fail)
    with pytest.raises(OSError, match=rf"no space left on device while writing {path}"):
        atomic_save({"epoch": 2, "w": torch.zeros(10_000)}, path)
    assert torch.load(path, weights_only=True) == {"epoch": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pth"]  # no temporary left behind


# ------------------------------------------------------------------ torch's FLOP counter under no_grad
@pytest.mark.parametrize("arch, shape", [("video_test", (1, 3, 4, 32, 32)), ("image_test", (1, 3, 32, 32))])
def test_torch_flop_counter_works_under_no_grad(arch, shape):
    from torch.utils.flop_counter import FlopCounterMode

    from sfvideo.models import create_model

    model = create_model(arch, num_classes=5).eval()
    x = torch.randn(shape)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = model(x)
    assert out.shape == (1, 5) and counter.get_total_flops() > 0
    with FlopCounterMode(display=False) as with_grad:  # the same count as with autograd on
        model(x)
    assert counter.get_total_flops() == with_grad.get_total_flops()


# ------------------------------------------------------------------ prepare_kinetics: same stem, other extensions
def test_prepare_keeps_one_output_per_name_and_reports_the_collisions(tmp_path):
    import numpy as np

    from sfvideo.cli import prepare_kinetics
    from sfvideo.data.decoding import decode_video
    from sfvideo.data.encode import write_video

    src, dst = tmp_path / "src", tmp_path / "dst"
    blank = np.zeros((1, 32, 32, 3), np.uint8)
    write_video(src / "clip.mkv", blank.repeat(7, 0))
    write_video(src / "clip.webm", blank.repeat(5, 0), codec="libvpx")
    write_video(src / "clip.mp4", blank.repeat(9, 0))
    write_video(src / "other.webm", blank.repeat(4, 0), codec="libvpx")
    assert prepare_kinetics.main(["--src", str(src), "--dst", str(dst), "--short-side", "32", "--workers", "1",
                                  "--no-progress"]) == 1  # collisions are not a clean run
    outputs = sorted(p.name for p in dst.iterdir() if p.suffix == ".mp4")
    assert outputs == ["clip.mp4", "other.mp4"]
    _, meta = decode_video(dst / "clip.mp4", lambda m: [0], "pyav")
    assert meta.num_frames == 9  # the .mp4 source wins the name, not whichever finished last
    failed = (dst / "failed.txt").read_text()
    assert "clip.mkv" in failed and "clip.webm" in failed and "clip.mp4" in failed.split("clip.mkv")[1]
    again = prepare_kinetics.main(["--src", str(src), "--dst", str(dst), "--short-side", "32", "--workers", "1",
                                   "--no-progress"])
    assert again == 1 and "clip.webm" in (dst / "failed.txt").read_text()  # still reported, still not "done"


# ------------------------------------------------------------------ config values refused when loaded
@pytest.mark.parametrize("key, value, message", [
    ("TRAIN.LOG_PERIOD", "0", "TRAIN.LOG_PERIOD"),
    ("DATA.TRAIN_JITTER_SCALES", "[256]", "DATA.TRAIN_JITTER_SCALES"),
    ("DATA.TRAIN_JITTER_SCALES", "[256, 320, 400]", "DATA.TRAIN_JITTER_SCALES"),
    ("DATA.TRAIN_JITTER_SCALES", "['a', 'b']", "DATA.TRAIN_JITTER_SCALES"),
    ("SOLVER.BETAS", "[0.9]", "SOLVER.BETAS"),
    ("SOLVER.BETAS", "[0.9, 0.99, 0.999]", "SOLVER.BETAS"),
    ("DATA.NUM_WORKERS", "-1", "DATA.NUM_WORKERS"),
    ("DATA.NUM_FRAMES", "True", "DATA.NUM_FRAMES"),
    ("TRAIN.BATCH_SIZE", "False", "TRAIN.BATCH_SIZE"),
    ("SOLVER.BASE_LR", "True", "SOLVER.BASE_LR"),
    ("DATA.MEAN", "[0.5, 0.5, True]", "DATA.MEAN"),
])
def test_bad_values_fail_at_load_naming_the_key(key, value, message):
    from sfvideo.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_config("k400_tiny.yaml", [key, value])


def test_bad_values_in_a_yaml_file_fail_too(tmp_path):
    from sfvideo.config import ConfigError, load_config

    path = tmp_path / "c.yaml"
    path.write_text("DATA:\n  NUM_FRAMES: true\n")
    with pytest.raises(ConfigError, match=r"DATA\.NUM_FRAMES.*c\.yaml"):
        load_config(path)


def test_a_yaml_file_that_is_not_utf8_is_named(tmp_path):
    from sfvideo.config import ConfigError, load_config

    path = tmp_path / "latin1.yaml"
    path.write_bytes("OUTPUT_DIR: /data/r\xe9sultats\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1\.yaml.*UTF-8"):
        load_config(path)


# ------------------------------------------------------------------ weights that match nothing never "load"
def _resnet_like() -> dict:
    return {"conv1.weight": torch.randn(64, 3, 7, 7), "bn1.weight": torch.ones(64), "fc.weight": torch.randn(10, 512),
            "fc.bias": torch.zeros(10)}


def test_foreign_weights_are_refused_naming_the_file_and_the_match_count(tmp_path):
    from sfvideo.checkpoint import CheckpointError, load_pretrained
    from sfvideo.models import create_model

    path = tmp_path / "resnet18.pth"
    torch.save(_resnet_like(), path)
    model = create_model("video_test", num_classes=8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    n = len(before)
    for new_classifier in (False, True):
        with pytest.raises(CheckpointError, match=rf"resnet18\.pth: 0 of {n} model tensors matched.*initial_roi"):
            load_pretrained(model, path, log=None, allow_new_classifier=new_classifier)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing half-loaded


def test_a_partial_checkpoint_is_refused_unless_asked_for(tmp_path):
    from sfvideo.checkpoint import CheckpointError, load_pretrained
    from sfvideo.models import create_model

    sd = create_model("video_test", num_classes=8).state_dict()
    del sd["layers.0.norm1.weight"], sd["feat_extractor.conv1.weight"]
    path = tmp_path / "partial.pth"
    torch.save({"model": sd}, path)
    model = create_model("video_test", num_classes=8)
    with pytest.raises(CheckpointError, match=r"partial\.pth: .* 2 model tensors .*feat_extractor\.conv1\.weight"):
        load_pretrained(model, path, log=None)
    report = load_pretrained(model, path, log=None, allow_partial=True)
    assert sorted(report.initialised) == ["feat_extractor.conv1.weight", "layers.0.norm1.weight"]


def test_classifier_mismatch_fails_at_test_time_and_reinitialises_for_training(tmp_path):
    from sfvideo.checkpoint import CheckpointError, load_pretrained
    from sfvideo.models import create_model

    path = tmp_path / "ten.pth"
    torch.save({"model": create_model("video_test", num_classes=10).state_dict()}, path)
    with pytest.raises(CheckpointError, match=r"ten\.pth.*10 classes.*8"):
        load_pretrained(create_model("video_test", num_classes=8), path, log=None)
    lines = []
    report = load_pretrained(create_model("video_test", num_classes=8), path, log=lines.append,
                             allow_new_classifier=True)
    assert report.initialised == ["proj.weight", "proj.bias"]
    assert len([n for n in report.notes if "classifier" in n]) == 1  # said once, in one line


def test_tensors_claiming_more_memory_than_they_hold_are_refused(tmp_path):
    from sfvideo.checkpoint import CheckpointError, load_pretrained
    from sfvideo.models import create_model

    model = create_model("video_test", num_classes=8)
    sd = dict(model.state_dict())
    sd["proj.weight"] = torch.zeros(1).expand(2 ** 28)  # 4 bytes on disk, 1 GiB once materialised
    path = tmp_path / "bomb.pth"
    torch.save({"model": sd}, path)
    assert path.stat().st_size < 2 ** 20
    with pytest.raises(CheckpointError, match=r"bomb\.pth.*proj\.weight"):
        load_pretrained(model, path, log=None)
    big = dict(model.state_dict())
    big["extra.weight"] = torch.zeros(2 ** 22)  # real data, but 16 MB beside a ~0.2 MB model
    path = tmp_path / "big.pth"
    torch.save(big, path)
    with pytest.raises(CheckpointError, match=r"big\.pth.*MB"):
        load_pretrained(model, path, log=None)


# ------------------------------------------------------------------ foreign weights: every tool refuses, exit status 1
@pytest.fixture(scope="module")
def tiny_data(few_videos):
    return few_videos  # generated once per session (conftest)


@pytest.fixture(scope="module")
def foreign_ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("foreign") / "resnet18.pth"
    torch.save(_resnet_like(), path)
    return path


def test_test_tool_refuses_foreign_weights(tiny_data, foreign_ckpt, tmp_path, capsys):
    from sfvideo.cli import test as test_cli

    with pytest.raises(SystemExit) as exc:  # a message and status 1, not a traceback
        test_cli.main(["--cfg", "k400_tiny.yaml", *tiny_opts(tiny_data, tmp_path / "out", **{
            "TEST.CHECKPOINT": foreign_ckpt})])
    err = capsys.readouterr().err
    assert exc.value.code == 1 and f"{foreign_ckpt}: 0 of" in err, err
    assert not (tmp_path / "out" / "test_results.json").exists()


def test_test_tool_refuses_a_checkpoint_with_another_class_count(tiny_data, tmp_path, capsys):
    from sfvideo.cli import test as test_cli
    from sfvideo.models import create_model

    ten = tmp_path / "ten.pth"
    torch.save({"model": create_model("video_test", num_classes=10).state_dict()}, ten)
    with pytest.raises(SystemExit) as exc:
        test_cli.main(["--cfg", "k400_tiny.yaml", *tiny_opts(tiny_data, tmp_path / "out", **{
            "TEST.CHECKPOINT": ten, "MODEL.NUM_CLASSES": 8, "DATA.CLASS_NAMES": ""})])
    assert exc.value.code == 1
    assert "ten.pth" in capsys.readouterr().err and not (tmp_path / "out" / "test_results.json").exists()


def test_predict_refuses_foreign_weights(tiny_data, foreign_ckpt, tmp_path, capsys):
    from sfvideo.cli import predict

    with pytest.raises(SystemExit) as exc:
        predict.main(["--cfg", "k400_tiny.yaml", str(tiny_data / "val" / "v00.mp4"),
                      *tiny_opts(tiny_data, tmp_path, **{"TEST.CHECKPOINT": foreign_ckpt})])
    out = capsys.readouterr()
    assert exc.value.code == 1 and f"{foreign_ckpt}: 0 of" in out.err
    assert "1." not in out.out  # no top-5 printed


def test_inflate_refuses_foreign_weights_and_writes_nothing(foreign_ckpt, tmp_path, capsys):
    from sfvideo.cli import inflate

    out = tmp_path / "inflated.pth"
    with pytest.raises(SystemExit) as exc:
        inflate.main(["--cfg", "k400_tiny.yaml", "--image-ckpt", str(foreign_ckpt), "--out", str(out),
                      "MODEL.ARCH", "video_test"])
    assert exc.value.code == 1 and "resnet18.pth" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_train_tool_refuses_foreign_start_weights_before_training(tiny_data, foreign_ckpt, tmp_path, capsys):
    from sfvideo.cli import train as train_cli

    with pytest.raises(SystemExit) as exc:  # a message and status 1, not a traceback
        train_cli.main(["--cfg", "k400_tiny.yaml", *tiny_opts(tiny_data, tmp_path, **{"TRAIN.CHECKPOINT": foreign_ckpt})])
    err = capsys.readouterr().err
    assert exc.value.code == 1 and f"{foreign_ckpt}: 0 of" in err, err
    assert not (tmp_path / "checkpoints" / "last.pth").exists() and not (tmp_path / "metrics.jsonl").exists()


# ------------------------------------------------------------------ lists and CSVs saved with a UTF-8 BOM
BOM = "\ufeff"
KINETICS_HEADER = "label,youtube_id,time_start,time_end,split"


def test_a_bom_at_the_start_of_a_list_is_not_part_of_the_first_path(tmp_path):
    from sfvideo.data.lists import load_video_list, read_class_names

    (tmp_path / "classes.txt").write_text(BOM + "left\nright\n", encoding="utf-8")
    (tmp_path / "train.txt").write_text(BOM + "a.mp4 0\nb.mp4 right\n", encoding="utf-8")
    names = read_class_names(tmp_path / "classes.txt")
    assert names == ["left", "right"]
    records = load_video_list(tmp_path / "train.txt", tmp_path, names).records
    assert [(r.path, r.label) for r in records] == [("a.mp4", 0), ("b.mp4", 1)]


def test_a_bom_kinetics_csv_is_detected_and_read(tmp_path):
    from sfvideo.data.lists import is_kinetics_csv, load_video_list

    (tmp_path / "val" / "abseiling").mkdir(parents=True)
    (tmp_path / "val" / "abseiling" / "abc_000001_000011.mp4").write_bytes(b"")
    csv_path = tmp_path / "val.csv"
    csv_path.write_text(BOM + KINETICS_HEADER + "\nabseiling,abc,1,11,val\n", encoding="utf-8")
    assert is_kinetics_csv(csv_path)
    result = load_video_list(csv_path, tmp_path, ["abseiling"])
    assert [r.path for r in result.records] == ["val/abseiling/abc_000001_000011.mp4"]


def test_a_bom_in_a_ucf101_class_index_is_ignored(tmp_path):
    from sfvideo.data.formats import read_ucf_class_index

    path = tmp_path / "classInd.txt"
    path.write_text(BOM + "1 ApplyEyeMakeup\n2 Archery\n", encoding="utf-8")
    assert read_ucf_class_index(path) == ["ApplyEyeMakeup", "Archery"]


@pytest.mark.parametrize("start", ["inf", "nan", "-inf", "1e400"])
def test_kinetics_csv_times_that_are_not_finite_name_file_and_line(tmp_path, start):
    from sfvideo.data.lists import ListFormatError, read_kinetics_csv

    csv_path = tmp_path / "train.csv"
    csv_path.write_text(f"{KINETICS_HEADER}\nabseiling,abc,1,11,train\nabseiling,def,{start},11,train\n")
    with pytest.raises(ListFormatError, match=r"train\.csv:3: .*time"):
        read_kinetics_csv(csv_path, tmp_path, ["abseiling"])


# ------------------------------------------------------------------ a test in which every video fails
def test_a_test_run_in_which_every_video_fails_exits_non_zero_naming_them(tmp_path, capsys):
    from sfvideo.cli import test as test_cli
    from sfvideo.config import load_config
    from sfvideo.models import build_model

    data = make_video_dataset(tmp_path / "videos", num_train=1, num_val=2)
    for name in ("v00.mp4", "v01.mp4"):
        (data / "val" / name).write_bytes(b"not a video")
    opts = tiny_opts(data, tmp_path / "out")
    ckpt = tmp_path / "video.pth"
    atomic_save({"model": build_model(load_config("k400_tiny.yaml", opts)).state_dict()}, ckpt)
    with pytest.raises(SystemExit) as exc:
        test_cli.main(["--cfg", "k400_tiny.yaml", *opts, "TEST.CHECKPOINT", str(ckpt)])
    err = capsys.readouterr().err
    assert exc.value.code == 1
    assert "every test video failed" in err and "val/v00.mp4" in err and "val/v01.mp4" in err, err
    results = json.loads((tmp_path / "out" / "test_results.json").read_text())  # the record is still written
    assert results["num_videos"] == 0 and results["failed_videos"] == ["val/v00.mp4", "val/v01.mp4"]
