"""Whole-video timelines (streaming windows, outputs), feature extraction, the onnxruntime predict
path (same top-5 as PyTorch; runs with torch unimportable)."""

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _fidelity import KINDS, ROTATED, write_kind

from _data_helpers import frame_code, make_video
from engine_helpers import ROOT, make_video_dataset, tiny_opts
from sfvideo.checkpoint import atomic_save, checkpoint_meta
from sfvideo.config import load_config
from sfvideo.deploy import stream
from sfvideo.models import build_model

NAMES = ["w", "x", "y", "z"]


@pytest.mark.parametrize("frames,fps,window,stride,expected", [
    (90, 30.0, 1.0, 0.5, 5),  # 0, .5, 1, 1.5, 2: the last window ends at the end
    (100, 30.0, 1.0, 0.5, 6),  # five regular windows + one aligned with the end
    (10, 30.0, 1.0, 0.5, 1),  # a video shorter than a window: one window
])
def test_plan_windows_cover_the_video(frames, fps, window, stride, expected):
    ws = stream.plan_windows(frames, fps, window, stride, 4)
    assert len(ws) == expected
    assert ws[0].start_s == 0 and ws[-1].end_s == pytest.approx(max(frames / fps, window))
    for w in ws:
        assert len(w.indices) == 4 and list(w.indices) == sorted(w.indices)
        assert all(0 <= i < frames for i in w.indices)


def test_plan_windows_space_frames_like_the_protocol():
    # an 8-frame window of rate 2 at 30 fps spans 16/30 s: its frames are 2 source frames apart
    w = stream.plan_windows(300, 30.0, 16 / 30, 8 / 30, 8)[3]
    assert np.all(np.diff(w.indices) == 2) and w.indices[0] == 24 + 1  # starts 3 strides (8 frames) in, first frame mid-step


def test_stream_clips_hands_each_window_its_own_frames(tmp_path):
    video = make_video(tmp_path / "coded.mp4", num_frames=120, gop=10)
    ws = stream.plan_windows(120, 30.0, 0.8, 0.3, 6)
    seen = []
    for batch, clips in stream.stream_clips(video, ws, lambda f: f.transpose(2, 0, 1).copy(), batch=3):
        assert clips.shape[0] == len(batch) and clips.shape[1:3] == (3, 6)  # (B, 3, T, H, W)
        for w, clip in zip(batch, clips):
            codes = [frame_code(clip[:, t].transpose(1, 2, 0)) for t in range(6)]
            assert codes == list(w.indices)
        seen += batch
    assert seen == ws  # every window once, in order


def test_numpy_resize_is_close_to_the_pipeline_resize():
    from sfvideo.data.transforms import resize_short_side
    from sfvideo.deploy.resize import resize_short_side_np

    frame = np.random.default_rng(0).integers(0, 256, (90, 160, 3), dtype=np.uint8)
    ref = resize_short_side(torch.from_numpy(frame).permute(2, 0, 1).unsqueeze(0), 36)[0].numpy()
    got = resize_short_side_np(frame, 36)
    assert got.shape == ref.shape == (3, 36, 64)
    assert np.abs(got.astype(int) - ref.astype(int)).max() <= 3


ROTATED_270_MKV = ROTATED._replace(name="rotated270.mkv", rotation=270)
VFR = next(k for k in KINDS if k.vfr)._replace(num_frames=40)


@pytest.mark.parametrize("kind", [ROTATED, ROTATED_270_MKV], ids=lambda k: k.name)
def test_predict_views_are_the_test_views_on_a_rotated_video(tmp_path, kind):
    """A phone video with a display rotation: the views predict (onnxruntime path) makes are the
    pixels `test` makes, upright."""
    from sfvideo.data.build import build_test_views
    from sfvideo.models.protocol import InputProtocol

    path = write_kind(kind, tmp_path)
    cfg = load_config("k400_tiny.yaml", tiny_opts(tmp_path, tmp_path / "out", **{"TEST.NUM_SPATIAL_CROPS": 3}))
    ref = build_test_views(cfg, path).numpy()  # (V, C, T, S, S) uint8, DATA.DECODER pyav
    protocol = InputProtocol.from_config(cfg).to_dict()
    got = stream.test_views(path, protocol)
    assert got.shape == ref.shape == (6, 3, 4, 32, 32)
    assert np.array_equal(got, ref)
    # the torch-free twin: the same frames and crops; its numpy resize within a few grey levels
    assert np.array_equal(stream.stream_test_views(path, protocol, resize="torch"), ref)
    twin = stream.stream_test_views(path, protocol, resize="numpy")
    assert np.abs(twin.astype(int) - ref.astype(int)).max() <= 3


