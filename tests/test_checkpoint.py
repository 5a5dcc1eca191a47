"""Checkpoints: safe loading, official layouts and containers, inflation report and tool."""

import os
import pickle
import sys

import pytest
import torch

from conftest import FIXTURES, SMALL_ARCH
from sfvideo.checkpoint import (
    CheckpointError,
    adapt_state_dict,
    atomic_save,
    extract_state_dict,
    load_pretrained,
    safe_load,
)
from sfvideo.models import SparseFormer, VideoSparseFormer, create_model


def test_v1_training_checkpoint_loads_without_yacs(monkeypatch):
    monkeypatch.setitem(sys.modules, "yacs", None)  # "import yacs" now fails
    monkeypatch.setitem(sys.modules, "yacs.config", None)
    ckpt = safe_load(FIXTURES / "v1_small_train_ckpt.pth")
    assert set(ckpt) >= {"model", "model_ema", "epoch", "config"}
    assert isinstance(ckpt["model"]["token_roi.weight"], torch.Tensor)
    assert "MODEL" in ckpt["config"]  # the config's items survive as plain data


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"model": {"w": torch.zeros(2)}, "extra": _Payload(marker)}, path)
    with pytest.raises(CheckpointError, match="system"):
        safe_load(path)
    assert not marker.exists()
    # the same payload with a plain pickle file
    path2 = tmp_path / "evil.pkl"
    path2.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(CheckpointError):
        safe_load(path2)
    assert not marker.exists()


def test_truncated_and_empty_checkpoints_name_the_file(tmp_path):
    data = (FIXTURES / "v2_small_image.pth").read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.pth"):
        safe_load(cut)
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        safe_load(empty)
    with pytest.raises(CheckpointError, match="does not exist"):
        safe_load(tmp_path / "missing.pth")


def test_containers_and_module_prefix(tmp_path):
    sd = torch.load(FIXTURES / "v2_small_image.pth", weights_only=True)
    wrapped = {"state_dict": {f"module.{k}": v for k, v in sd.items()}, "epoch": 3}
    out = extract_state_dict(wrapped)
    assert set(out) == set(sd)
    assert torch.equal(out["proj.weight"], sd["proj.weight"])
    ema = {"model": {"a": torch.zeros(1)}, "model_ema": sd}
    assert set(extract_state_dict(ema, use_ema=True)) == set(sd)
    with pytest.raises(CheckpointError, match="EMA"):
        extract_state_dict({"model": sd}, use_ema=True)
    path = tmp_path / "wrapped.pth"
    torch.save(wrapped, path)
    model = SparseFormer(num_classes=10, **SMALL_ARCH)
    report = load_pretrained(model, path, log=None)
    assert len(report.loaded) == len(sd) and not report.initialised


def test_v1_ema_weights_are_used_when_asked():
    ckpt = safe_load(FIXTURES / "v1_small_train_ckpt.pth")
    a = SparseFormer(num_classes=1000, **dict(SMALL_ARCH, num_points=36))
    b = SparseFormer(num_classes=1000, **dict(SMALL_ARCH, num_points=36))
    load_pretrained(a, FIXTURES / "v1_small_train_ckpt.pth", log=None)
    load_pretrained(b, FIXTURES / "v1_small_train_ckpt.pth", use_ema=True, log=None)
    assert torch.equal(a.proj.weight, ckpt["model"]["head.classifier.weight"])
    assert torch.equal(b.proj.weight, ckpt["model_ema"]["head.classifier.weight"])


def test_classifier_with_other_class_count_is_reinitialised_and_reported():
    video = VideoSparseFormer(num_classes=400, temporal_replicates=2, **SMALL_ARCH)
    with torch.no_grad():
        video.proj.weight.fill_(1.0)  # whatever the model's classifier held before the load
    report = load_pretrained(video, FIXTURES / "v2_small_image.pth", log=None, allow_new_classifier=True)
    assert report.initialised == ["proj.weight", "proj.bias"] and report.new_classifier
    assert any("10 classes" in n and "400" in n for n in report.notes)
    assert video.proj.out_features == 400 and video.proj.weight.abs().max() < 0.2  # reset_classifier's fresh head
    text = report.format()
    for title in ("loaded as-is", "inflated", "newly initialised", "dropped", "converted"):
        assert title in text


def test_wrong_architecture_fails_with_key_names():
    sd = torch.load(FIXTURES / "v2_small_image.pth", weights_only=True)
    model = create_model("video_test", num_classes=10)
    with pytest.raises(CheckpointError, match="do not fit"):
        adapt_state_dict(sd, model)


def test_v1_checkpoint_dropped_keys_are_reported():
    sd = dict(torch.load(FIXTURES / "v2_small_image.pth", weights_only=True))
    sd["global_roi.weight"] = torch.zeros(1, 4)
    _, report = adapt_state_dict(sd, SparseFormer(num_classes=10, **SMALL_ARCH))
    assert report.dropped == ["global_roi.weight"]


def test_atomic_save_keeps_old_file_when_interrupted(tmp_path, monkeypatch):
    path = tmp_path / "last.pth"
    atomic_save({"epoch": 1}, path)

    def broken_save(obj, f, *a, **k):
        f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        atomic_save({"epoch": 2}, path)
    monkeypatch.undo()
    assert safe_load(path) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.pth"]  # no temporary left behind


def test_inflate_tool_writes_weights_only_loadable_checkpoint(tmp_path, capsys):
    from sfvideo.cli import inflate

    out = tmp_path / "video.pth"
    argv = ["--cfg", "k400_tiny.yaml", "--image-ckpt", str(FIXTURES / "v1_small_train_ckpt.pth"), "--out", str(out),
            "--use-ema", "MODEL.ARCH", "video_test", "MODEL.NUM_CLASSES", "1000"]
    with pytest.raises(SystemExit) as exc:
        inflate.main(argv)
    # the fixture's small architecture is not video_test: a clear error, no output file
    assert exc.value.code == 1 and "do not fit" in capsys.readouterr().err and not out.exists()

    image = create_model("image_test", num_classes=1000)
    src = tmp_path / "image_test.pth"
    torch.save({"model": image.state_dict(), "model_ema": image.state_dict(), "epoch": 5}, src)
    argv[3] = str(src)
    inflate.main(argv)
    printed = capsys.readouterr().out
    assert "inflated 2-D -> 3-D: 9" in printed and "newly initialised: 0" in printed
    state = torch.load(out, weights_only=True)["model"]
    video = create_model("video_test", num_classes=1000)
    video.load_state_dict(state, strict=True)
    assert state["initial_roi.weight"].shape == (18, 6)


def test_inflate_tool_reports_classifier_reinit(tmp_path, capsys):
    from sfvideo.cli import inflate

    image = create_model("image_test", num_classes=1000)
    src, out = tmp_path / "img.pth", tmp_path / "vid.pth"
    torch.save(image.state_dict(), src)
    inflate.main(["--cfg", "k400_tiny.yaml", "--image-ckpt", str(src), "--out", str(out), "MODEL.ARCH", "video_test"])
    assert "classifier re-initialised: checkpoint has 1000 classes, the model 400" in capsys.readouterr().out
    assert torch.load(out, weights_only=True)["model"]["proj.weight"].shape == (400, 64)
