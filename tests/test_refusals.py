"""Refusals: a bad option value, an unusable output folder or a broken model file ends a command
with one line naming the option, file or key and what is allowed, a non-zero status (2 for the
command line and config, 1 for what fails at run time), no traceback and nothing half-written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from engine_helpers import make_video_dataset, tiny_opts
from sfvideo.checkpoint import atomic_save, checkpoint_meta
from sfvideo.config import load_config
from sfvideo.models import build_model
from sfvideo.models.protocol import InputProtocol

NAMES = ["w", "x", "y", "z"]


def refused(main, argv, capsys) -> tuple[int, str]:
    """Run a command's ``main``; it must exit (not raise); returns its status and stderr."""
    with pytest.raises(SystemExit) as exc:
        status = main(argv)
        raise SystemExit(status)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return exc.value.code, err


def one_line(err: str, *words: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for w in words:
        assert w in lines[0], (w, lines[0])


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A tiny checkpoint (with its meta), its config and one video."""
    tmp = tmp_path_factory.mktemp("weights")
    data = make_video_dataset(tmp / "videos", num_train=1, num_val=1, frames=40)
    cfg = load_config("k400_tiny.yaml", tiny_opts(data, tmp / "out"))
    ckpt = tmp / "run.pth"
    atomic_save({"model": build_model(cfg).state_dict(), "meta": checkpoint_meta(cfg, NAMES)}, ckpt)
    return cfg, ckpt, data / "val" / "v00.mp4"


# ------------------------------------------------------------------ predict options
@pytest.mark.parametrize("option,value", [
    ("--window", "0"), ("--window", "-1"), ("--window", "nan"), ("--stride", "0"), ("--stride", "-0.5"),
    ("--topk", "0"), ("--topk", "-3"), ("--batch", "0"), ("--threads", "0"), ("--threads", "-2"),
])
def test_predict_refuses_a_non_positive_option(weights, tmp_path, capsys, option, value):
    from sfvideo.cli import predict

    _, ckpt, video = weights
    status, err = refused(predict.main, ["--checkpoint", str(ckpt), option, value, "--out", str(tmp_path / "tl"),
                                         str(video)], capsys)
    assert status == 2
    one_line(err, option, "> 0")
    assert not (tmp_path / "tl").exists()


def test_predict_refuses_an_out_that_is_a_file_or_read_only(weights, tmp_path, capsys, read_only_dir):
    from sfvideo.cli import predict

    _, ckpt, video = weights
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    status, err = refused(predict.main, ["--checkpoint", str(ckpt), "--window", "1", "--out", str(target),
                                         str(video)], capsys)
    assert status == 2 and target.read_text() == "keep me"
    one_line(err, "--out", str(target), "not a folder")
    before = sorted(p.name for p in read_only_dir.iterdir())
    status, err = refused(predict.main, ["--checkpoint", str(ckpt), "--timeline", "--out", str(read_only_dir),
                                         str(video)], capsys)
    assert status == 2 and sorted(p.name for p in read_only_dir.iterdir()) == before
    one_line(err, "--out", str(read_only_dir))


# ------------------------------------------------------------------ predict --onnx
def _onnx_file(path: Path, metadata: dict[str, str] | None, crop: int = 32, frames: int = 4) -> Path:
    """A small ONNX model (mean over time and space of a (N, 3, T, S, S) clip: 3 logits) with
    ``metadata`` as its custom metadata."""
    import onnx
    from onnx import TensorProto, helper

    clip = helper.make_tensor_value_info("clip", TensorProto.FLOAT, ["batch", 3, frames, crop, crop])
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])
    node = helper.make_node("ReduceMean", ["clip"], ["logits"], axes=[2, 3, 4], keepdims=0)
    model = helper.make_model(helper.make_graph([node], "g", [clip], [logits]),
                              opset_imports=[helper.make_opsetid("", 13)])
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path


def _protocol(crop: int = 32) -> dict[str, str]:
    protocol = InputProtocol(num_frames=4, sampling_rate=1, crop_size=crop, num_clips=2, num_crops=1).to_dict()
    return {"sfvideo.protocol": json.dumps(protocol), "sfvideo.class_names": json.dumps(["a", "b", "c"])}


def test_a_well_formed_onnx_file_predicts(weights, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from sfvideo.cli import predict

    predict.main(["--onnx", str(_onnx_file(tmp_path / "ok.onnx", _protocol())), str(weights[2])])
    assert "1. " in capsys.readouterr().out


@pytest.mark.parametrize("kind,words", [
    ("missing", ["does not exist"]), ("empty", ["empty"]), ("truncated", ["not a readable ONNX model"]),
    ("foreign", ["no sfvideo metadata"]), ("partial", ["sfvideo.protocol", "mean"]),
    ("crop", ["32", "48", "crop"]), ("garbled", ["sfvideo.protocol", "JSON"]),
])
def test_predict_refuses_a_broken_onnx_file_in_one_line(weights, tmp_path, capsys, kind, words):
    pytest.importorskip("onnxruntime")
    from sfvideo.cli import predict

    path = tmp_path / f"{kind}.onnx"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        data = _onnx_file(tmp_path / "whole.onnx", _protocol()).read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "foreign":
        _onnx_file(path, None)
    elif kind == "partial":
        _onnx_file(path, {"sfvideo.protocol": json.dumps({"num_frames": 4, "crop_size": 32})})
    elif kind == "crop":
        _onnx_file(path, _protocol(crop=48), crop=32)
    elif kind == "garbled":
        _onnx_file(path, {"sfvideo.protocol": "{not json"})
    status, err = refused(predict.main, ["--onnx", str(path), str(weights[2])], capsys)
    assert status == 1
    one_line(err, str(path), *words)


# ------------------------------------------------------------------ export
@pytest.mark.parametrize("extra,words", [
    (["--opset", "99"], ["--opset", "99", "16"]), (["--opset", "15"], ["--opset", "15"]),
    (["--opset", "17", "--sampling", "trilinear"], ["--sampling trilinear", "20"]),
    (["--tolerance", "-1"], ["--tolerance", ">= 0"]),
])
def test_export_checks_its_options_before_any_work(weights, tmp_path, capsys, monkeypatch, extra, words):
    from sfvideo.cli import export
    from sfvideo.deploy import export as exporter

    def work(*args, **kwargs):
        raise AssertionError("the export started")

    monkeypatch.setattr(exporter, "run_export", work)
    monkeypatch.setattr(exporter, "model_for_export", work)
    status, err = refused(export.main, ["--checkpoint", str(weights[1]), "--out", str(tmp_path / "m.onnx"), *extra],
                          capsys)
    assert status == 2 and not (tmp_path / "m.onnx").exists()
    one_line(err, *words)


def test_export_refuses_an_out_that_is_a_folder(weights, tmp_path, capsys):
    from sfvideo.cli import export

    status, err = refused(export.main, ["--checkpoint", str(weights[1]), "--out", str(tmp_path)], capsys)
    assert status == 2
    one_line(err, "--out", "folder")


# ------------------------------------------------------------------ benchmark-loader
@pytest.mark.parametrize("argv,words", [
    (["--videos", "0"], ["--videos", "> 0"]), (["--videos", "-1"], ["--videos"]), (["--rounds", "0"], ["--rounds"]),
    (["--clips", "0"], ["--clips"]), (["--batch-size", "0"], ["--batch-size"]), (["--threads", "0"], ["--threads"]),
    (["--threads", "-4"], ["--threads"]), (["--seconds", "-1"], ["--seconds", "> 0"]), (["--seconds", "0"], ["--seconds"]),
    (["--long", "-1"], ["--long", ">= 0"]), (["--long-workers", "-1"], ["--long-workers"]),
    (["DATA.NUM_FRAME", "4"], ["DATA.NUM_FRAME", "DATA.NUM_FRAMES"]), (["DATA.NUM_FRAMES"], ["pairs"]),
])
def test_benchmark_loader_refuses_bad_options_before_generating_videos(tmp_path, capsys, argv, words):
    from sfvideo.cli import benchmark_loader

    cache = tmp_path / "cache"
    status, err = refused(benchmark_loader.main, ["--cache-dir", str(cache), "--no-pytorchvideo", *argv], capsys)
    assert status == 2 and not cache.exists()
    one_line(err, *words)


def test_benchmark_loader_refuses_a_cache_dir_that_is_a_file(tmp_path, capsys):
    from sfvideo.cli import benchmark_loader

    cache = tmp_path / "cache"
    cache.write_text("a file")
    status, err = refused(benchmark_loader.main, ["--cache-dir", str(cache)], capsys)
    assert status == 2 and cache.read_text() == "a file"
    one_line(err, "--cache-dir", "not a folder")


# ------------------------------------------------------------------ train / test / extract-features
@pytest.mark.parametrize("command", ["train", "test"])
def test_a_read_only_or_file_output_dir_is_refused_in_one_line(weights, tmp_path, capsys, read_only_dir, command):
    from sfvideo.cli import test as test_cli
    from sfvideo.cli import train as train_cli

    main = {"train": train_cli.main, "test": test_cli.main}[command]
    cfg, ckpt, _ = weights
    base = ["--cfg", "k400_tiny.yaml", *tiny_opts(Path(cfg.DATA.PATH_TO_DATA_DIR), tmp_path / "unused"),
            "TEST.CHECKPOINT", str(ckpt)]
    before = sorted(p.name for p in read_only_dir.iterdir())
    status, err = refused(main, [*base, "OUTPUT_DIR", str(read_only_dir)], capsys)
    assert status == 2 and sorted(p.name for p in read_only_dir.iterdir()) == before
    one_line(err, "OUTPUT_DIR", str(read_only_dir))
    afile = tmp_path / "afile"
    afile.write_text("x")
    status, err = refused(main, [*base, "OUTPUT_DIR", str(afile)], capsys)
    assert status == 2 and afile.read_text() == "x"
    one_line(err, "OUTPUT_DIR", "not a folder")


def test_extract_features_refuses_an_out_that_is_a_file(weights, tmp_path, capsys):
    from sfvideo.cli import extract_features

    target = tmp_path / "feats"
    target.write_text("x")
    status, err = refused(extract_features.main, ["--checkpoint", str(weights[1]), "--out", str(target),
                                                  str(weights[2])], capsys)
    assert status == 2 and target.read_text() == "x"
    one_line(err, "--out", "not a folder")


def test_the_tiny_onnx_helper_runs(tmp_path):
    """The hand-built file above is a real model: onnxruntime runs it (so the refusals test the
    metadata, not a file onnxruntime cannot run)."""
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(_onnx_file(tmp_path / "m.onnx", _protocol())))
    out = session.run(None, {"clip": np.zeros((2, 3, 4, 32, 32), np.float32)})[0]
    assert out.shape == (2, 3) and torch.from_numpy(out).abs().max() == 0


@pytest.mark.parametrize("command", ["make_toy", "demo", "visualize"])
def test_commands_writing_a_folder_refuse_an_out_that_is_a_file(weights, tmp_path, capsys, command):
    import importlib

    main = importlib.import_module(f"sfvideo.cli.{command}").main
    target = tmp_path / "afile"
    target.write_text("keep me")
    argv = {"make_toy": ["--out", str(target), "--train-per-class", "1", "--val-per-class", "1"],
            "demo": ["--out", str(target)],
            "visualize": ["--cfg", "k400_tiny.yaml", "--out", str(target), str(weights[2]),
                          *tiny_opts(Path(weights[0].DATA.PATH_TO_DATA_DIR), tmp_path / "o")]}[command]
    status, err = refused(main, argv, capsys)
    assert status == 2 and target.read_text() == "keep me"
    one_line(err, "--out", "not a folder")


def test_predict_refuses_an_onnx_cache_it_cannot_write(tmp_path, capsys, monkeypatch, read_only_dir):
    """`predict --runtime auto` exports video_tiny/small/base checkpoints into a cache on the CPU: a
    cache folder that cannot be written is refused in one line, before the export's work."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from sfvideo.cli import predict
    from sfvideo.deploy import run

    data = make_video_dataset(tmp_path / "videos", num_train=1, num_val=1, frames=40)
    cfg = load_config("k400_tiny.yaml", tiny_opts(data, tmp_path / "out", **{"MODEL.ARCH": "video_tiny"}))
    ckpt = atomic_save({"model": build_model(cfg).state_dict(), "meta": checkpoint_meta(cfg, NAMES)},
                       tmp_path / "tiny.pth")
    from sfvideo.deploy import export as exporter

    def work(*args, **kwargs):
        raise AssertionError("the export started")

    monkeypatch.setenv("SFVIDEO_CACHE", str(read_only_dir))
    monkeypatch.setattr(exporter, "run_export", work)
    assert run.onnx_cache_dir().parent == read_only_dir
    status, err = refused(predict.main, ["--checkpoint", str(ckpt), str(data / "val" / "v00.mp4"), "DEVICE", "cpu"],
                          capsys)
    assert status == 1
    one_line(err, str(read_only_dir), "SFVIDEO_CACHE", "--runtime eager")