@pytest.mark.parametrize("kind", [ROTATED, ROTATED_270_MKV, VFR], ids=lambda k: k.name)
def test_timeline_windows_get_the_frames_of_the_data_pipeline(tmp_path, kind):
    """Streamed windows (predict --window, features) see the frames decode_video returns: upright
    on rotated files, the same index -> frame mapping on variable-rate files."""
    from sfvideo.data.decoding import decode_video
    from sfvideo.data.pyav_reader import probe

    path = write_kind(kind, tmp_path)
    num_frames, fps = probe(path)
    _, meta = decode_video(path, lambda m: [0], "pyav")
    assert (num_frames, fps) == (meta.num_frames, meta.fps) == (kind.num_frames, pytest.approx(meta.fps))
    windows = stream.plan_windows(num_frames, fps, 0.5, 0.25, 6)
    for batch, clips in stream.stream_clips(path, windows, lambda f: f.transpose(2, 0, 1).copy(), batch=4):
        for w, clip in zip(batch, clips):  # (3, T, H, W)
            frames, _ = decode_video(path, lambda m, w=w: w.indices, "pyav")  # (T, H, W, 3)
            assert np.array_equal(clip.transpose(1, 2, 3, 0), frames.numpy())


@pytest.mark.parametrize("method", ["softmax_mean", "logit_mean", "logit_max"])
def test_numpy_ensemble_twin_equals_the_test_ensemble(method):
    from sfvideo.deploy.onnx_runtime import ensemble_np, ensemble_probs
    from sfvideo.engine.evaluate import ensemble

    logits = np.random.default_rng(0).normal(0, 3, (6, 10)).astype(np.float32)  # (V, K)
    want = ensemble(torch.from_numpy(logits), method)[1].numpy()
    assert np.allclose(ensemble_np(logits, method), want, atol=1e-6)
    assert np.array_equal(ensemble_probs(logits, method), want.astype(np.float64))  # the test's own, with torch
    with pytest.raises(ValueError, match="expected one of"):
        ensemble_np(logits, "vote")


def _checkpoint(tmp_path, **extra):
    data = make_video_dataset(tmp_path / "videos", num_train=1, num_val=3, frames=40)
    opts = tiny_opts(data, tmp_path / "out", **extra)
    cfg = load_config("k400_tiny.yaml", opts)
    torch.manual_seed(0)
    ckpt = tmp_path / "run.pth"
    atomic_save({"model": build_model(cfg).state_dict(), "meta": checkpoint_meta(cfg, NAMES)}, ckpt)
    return data, cfg, ckpt


def _segments_video(path, seconds=(2, 1.5, 2), fps=30):
    rng = np.random.default_rng(1)
    parts = []
    for k, s in enumerate(seconds):
        base = rng.integers(0, 255, size=(1, 32, 48, 3))
        shift = np.arange(int(s * fps))[:, None, None, None] * (8 * (k + 1))
        parts.append(((base + shift) % 256).astype(np.uint8))
    from sfvideo.data.encode import write_video

    return write_video(path, np.concatenate(parts), fps=fps)


