"""Decoder fidelity: every backend returns exactly the frames asked for, on every kind of file.

Each generated video's frames carry their own index as a barcode (``_fidelity.py``), so a frame
one position off, a drifting seek or a miscounted Matroska/VFR file shows as a wrong number.
Backends run with fallback off; a backend may only refuse a codec it lacks (decord: AV1), and
only with ``DecodeError``. The default path (``auto`` with fallback) must read every file.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from _fidelity import KINDS, ROTATED, Kind, index_sets, read_barcode, red_band_side, write_kind

from sfvideo.data import decoding
from sfvideo.data.decoding import AUTO_ORDER, DecodeError, backend_status, decode_video

# (backend, codec) pairs the backend's FFmpeg build lacks; refusing them with DecodeError is allowed.
MAY_REFUSE = {("decord", "libsvtav1")}
ROTATED_270 = ROTATED._replace(name="rotated270.mkv", rotation=270)
ROTATED_180 = ROTATED._replace(name="rotated180.mkv", rotation=180)
ROTATIONS = (ROTATED, ROTATED_180, ROTATED_270)


@pytest.fixture(scope="session")
def fidelity_dir(tmp_path_factory):
    """All kinds, written once per test session (a second or two in all)."""
    out = tmp_path_factory.mktemp("fidelity")
    for kind in KINDS + ROTATIONS:
        write_kind(kind, out)
    return out


def _need(backend: str) -> None:
    reason = backend_status(backend)
    if reason:
        pytest.skip(reason)


def _check_kind(path, kind: Kind, backend: str, fallback: bool) -> None:
    wrong = {}
    for name, idx in index_sets(kind.num_frames).items():
        frames, meta = decode_video(path, lambda m, idx=idx: idx, backend, fallback=fallback)  # (T, H, W, C)
        assert meta.num_frames == kind.num_frames, f"{kind.name}: {backend} counts {meta.num_frames} frames"
        assert frames.dtype == np.uint8 or str(frames.dtype) == "torch.uint8"
        assert tuple(frames.shape) == (len(idx), kind.height, kind.width, 3)
        got = [read_barcode(f.numpy()) for f in frames]
        if got != idx:
            wrong[name] = [(want, g) for want, g in zip(idx, got) if want != g][:5]
    assert not wrong, f"{kind.name}: {backend} returned other frames (asked, got): {wrong}"


@pytest.mark.parametrize("backend", AUTO_ORDER)
@pytest.mark.parametrize("kind", KINDS, ids=[k.name for k in KINDS])
def test_backend_returns_the_frames_asked_for(fidelity_dir, backend, kind):
    _need(backend)
    path = fidelity_dir / kind.name
    if (backend, kind.codec) in MAY_REFUSE:
        try:
            _check_kind(path, kind, backend, fallback=False)
        except DecodeError as err:
            assert str(path) in str(err)  # a refusal names the file
        return
    _check_kind(path, kind, backend, fallback=False)


@pytest.mark.parametrize("kind", KINDS, ids=[k.name for k in KINDS])
def test_default_path_reads_every_kind(fidelity_dir, kind):
    _check_kind(fidelity_dir / kind.name, kind, "auto", fallback=True)


def test_fps_agrees_across_backends_on_constant_rate_files(fidelity_dir):
    for kind in KINDS:
        if kind.vfr:
            continue
        for backend in AUTO_ORDER:
            if backend_status(backend) or (backend, kind.codec) in MAY_REFUSE:
                continue
            _, meta = decode_video(fidelity_dir / kind.name, lambda m: [0], backend, fallback=False)
            assert meta.fps == pytest.approx(kind.fps, rel=1e-3), f"{kind.name}: {backend} says {meta.fps} fps"


@pytest.mark.parametrize("backend", AUTO_ORDER)
@pytest.mark.parametrize("kind", ROTATIONS, ids=[k.name for k in ROTATIONS])
def test_display_rotation_is_applied(fidelity_dir, backend, kind):
    """A phone video stores a display matrix: every backend returns upright frames."""
    _need(backend)
    frames, meta = decode_video(fidelity_dir / kind.name, lambda m: [0, 5, m.num_frames - 1], backend, fallback=False)
    assert meta.num_frames == kind.num_frames
    hw = (kind.height, kind.width) if kind.rotation == 180 else (kind.width, kind.height)
    assert tuple(frames.shape) == (3, *hw, 3)  # (T, H, W, C)
    # The band painted on the left edge: 90 degrees counter-clockwise puts it at the bottom.
    expected = {90: "bottom", 180: "right", 270: "top"}[kind.rotation]
    assert [red_band_side(f.numpy()) for f in frames] == [expected] * 3
    upright = np.rot90(frames[2].numpy(), -kind.rotation // 90)  # undo the display rotation
    assert read_barcode(upright) == kind.num_frames - 1


def test_torchcodec_approximate_mode_on_a_constant_rate_file(fidelity_dir):
    _need("torchcodec")
    kind = KINDS[0]
    idx = index_sets(kind.num_frames)["unsorted with repeats"]
    frames, meta = decode_video(fidelity_dir / kind.name, lambda m: idx, "torchcodec", fallback=False,
                                seek_mode="approximate")
    assert meta.num_frames == kind.num_frames
    assert [read_barcode(f.numpy()) for f in frames] == idx


def test_auto_picks_the_first_backend_that_works(monkeypatch):
    monkeypatch.setattr(decoding, "backend_status",
                        lambda name: "torchcodec unavailable: no FFmpeg" if name == "torchcodec" else "")
    assert decoding.resolve_backend("auto") == "decord"
    assert decoding.available_backends() == ("decord", "pyav")
    monkeypatch.setattr(decoding, "backend_status", lambda name: f"{name} unavailable: test")
    with pytest.raises(DecodeError, match="no video decoder works"):
        decoding.resolve_backend("auto")


def test_fallback_that_changes_the_backend_warns_once(fidelity_dir, monkeypatch, caplog):
    """decord cannot read AV1: the chain reads it with the next backend and says so once per file."""
    _need("decord")
    kind = next(k for k in KINDS if k.codec == "libsvtav1")
    path = fidelity_dir / kind.name
    decoding._WARNED_FALLBACK.discard(str(path))
    with caplog.at_level(logging.WARNING, logger="sfvideo.data.decoding"):
        for _ in range(3):
            frames, _ = decode_video(path, lambda m: [4, 2], "decord", fallback=True)
            assert [read_barcode(f.numpy()) for f in frames] == [4, 2]
    warnings = [r for r in caplog.records if str(path) in r.getMessage()]
    assert len(warnings) == 1 and "decoded with" in warnings[0].getMessage()
    with pytest.raises(DecodeError, match="decord"):
        decode_video(path, lambda m: [0], "decord", fallback=False)


def test_unknown_seek_mode_and_cuda_with_another_backend(fidelity_dir):
    path = fidelity_dir / KINDS[0].name
    with pytest.raises(ValueError, match="seek mode"):
        decode_video(path, lambda m: [0], "pyav", seek_mode="fast")
    with pytest.raises(ValueError, match="torchcodec"):
        decode_video(path, lambda m: [0], "pyav", device="cuda")


def _cuda_decoding_reason() -> str:
    import torch

    if not torch.cuda.is_available():
        return "no CUDA device here (NVDEC decoding is checked by tools/gpu_check.sh on a GPU machine)"
    return backend_status("torchcodec")


@pytest.mark.skipif(bool(_cuda_decoding_reason()), reason=_cuda_decoding_reason() or "n/a")
def test_cuda_decoding_returns_the_frames_asked_for(fidelity_dir):
    kind = KINDS[0]  # H.264: NVDEC decodes it on every NVIDIA GPU
    idx = index_sets(kind.num_frames)["middle clip"]
    frames, meta = decode_video(fidelity_dir / kind.name, lambda m: idx, "torchcodec", fallback=False, device="cuda")
    assert frames.is_cuda and meta.num_frames == kind.num_frames
    assert [read_barcode(f.cpu().numpy()) for f in frames] == idx


@pytest.mark.slow  # the make step twice, each starting Python to try torchcodec
def test_ensure_ffmpeg_prints_one_line_when_it_cannot_install(tmp_path):
    """No FFmpeg libraries, not root: the make step says in one line why torchcodec is skipped."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "ldconfig").write_text("#!/bin/sh\necho '12 libs found in cache'\n")
    (fake / "id").write_text("#!/bin/sh\necho 1000\n")
    for f in fake.iterdir():
        f.chmod(0o755)
    script = Path(__file__).resolve().parent.parent / "tools" / "ensure_ffmpeg.sh"
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}"}
    out = subprocess.run(["sh", str(script), sys.executable], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("torchcodec skipped:") and "FFmpeg" in lines[0]
    # with the libraries present (this machine), it stays silent when torchcodec loads
    if not backend_status("torchcodec"):
        ok = subprocess.run(["sh", str(script), sys.executable], capture_output=True, text=True, timeout=60)
        assert ok.returncode == 0 and ok.stdout.strip() == ""


# ------------------------------------------------------------------ one rotation rule in every path
# Display matrices that are no quarter turn (a phone's gyroscope, an editor's free rotation): every
# path turns them to the nearest quarter turn, halves away from zero (45 -> 90, -45 -> 270).
ODD_ANGLES = tuple(ROTATED._replace(name=f"rotated{a}.{ext}", rotation=a, num_frames=12)
                   for a, ext in ((45, "mp4"), (135, "mp4"), (170, "mp4"), (-45, "mkv"), (135, "mkv"), (260, "mp4")))
QUARTER = {45: 90, 135: 180, 170: 180, -45: 270, 260: 270}


@pytest.fixture(scope="module")
def odd_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("odd_angles")
    for kind in ODD_ANGLES:
        write_kind(kind, out)
    return out


@pytest.mark.parametrize("kind", ODD_ANGLES, ids=[k.name for k in ODD_ANGLES])
def test_every_backend_turns_an_odd_angle_to_the_same_quarter_turn(odd_dir, kind):
    quarter = QUARTER[kind.rotation]
    expected = {90: "bottom", 180: "right", 270: "top"}[quarter]
    sides = {}
    for backend in AUTO_ORDER:
        if backend_status(backend):
            continue
        frames, _ = decode_video(odd_dir / kind.name, lambda m: [0, 5], backend, fallback=False)  # (T, H, W, C)
        sides[backend] = red_band_side(frames[0].numpy())
        upright = np.rot90(frames[1].numpy(), -quarter // 90)
        assert read_barcode(upright) == 5, (backend, kind.name)
    assert sides == {b: expected for b in sides}, sides


@pytest.mark.parametrize("kind", ROTATIONS + ODD_ANGLES[:2], ids=[k.name for k in ROTATIONS + ODD_ANGLES[:2]])
def test_test_views_of_every_decoder_and_the_deploy_path_agree_on_a_rotated_file(fidelity_dir, odd_dir, tmp_path,
                                                                                  kind):
    """``sfvideo test`` with each decoder, and predict's torch-free path, see the same upright views."""
    from sfvideo.config import load_config
    from sfvideo.data.build import build_test_views
    from sfvideo.deploy import stream
    from sfvideo.models.protocol import InputProtocol

    path = (fidelity_dir if kind in ROTATIONS else odd_dir) / kind.name
    opts = ["DATA.NUM_FRAMES", "4", "DATA.SAMPLING_RATE", "2", "DATA.TEST_CROP_SIZE", "48", "TEST.NUM_ENSEMBLE_VIEWS",
            "2", "TEST.NUM_SPATIAL_CROPS", "3", "DATA.DECODER_FALLBACK", "False"]
    ref = stream.stream_test_views(path, InputProtocol.from_config(load_config(None, opts)).to_dict(), resize="torch")
    for backend in AUTO_ORDER:
        if backend_status(backend):
            continue
        views = build_test_views(load_config(None, opts + ["DATA.DECODER", backend]), str(path)).numpy()
        assert views.shape == ref.shape == (6, 3, 4, 48, 48)  # (V, C, T, S, S)
        diff = np.abs(views.astype(int) - ref.astype(int)).mean()
        assert diff < 4, (backend, diff)  # the same pixels up to colour conversion; turned, they differ by ~60


@pytest.mark.parametrize("kind", [ROTATED, ROTATED_270, ODD_ANGLES[0]], ids=lambda k: k.name)
def test_prepare_kinetics_writes_rotated_videos_upright(fidelity_dir, odd_dir, tmp_path, kind):
    from sfvideo.data.prepare import reencode_video

    src = (fidelity_dir if kind in ROTATIONS else odd_dir) / kind.name
    dst = reencode_video(src, tmp_path / "out.mp4", short_side=48) or tmp_path / "out.mp4"
    want, _ = decode_video(src, lambda m: [3], "pyav")  # (1, H, W, C) upright
    for backend in AUTO_ORDER:
        if backend_status(backend):
            continue
        got, meta = decode_video(dst, lambda m: [3], backend, fallback=False)
        h, w = want.shape[1:3]
        assert tuple(got.shape[1:3]) == ((48, round(w * 48 / h) // 2 * 2) if h < w else (round(h * 48 / w) // 2 * 2, 48))
        assert red_band_side(got[0].numpy()) == red_band_side(want[0].numpy()), backend
    import av

    with av.open(str(dst)) as c:
        assert (next(c.decode(video=0)).rotation or 0) == 0  # upright pixels, no display matrix to apply


# Sizes decord gets wrong on its own: rows it pads past W*3 bytes (widths 48, 72, ... reported as
# 4 channels, and get_batch fails outright), and square frames (a turn does not change the shape).
AWKWARD = (KINDS[0]._replace(name="h264_width72.mp4", height=48, width=72, num_frames=40),
           ROTATED._replace(name="rotated90_upright_width48.mp4", height=48, width=72),
           ROTATED._replace(name="rotated270_upright_width48.mkv", height=48, width=72, rotation=270),
           ROTATED._replace(name="rotated90_square.mp4", height=80, width=80),
           ROTATED._replace(name="rotated270_square.mkv", height=80, width=80, rotation=270))


@pytest.mark.parametrize("backend", AUTO_ORDER)
@pytest.mark.parametrize("kind", AWKWARD, ids=[k.name for k in AWKWARD])
def test_every_backend_reads_awkward_sizes_and_turns(tmp_path, backend, kind):
    _need(backend)
    path = write_kind(kind, tmp_path)
    idx = [0, 5, 6, 7, kind.num_frames - 1, 3]
    frames, meta = decode_video(path, lambda m: idx, backend, fallback=False)  # (T, H, W, C)
    hw = (kind.height, kind.width) if kind.rotation in (0, 180) else (kind.width, kind.height)
    assert tuple(frames.shape) == (len(idx), *hw, 3)
    side = {0: "left", 90: "bottom", 180: "right", 270: "top"}[kind.rotation]
    assert [red_band_side(f.numpy()) for f in frames] == [side] * len(idx)
    assert [read_barcode(np.rot90(f.numpy(), -kind.rotation // 90)) for f in frames] == idx
