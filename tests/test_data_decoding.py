"""Decoding: decord and PyAV agree, indices are exact, 60 fps normalisation, bad files."""

from __future__ import annotations

import os

import numpy as np
import pytest

from _data_helpers import corrupt_variants, frame_code, make_video
from sfvideo.data.decoding import BACKENDS, DecodeError, decode_video
from sfvideo.data.sampling import clip_indices, clip_spec


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("vid") / "v.mp4", num_frames=75, gop=12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_decoded_frames_are_the_requested_ones(video, backend):
    idx = [0, 1, 13, 13, 40, 37, 74]
    frames, meta = decode_video(video, lambda m: idx, backend, fallback=False)
    assert meta.num_frames == 75 and meta.fps == pytest.approx(30.0)
    assert frames.dtype.is_floating_point is False and frames.shape == (7, 48, 64, 3)
    assert [frame_code(f) for f in frames] == idx


def test_decord_and_pyav_agree(video):
    rng = np.random.default_rng(0)
    idx = sorted(rng.integers(0, 75, 12).tolist()) + [5, 5, 60]
    a, _ = decode_video(video, lambda m: idx, "decord", fallback=False)
    b, _ = decode_video(video, lambda m: idx, "pyav", fallback=False)
    assert a.shape == b.shape
    # Both use ffmpeg's decoder; only the YUV->RGB conversion may round differently.
    assert (a.int() - b.int()).abs().max() <= 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_indices_past_the_end_are_clipped(video, backend):
    frames, _ = decode_video(video, lambda m: [70, 80, 1000], backend, fallback=False)
    assert [frame_code(f) for f in frames] == [70, 74, 74]


@pytest.mark.parametrize("backend", BACKENDS)
def test_target_fps_normalisation_on_60fps(tmp_path, backend):
    path = make_video(tmp_path / "v60.mp4", num_frames=120, fps=60.0, gop=30)

    def indices(meta):
        spec = clip_spec(num_frames=8, sampling_rate=2, fps=meta.fps, target_fps=30)
        return clip_indices(6, spec, meta.num_frames)

    frames, meta = decode_video(path, indices, backend, fallback=False)
    assert meta.fps == pytest.approx(60.0)
    codes = [frame_code(f) for f in frames]
    assert codes == list(range(6, 6 + 8 * 4, 4))  # rate 2 at 30 fps = 4 source frames at 60 fps


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["corrupt", "truncated", "zero", "missing"])
def test_bad_files_raise_decode_error_naming_the_file(video, tmp_path, backend, kind):
    bad = corrupt_variants(video, tmp_path)[kind]
    with pytest.raises(DecodeError, match=str(bad)):
        decode_video(bad, lambda m: [0, 1], backend)


def test_unknown_backend():
    with pytest.raises(ValueError, match="unknown decoder"):
        decode_video("x.mp4", lambda m: [0], "opencv")


def open_descriptors(path) -> list[str]:
    """This process's open file descriptors on ``path`` (a reader left open holds one)."""
    fds = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                fds.append(fd)
        except OSError:  # closed meanwhile (the listing's own descriptor)
            pass
    return fds


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to list open files")
@pytest.mark.parametrize("backend", BACKENDS)
def test_each_decode_closes_its_reader(video, tmp_path, backend):
    """Readers are opened per call and closed before it returns, on success and on failure (what
    keeps memory flat over long runs: ``sfvideo benchmark-loader --long N --long-decoder B``
    reports the RSS)."""
    idx = list(range(0, 64, 2))
    for _ in range(3):
        decode_video(video, lambda m: idx, backend, fallback=False)
        assert open_descriptors(video) == []
    bad = corrupt_variants(video, tmp_path)["truncated"]
    with pytest.raises(DecodeError):
        decode_video(bad, lambda m: idx, backend, fallback=False)
    assert open_descriptors(bad) == []


def test_loading_decord_leaves_pyavs_vp9_encoder_working(tmp_path):
    """decord's wheel brings its own libvpx; loaded first, PyAV's VP8/VP9 encoders bind to it and fail."""
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from sfvideo.data.decoding import backend_status\n"
        "assert backend_status('decord') == '', backend_status('decord')\n"
        "from sfvideo.data.encode import write_video\n"
        "frames = np.zeros((4, 48, 64, 3), np.uint8)\n"
        f"write_video({str(tmp_path / 'v.webm')!r}, frames, codec='libvpx-vp9')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "v.webm").stat().st_size > 0


@pytest.mark.skipif(not hasattr(os, "sched_getscheduler"), reason="thread scheduling classes are Linux's")
def test_encoding_av1_leaves_the_callers_scheduling_class_alone(tmp_path):
    """SVT-AV1, run as root, raises the thread that opens it to SCHED_FIFO 99 and leaves it there:
    every later thread of the process inherits it and starves the machine. write_video restores it."""
    import subprocess
    import sys

    code = (
        "import os\n"
        "import numpy as np\n"
        "from sfvideo.data.encode import write_video\n"
        "before = (os.sched_getscheduler(0), os.sched_getparam(0))\n"
        "frames = np.zeros((4, 48, 64, 3), np.uint8)\n"
        f"write_video({str(tmp_path / 'v.mp4')!r}, frames, codec='libsvtav1', options={{'preset': '12'}})\n"
        "after = (os.sched_getscheduler(0), os.sched_getparam(0))\n"
        "assert after == before, (before, after)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