def test_predict_window_writes_a_timeline_matching_the_model(tmp_path, capsys):
    from sfvideo.cli import predict
    from sfvideo.deploy.preprocess import model_input

    _, cfg, ckpt = _checkpoint(tmp_path)
    video = _segments_video(tmp_path / "long.mp4")
    out = tmp_path / "tl"
    predict.main(["--checkpoint", str(ckpt), "--window", "0.5", "--stride", "0.25", "--out", str(out), str(video)])
    assert "windows of 0.50 s every 0.25 s" in capsys.readouterr().out
    rows = list(csv.reader((out / "timeline.csv").open()))
    assert rows[0][:4] == ["start_s", "end_s", "top1", "top1_prob"] and rows[0][4:6] == ["top2", "top2_prob"]
    plan = stream.plan_windows(165, 30.0, 0.5, 0.25, 4)
    assert len(rows) - 1 == len(plan) and float(rows[-1][1]) == pytest.approx(5.5)
    doc = json.loads((out / "timeline.json").read_text())
    assert len(doc["per_second"]) == math.ceil(5.5) and {s["label"] for s in doc["per_second"]} <= set(NAMES)
    assert (out / "timeline.png").read_bytes()[:4] == b"\x89PNG"
    # one window recomputed by hand: its frames through the pipeline's resize, centre crop, the model
    model = build_model(cfg).eval()
    model.load_state_dict(torch.load(ckpt, weights_only=True)["model"])
    w = plan[7]
    import av

    with av.open(str(video)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    prep = stream.frame_preparer(32, "torch")
    clip = np.stack([prep(frames[i]) for i in w.indices], axis=1)[None]  # (1, 3, T, S, S)
    with torch.no_grad():
        probs = model(torch.from_numpy(model_input(clip, cfg.DATA.MEAN, cfg.DATA.STD))).softmax(-1)[0]
    assert rows[8][2] == NAMES[int(probs.argmax())]
    assert float(rows[8][3]) == pytest.approx(float(probs.max()), abs=1e-5)


def test_per_second_track_follows_confident_windows():
    from sfvideo.deploy.timeline import per_second_track

    ws = stream.plan_windows(300, 30.0, 1.0, 0.5, 4)  # 10 s, 19 windows
    probs = np.full((len(ws), 3), 0.05)
    for i, w in enumerate(ws):
        probs[i, 0 if w.end_s <= 4.01 else 2] = 0.9
    track = per_second_track(ws, probs, 10.0)
    assert len(track) == 10 and [k for k, _ in track[:3]] == [0, 0, 0] and [k for k, _ in track[-5:]] == [2] * 5


def test_features_row_is_the_pooled_token_embedding(tmp_path):
    from sfvideo.cli import extract_features
    from sfvideo.data.build import build_test_views
    from sfvideo.deploy.preprocess import model_input

    data, cfg, ckpt = _checkpoint(tmp_path)
    out = tmp_path / "feats"
    extract_features.main(["--checkpoint", str(ckpt), "--out", str(out), "--list", str(data / "val.txt"),
                           "DATA.PATH_TO_DATA_DIR", str(data), "DATA.CLASS_NAMES", str(data / "classes.txt")])
    feats = np.load(out / "features.npy")
    index = list(csv.DictReader((out / "index.csv").open()))
    assert feats.shape == (3, 64) and [r["label"] for r in index] == ["0", "1", "2"]
    model = build_model(cfg).eval()
    model.load_state_dict(torch.load(ckpt, weights_only=True)["model"])
    row = index[1]
    views = model_input(build_test_views(cfg, str(data / row["video"])), cfg.DATA.MEAN, cfg.DATA.STD)
    with torch.no_grad():
        tokens, _ = model.forward_tokens(views)  # (V, N, D)
        want = model.norm(tokens.mean(1)).mean(0)  # views averaged
    assert np.abs(feats[int(row["row"])] - want.numpy()).max() < 1e-5
    # resumable: present parts are kept, a missing one is recomputed
    parts = sorted((out / "parts").glob("*.npy"))
    stamps = [p.stat().st_mtime_ns for p in parts]
    parts[0].unlink()
    extract_features.main(["--checkpoint", str(ckpt), "--out", str(out), "--list", str(data / "val.txt"),
                           "DATA.PATH_TO_DATA_DIR", str(data)])
    assert parts[0].is_file() and [p.stat().st_mtime_ns for p in parts[1:]] == stamps[1:]
    assert np.array_equal(np.load(out / "features.npy"), feats)


def test_features_from_shards_equal_those_from_the_list(tmp_path):
    from sfvideo.cli import extract_features, make_shards

    data, cfg, ckpt = _checkpoint(tmp_path)
    assert make_shards.main(["--list", str(data / "val.txt"), "--root", str(data), "--out", str(tmp_path / "shards"),
                             "--max-count", "2", "--workers", "1"]) == 0
    got = {}
    for source in (["--list", str(data / "val.txt")], ["--shards", str(tmp_path / "shards" / "val-shards.json")]):
        out = tmp_path / source[0].strip("-")
        extract_features.main(["--checkpoint", str(ckpt), "--out", str(out), *source,
                               "DATA.PATH_TO_DATA_DIR", str(data), "DATA.NUM_WORKERS", "0"])
        index = list(csv.DictReader((out / "index.csv").open()))
        feats = np.load(out / "features.npy")
        got[source[0]] = {(r["video"], r["label"]): feats[int(r["row"])] for r in index}
    assert got["--list"].keys() == got["--shards"].keys() and len(got["--list"]) == 3
    for key, row in got["--list"].items():
        assert np.abs(got["--shards"][key] - row).max() < 1e-6, key


def test_features_shards_every_video_to_one_process(tmp_path, monkeypatch):
    from sfvideo.deploy import features
    from sfvideo.engine import distributed as du

    done = []
    monkeypatch.setattr(features, "extract_part", lambda m, c, video, *a: done.append((du.get_rank(), video)))
    monkeypatch.setattr(features, "parts_record", lambda *a: {})
    monkeypatch.setattr(du, "barrier", lambda: None)
    videos = [(f"v{i}.mp4", i) for i in range(7)]
    for rank in range(3):
        monkeypatch.setattr(du, "get_rank", lambda r=rank: r)
        monkeypatch.setattr(du, "get_world_size", lambda: 3)
        monkeypatch.setattr(du, "is_main_process", lambda: False)
        features.extract_features(None, torch.nn.Identity(), videos, tmp_path)
    assert sorted(v for _, v in done) == sorted(v for v, _ in videos)  # each exactly once
    assert {r for r, v in done if v == "v4.mp4"} == {1}


@pytest.mark.slow
def test_onnxruntime_predict_gives_the_pytorch_top5_and_needs_no_torch(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from sfvideo.cli import export, predict

    data, _, ckpt = _checkpoint(tmp_path, **{"TEST.NUM_ENSEMBLE_VIEWS": 3})
    video = str(data / "val" / "v01.mp4")
    onnx_path = tmp_path / "m.onnx"
    # opset 17: the quick exporter (what predict does with the file is the same at any opset)
    export.main(["--checkpoint", str(ckpt), "--out", str(onnx_path), "--video", video, "--opset", "17"])
    assert "largest |exported - PyTorch| logit" in capsys.readouterr().out

    def top5(out):
        return [ln.split("(class")[0].split()[1:] for ln in out.splitlines() if ln.strip()[:2] in {"1.", "2.", "3."}]

    predict.main(["--checkpoint", str(ckpt), video, "DATA.DECODER", "pyav"])
    eager = capsys.readouterr().out
    predict.main(["--runtime", "onnxruntime", "--onnx", str(onnx_path), video])
    ort = capsys.readouterr().out
    assert "(3 views" in ort and "onnxruntime" in ort
    assert top5(ort) == top5(eager) and len(top5(ort)) == 3
    # the deployment path with torch made unimportable
    code = ("import sys; sys.modules['torch'] = None\n"
            "from sfvideo.cli import predict\n"
            f"predict.main(['--onnx', {str(onnx_path)!r}, {video!r}])\n"
            "assert not any(m.startswith('sfvideo.models') for m in sys.modules)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert [ln.split()[1] for ln in run.stdout.splitlines() if ln.strip()[:2] == "1."] == [top5(eager)[0][0]]


def test_cached_onnx_export_is_made_again_when_the_checkpoint_or_the_export_code_changes(tmp_path, monkeypatch):
    """`predict --runtime auto` exports a checkpoint once and reuses the file; an export made by
    other model or exporter code (an older sfvideo) must be made again, not silently reused. (The
    exporter is faked: what is cached and when; exports themselves: test_export.py.)"""
    from sfvideo.deploy import export, run

    def fake_export(cfg, out, *, opset, class_names, log):
        exports.append(opset)
        Path(out).write_bytes(b"an ONNX file")

    exports: list[int] = []
    monkeypatch.setattr(export, "run_export", fake_export)
    monkeypatch.setattr(export, "onnxruntime_cpu_opset", lambda: 23)
    monkeypatch.setenv("SFVIDEO_CACHE", str(tmp_path / "cache"))
    _, cfg, ckpt = _checkpoint(tmp_path, **{"TEST.CHECKPOINT": str(tmp_path / "run.pth")})
    logs: list[str] = []
    first = run.cached_onnx_export(cfg, log=logs.append)
    assert first.read_bytes() == b"an ONNX file" and exports == [23] and any(m.startswith("exporting") for m in logs)
    assert [p.name for p in first.parent.iterdir()] == [first.name]  # written through a temporary
    logs.clear()
    stamp = first.stat().st_mtime_ns
    assert run.cached_onnx_export(cfg, log=logs.append) == first and first.stat().st_mtime_ns == stamp
    assert not any(m.startswith("exporting") for m in logs)  # reused
    monkeypatch.setattr(run, "export_code_digest", lambda: "the code of another sfvideo")
    again = run.cached_onnx_export(cfg, log=logs.append)
    assert again != first and again.is_file() and any(m.startswith("exporting") for m in logs)
    os.utime(ckpt, ns=(stamp, stamp + 10**9))  # a new checkpoint in the same file
    logs.clear()
    newer = run.cached_onnx_export(cfg, log=logs.append)
    assert newer not in (first, again) and any(m.startswith("exporting") for m in logs)
    monkeypatch.setattr(export, "onnxruntime_cpu_opset", lambda: 20)  # another onnxruntime: another form
    assert run.cached_onnx_export(cfg, log=logs.append) not in (first, again, newer)
    assert exports == [23, 23, 23, 20]
