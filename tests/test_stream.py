"""`sfvideo stream`: windows in stream time and the bounded frame ring, smoothing and events, then
live sources on loopback (FFmpeg serving HTTP and TCP MPEG-TS, a GStreamer RTSP server), a
server killed and restarted mid-stream, slowed inference, the output video, SIGTERM, a source
that never opens, and nothing left running afterwards.

Most runs use a model keyed on the frames' colour (``ColourModel``), so what each window should
say is known; the command-line runs use a tiny ``video_test`` checkpoint."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from engine_helpers import CLASS_NAMES, ROOT, make_video_dataset, tiny_opts, wait_for
from sfvideo.bench.stream import FFmpegServer, free_port
from sfvideo.data.pyav_reader import DecodeError
from sfvideo.deploy.live import SourceOptions, StreamOptions, run_stream
from sfvideo.deploy.live.outputs import LatencyStats
from sfvideo.deploy.live.smoothing import Ema, EventTracker
from sfvideo.deploy.live.windows import EPS, FrameRing, WindowClock
from sfvideo.deploy.run import Runner
from sfvideo.deploy.stream import plan_windows

NAMES = ["red", "green", "blue"]
PROTOCOL = {"num_frames": 4, "sampling_rate": 2, "target_fps": 30, "crop_size": 32, "mean": [0.45, 0.45, 0.45],
            "std": [0.225, 0.225, 0.225]}
FPS = 30
PREDICTION_KEYS = {"stream_start_s", "stream_end_s", "wall_time", "latency_s", "top", "smoothed", "dropped_windows",
                   "input_fps"}

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not on the PATH (make ffmpeg)")


class ColourModel:
    """Logits from a clip's mean colour: the class is its strongest channel. ``delay`` seconds of
    artificial work per call; ``seen`` is set once ``after`` windows have run; RoIs: two fixed boxes."""

    def __init__(self, delay: float = 0.0, after: int = 0):
        self.delay, self.after, self.calls = delay, after, 0
        self.seen = threading.Event()
        self.wake = threading.Event()  # never set: ``delay`` is work the model does, not a wait for anything

    def __call__(self, clips: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.after and self.calls >= self.after:
            self.seen.set()
        if self.delay:
            self.wake.wait(self.delay)
        return 20.0 * clips.astype(np.float64).mean(axis=(2, 3, 4)) / 255.0  # (B, 3)

    def logits_and_rois(self, clips: np.ndarray):
        rois = np.tile(np.array([[0.1, 0.1, 0.0, 0.5, 0.6, 1.0], [0.4, 0.3, 0.0, 0.9, 0.9, 0.5]]), (len(clips), 1, 1))
        return self(clips), rois  # (B, 3), (B, 2, 6)


def colour_runner(**kw) -> Runner:
    return Runner(ColourModel(**kw), PROTOCOL, NAMES, "stub")


def colour_video(path: Path, colours=((200, 30, 30), (30, 30, 200)), seconds: float = 3.0) -> Path:
    """Segments of ``seconds`` each, one dominant colour per segment, a moving square and noise."""
    from sfvideo.data.encode import write_video

    rng = np.random.default_rng(0)

    def frames():
        for colour in colours:
            for t in range(int(seconds * FPS)):
                frame = np.clip(np.array(colour) + rng.normal(0, 8, (48, 64, 3)), 0, 255).astype(np.uint8)
                frame[10:22, (2 * t) % 50:(2 * t) % 50 + 12] = 255
                yield frame

    return write_video(path, frames(), fps=FPS, gop=15)


def read_lines(path: Path) -> tuple[list[dict], list[dict]]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [r for r in lines if "event" not in r], [r for r in lines if "event" in r]


def options(tmp_path: Path, **kw) -> StreamOptions:
    source = kw.pop("source", SourceOptions(reconnect=0, open_timeout=20, read_timeout=20))
    base = dict(window_s=0.5, stride_s=0.25, smooth_s=0.5, min_duration_s=0.5, jsonl=str(tmp_path / "out.jsonl"),
                status=False, source=source)
    return StreamOptions(**{**base, **kw})


def stream_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("sfvideo-stream")]


def os_threads() -> set[str]:
    """The ids of this process's threads as the kernel sees them (FFmpeg's included)."""
    return set(os.listdir("/proc/self/task"))


def assert_no_new_threads(before: set[str]) -> None:
    """No thread the runs started is left: none in Python's list, and (once the threads Python has
    joined are gone from the kernel's list, checked every 50 ms) none beyond ``before``."""
    assert stream_threads() == []
    wait_for(lambda: os_threads() <= before, timeout=30)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return colour_video(tmp_path_factory.mktemp("stream") / "red_then_blue.mp4")


# ----------------------------------------------------------------------------- windows and the ring
def test_window_clock_agrees_with_brute_force_and_the_timeline_windows():
    clock = WindowClock(0.5, 0.2, 4)
    for newest in np.arange(0.0, 5.0, 0.013):
        complete = [k for k in range(40) if clock.samples(k)[-1] + EPS < newest]
        assert clock.last_complete(newest) == (max(complete) if complete else -1)
    for t in np.arange(0.0, 3.0, 0.07):
        assert clock.first_starting_at(t) == min(k for k in range(40) if clock.start(k) >= t - EPS)
    samples = np.concatenate([clock.samples(k) for k in range(3, 40)])
    for lo in np.arange(0.0, 4.0, 0.031):
        assert clock.has_sample_in(lo, lo + 0.04, first=3) == bool(((samples >= lo) & (samples < lo + 0.04)).any())
    ends = np.array([clock.samples(k)[-1] for k in range(3, 40)])
    for lo in np.arange(0.0, 4.0, 0.017):
        assert clock.ends_in(lo, lo + 0.034, first=3) == bool(((ends >= lo) & (ends < lo + 0.034)).any()), lo
    # the same sample times as predict's timeline windows (frame k at k / fps)
    plan = plan_windows(300, 30.0, 0.5, 0.2, 4)
    for w in plan[:-1]:
        k = round(w.start_s / 0.2)
        assert [int(np.floor(s * 30 + 1e-9)) for s in clock.samples(k)] == list(w.indices)


def _feed(ring: FrameRing, seconds: float, fps: float = FPS, start: float = 0.0):
    """Frames at ``fps`` from ``start``; a frame's image is its time."""
    times = list(np.arange(start, start + seconds, 1 / fps))
    for t, nxt in zip(times, times[1:] + [times[-1] + 1 / fps]):
        img = np.full((3, 2, 2), 0, np.float64) + t
        ring.push((t, 0.0, img) if ring.needs(t, nxt) else None, nxt)


def test_live_ring_runs_the_newest_window_skips_the_rest_and_holds_a_window_of_frames():
    clock = WindowClock(0.5, 0.1, 4)
    ring = FrameRing(clock)
    _feed(ring, 10.0)  # inference never came: nothing queued, a window and a stride of frames kept
    assert len(ring) <= (0.5 + 0.1) * FPS + 1 and ring.most_frames <= (0.5 + 0.1) * FPS + 1
    w = ring.take(timeout=0)
    assert w.index == clock.last_complete(10.0) and w.skipped == w.index and ring.skipped_behind == w.index
    want = [np.floor(s * FPS + 1e-6) / FPS for s in clock.samples(w.index)]  # the latest frame at or before each sample
    assert np.allclose(w.clip[0, 0, :, 0, 0], want, atol=1e-6)
    assert ring.take(timeout=0) is None  # nothing newer is complete


def test_lossless_ring_runs_every_window_in_order_with_the_reader_waiting():
    clock = WindowClock(0.5, 0.1, 4)
    ring = FrameRing(clock, lossless=True, max_pending=2)
    reader = threading.Thread(target=lambda: (_feed(ring, 5.0), ring.close()))
    reader.start()
    got, most = [], 0
    while (w := ring.take(timeout=60)) is not None:
        got.append(w.index)
        most = max(most, len(ring))
    reader.join()
    assert got == list(range(clock.last_complete(5.0) + 1)) and ring.skipped_behind == 0
    assert most <= (0.5 + 2 * 0.1) * FPS + 1  # the frames of the pending windows, not of the whole stream


def test_windows_across_an_outage_never_run():
    clock = WindowClock(0.5, 0.25, 4)
    ring = FrameRing(clock)
    _feed(ring, 2.0)
    before = ring.take(timeout=0)
    ring.restart_at(6.0)  # four seconds without frames
    _feed(ring, 2.0, start=6.0)
    after = ring.take(timeout=0)
    assert clock.start(after.index) >= 6.0 and after.clip.min() >= 6.0  # only frames after the outage
    assert ring.skipped_gaps == clock.first_starting_at(6.0) - before.index - 1


@pytest.mark.parametrize("live", [True, False])
def test_a_frame_that_ends_a_window_completes_it_before_the_next_frame_on_a_live_source(monkeypatch, live):
    """Live, the window's last frame is released as soon as it is decoded (one frame interval
    sooner), the clip holding the same frames; lossless (a file as fast as possible), it waits for
    the next frame as before."""
    from sfvideo.deploy.live import reader as reader_mod
    from sfvideo.deploy.live.source import SourceFrame

    monkeypatch.setattr(reader_mod, "to_rgb", lambda frame: frame)
    clock = WindowClock(0.5, 0.25, 4)
    ring = FrameRing(clock, lossless=not live, max_pending=1000)
    seen = []  # (time of the frame just read, the newest complete window once it was read)

    class Source:
        fps, live, arrival_times = FPS, True, False

        def frames(self, stop):
            for i in range(int(2.0 * FPS)):
                if i:
                    seen.append(((i - 1) / FPS, ring.newest_complete))
                yield SourceFrame(i / FPS, np.full((2, 2, 3), i, np.uint8), False)

    reader = reader_mod.Reader(Source(), ring, lambda rgb: rgb.transpose(2, 0, 1).astype(np.float64),
                               threading.Event())
    reader.run()
    ahead = 1.0 / FPS if live else 0.0  # how far past a frame its windows are known complete
    assert seen and all(k == clock.last_complete(t + ahead) for t, k in seen)
    assert any(clock.last_complete(t + 1.0 / FPS) > clock.last_complete(t) for t, _ in seen)  # it matters
    if live:
        w = ring.take(timeout=0)
        want = [np.floor(s * FPS + 1e-6) for s in clock.samples(w.index)]  # the latest frame at or before
        assert np.allclose(w.clip[0, 0, :, 0, 0], want)


# ----------------------------------------------------------------------------- smoothing and events
def test_ema_has_its_time_constant_whatever_the_stride():
    for stride in (0.1, 0.25, 1.0):
        ema = Ema(2.0)
        ema.update(0.0, np.array([1.0, 0.0]))
        for k in range(1, round(2.0 / stride) + 1):
            value = ema.update(k * stride, np.array([0.0, 1.0]))
        assert value[1] == pytest.approx(1 - np.exp(-1), abs=1e-9)
    assert Ema(0.0).update(1.0, np.array([0.2, 0.8]))[1] == 0.8


def test_events_start_after_the_minimum_duration_at_the_raw_onset_and_end_with_hysteresis():
    tracker = EventTracker(["a", "b"], threshold=0.6, min_duration=1.0, hysteresis=0.2)
    ema = Ema(1.0)
    events = []
    for k in range(60):  # b from t = 2.0 to 4.0, then a
        t = k * 0.1
        raw = np.array([0.1, 0.9]) if 2.0 <= t < 4.0 else np.array([0.9, 0.1])
        events += [(e["event"], e["class"], e["stream_s"]) for e in tracker.update(t, ema.update(t, raw), raw)]
    events += [(e["event"], e["class"], e["stream_s"]) for e in tracker.finish(5.9, ema.value)]
    assert events == [("start", "a", 0.0), ("end", "a", 2.0), ("start", "b", 2.0), ("end", "b", 4.0),
                      ("start", "a", 4.0), ("end", "a", 5.9)]
    blip = EventTracker(["a", "b"], threshold=0.6, min_duration=1.0)
    assert [blip.update(t, np.array([0.9, 0.1])) for t in (0.0, 0.5)] == [[], []]  # not held long enough


def test_latency_quantiles_are_within_a_percent_in_fixed_memory():
    stats = LatencyStats()
    values = np.random.default_rng(0).lognormal(-1.5, 0.8, 20000)
    for v in values:
        stats.add(float(v))
    for q in (0.5, 0.95):
        assert abs(stats.quantile(q) / np.quantile(values, q) - 1) < 0.011
    assert stats.max == values.max() and stats.counts.size == LatencyStats.BINS + 1


# ----------------------------------------------------------------------------- sources on loopback
def _expected_windows(num_frames: int, window: float = 0.5, stride: float = 0.25) -> int:
    return WindowClock(window, stride, 4).last_complete((num_frames - 1) / FPS + 1 / FPS) + 1


@needs_ffmpeg
def test_http_mpegts_stream_gives_lines_and_events_at_the_cut(tmp_path, video):
    with FFmpegServer(video, "http") as server:
        summary = run_stream(server.url, colour_runner(), options(tmp_path))
    lines, events = read_lines(tmp_path / "out.jsonl")
    assert summary["ended"] == "end" and summary["frames_read"] == 180
    assert len(lines) == summary["windows_run"] and len(lines) + summary["dropped_windows"] == _expected_windows(180)
    assert all(set(r) == PREDICTION_KEYS for r in lines) and all(len(r["top"]) == 3 for r in lines)
    assert [(e["event"], e["class"]) for e in events] == [("start", "red"), ("end", "red"), ("start", "blue"),
                                                          ("end", "blue")]
    cut = 3.0
    assert events[0]["stream_s"] <= 0.5 and abs(events[1]["stream_s"] - cut) <= 0.25 + EPS
    assert abs(events[2]["stream_s"] - cut) <= 0.25 + EPS and events[3]["stream_s"] > 5.5
    assert lines[-1]["smoothed"][0][0] == "blue" and lines[0]["top"][0][0] == "red"
    assert all(r["latency_s"] >= 0 and r["input_fps"] >= 0 for r in lines)


@pytest.mark.slow
@needs_ffmpeg
def test_tcp_mpegts_stream_reads_every_frame_and_every_window_is_run_or_counted(tmp_path, video):
    with FFmpegServer(video, "tcp") as server:
        summary = run_stream(server.url, colour_runner(), options(tmp_path))
    lines, _ = read_lines(tmp_path / "out.jsonl")
    assert summary["frames_read"] == 180 and summary["ended"] == "end"
    assert len(lines) + summary["dropped_windows"] == _expected_windows(180)
    assert [r["stream_start_s"] for r in lines] == sorted(r["stream_start_s"] for r in lines)


@needs_ffmpeg
@pytest.mark.parametrize("kind", ["mjpeg", "udp"])
def test_multipart_jpeg_over_http_and_mpegts_over_udp(tmp_path, video, kind):
    """MJPEG has no timestamps of its own (stream time is when frames arrive); UDP has no
    connection (the sender loops the video; the stream starts at the first keyframe it sees)."""
    with FFmpegServer(video, kind, loop=kind == "udp") as server:
        summary = run_stream(server.url, colour_runner(), options(tmp_path, duration_s=2.0))
    lines, _ = read_lines(tmp_path / "out.jsonl")
    assert summary["ended"] == "duration" and summary["frames_read"] > 10 and lines
    assert all(set(r) == PREDICTION_KEYS for r in lines) and lines[-1]["stream_end_s"] <= 2.0 + EPS


@needs_ffmpeg
def test_hls_playlist_over_http(tmp_path, video):
    import functools
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    hls = tmp_path / "hls"
    hls.mkdir()
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(video), "-c", "copy", "-f", "hls", "-hls_time", "1",
                    "-hls_list_size", "0", str(hls / "live.m3u8")], check=True)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(hls))
    handler.log_message = lambda *a: None
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as httpd:
        server = threading.Thread(target=httpd.serve_forever)
        server.start()
        try:
            summary = run_stream(f"http://127.0.0.1:{httpd.server_address[1]}/live.m3u8", colour_runner(),
                                 options(tmp_path))
        finally:
            httpd.shutdown()
            server.join()
    lines, events = read_lines(tmp_path / "out.jsonl")
    assert summary["frames_read"] == 180 and len(lines) + summary["dropped_windows"] == _expected_windows(180)
    assert [e["class"] for e in events if e["event"] == "start"] == ["red", "blue"]


@pytest.fixture
def rtsp_server():
    """Start the loopback RTSP server (``_rtsp_server.py`` under the system python3) on a port;
    yields a function (re)starting it on the same port, returning the process."""
    system_python = "/usr/bin/python3"
    if not os.path.exists(system_python):
        pytest.skip("no /usr/bin/python3 for GStreamer's RTSP server (python3-gi, gir1.2-gst-rtsp-server-1.0)")
    port, procs = free_port(), []

    def start() -> subprocess.Popen:
        proc = subprocess.Popen([system_python, str(Path(__file__).parent / "_rtsp_server.py"), str(port)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={"PATH": os.defpath})
        procs.append(proc)
        line = proc.stdout.readline().strip()  # blocks until the server says it listens, or why it cannot
        if not line.startswith("ready"):
            proc.kill()
            pytest.skip(f"RTSP server unavailable: {line or proc.stderr.read()[-500:]} (make system-packages)")
        return proc

    start.url = f"rtsp://127.0.0.1:{port}/stream"
    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("transport", ["tcp", pytest.param("udp", marks=pytest.mark.slow)])
def test_rtsp_stream_from_a_real_server(tmp_path, rtsp_server, transport):
    rtsp_server()
    src = SourceOptions(rtsp_transport=transport, reconnect=0, open_timeout=20, read_timeout=20)
    summary = run_stream(rtsp_server.url, colour_runner(), options(tmp_path, duration_s=2.0, source=src))
    lines, _ = read_lines(tmp_path / "out.jsonl")
    assert summary["ended"] == "duration" and summary["frames_read"] >= 30 and lines
    assert lines[-1]["stream_end_s"] <= 2.0 + EPS and summary["reconnects"] == 0


class _RestartingServer:
    """FFmpeg's one-client HTTP server on ``port``, started again whenever it exits while ``worker``
    runs, as a real server takes client after client: a client's open that fails (a probe cut
    short on a loaded machine) would otherwise leave nothing listening for its next attempt."""

    def __init__(self, video: Path, port: int, worker: threading.Thread):
        self.done, self.server = threading.Event(), None
        self.thread = threading.Thread(target=self._serve, args=(video, port, worker), daemon=True)
        self.thread.start()

    def _serve(self, video: Path, port: int, worker: threading.Thread) -> None:
        while worker.is_alive() and not self.done.is_set():
            self.server = FFmpegServer(video, "http", port=port, loop=True)
            try:
                self.server.start()
            except RuntimeError:
                continue
            while self.server.process.poll() is None and not self.done.wait(0.05):
                pass
            self.server.stop()

    def stop(self) -> None:
        self.done.set()
        self.thread.join(30)
        if self.server is not None:
            self.server.stop()


def _kill_and_restart(kind: str, tmp_path: Path, video: Path, rtsp_start) -> tuple[dict, list[dict], list[str]]:
    """Stream from a server that is killed once 4 windows have run, then started again on the
    same port; returns the summary, the prediction lines and the log."""
    import logging

    runner = colour_runner(after=4)
    src = SourceOptions(reconnect=5, backoff_s=0.2, open_timeout=20, read_timeout=20)
    if kind == "rtsp":
        first, url = rtsp_start(), rtsp_start.url
    else:
        first = FFmpegServer(video, "http", loop=True).start()
        url = first.url
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    logging.getLogger("sfvideo.stream").addHandler(handler)
    result: dict = {}
    worker = threading.Thread(target=lambda: result.update(run_stream(url, runner, options(
        tmp_path, duration_s=5.0, source=src))))
    worker.start()
    try:
        assert runner.classify.seen.wait(60), "no window ran"
        if kind == "rtsp":
            first.kill()
            first.wait()
            second = rtsp_start()
        else:
            first.stop()
            second = _RestartingServer(video, first.port, worker)
        worker.join(120)
    finally:
        logging.getLogger("sfvideo.stream").removeHandler(handler)
        second.kill() if kind == "rtsp" else second.stop()
    assert not worker.is_alive()
    return result, read_lines(tmp_path / "out.jsonl")[0], records


@pytest.mark.slow
@needs_ffmpeg
@pytest.mark.parametrize("kind", ["http", "rtsp"])
def test_server_killed_and_restarted_mid_stream_is_reconnected_and_stream_time_goes_on(tmp_path, video, kind,
                                                                                        request):
    rtsp_start = request.getfixturevalue("rtsp_server") if kind == "rtsp" else None
    summary, lines, log = _kill_and_restart(kind, tmp_path, video, rtsp_start)
    assert summary["reconnects"] == 1 and summary["ended"] == "duration"
    assert any("reconnect attempt 1/5" in m for m in log) and any("reconnected" in m for m in log)
    starts = [r["stream_start_s"] for r in lines]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)  # stream time goes on across it
    assert lines[-1]["stream_end_s"] > 3.0 and summary["stream_s"] >= 5.0 - 1 / FPS


@pytest.mark.slow
@needs_ffmpeg
def test_slow_inference_drops_windows_and_stays_a_stride_behind(tmp_path, video):
    runner = colour_runner(delay=0.2)
    summary = run_stream(video, runner, options(tmp_path, window_s=0.3, stride_s=0.05, realtime=True))
    lines, _ = read_lines(tmp_path / "out.jsonl")
    assert summary["dropped_windows"] > 0 and summary["windows_run"] == len(lines)
    assert summary["windows_run"] + summary["dropped_windows"] <= _expected_windows(180, 0.3, 0.05)
    # each window run is the newest complete one: it ended at most a stride (and a frame) before the newest frame
    assert summary["most_lag_s"] <= 0.05 + 1 / FPS + EPS
    assert summary["most_frames_held"] <= (0.3 + 0.05) * FPS + 2  # a window and a stride, whatever the length
    dropped = [r["dropped_windows"] for r in lines]
    assert dropped == sorted(dropped) and dropped[-1] == summary["dropped_windows"]


@needs_ffmpeg
def test_a_corrupt_packet_is_skipped_and_counted(tmp_path, video):
    ts = tmp_path / "v.ts"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(video), "-c", "copy", "-f", "mpegts", str(ts)], check=True)
    data = ts.read_bytes()
    middle = len(data) // 2 // 188 * 188
    ts.write_bytes(data[:middle] + data[middle + 5 * 188:])  # five transport packets lost: a continuity error
    summary = run_stream(ts, colour_runner(), options(tmp_path))
    assert summary["corrupt_packets"] >= 1 and summary["ended"] == "end"
    assert summary["stream_s"] > 5.5  # read on to the end


@needs_ffmpeg
def test_a_source_that_stalls_is_lost_after_the_read_time_out(tmp_path, video):
    """A TCP server that sends half the stream, then nothing (the connection stays open)."""
    import socket

    ts = tmp_path / "v.ts"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(video), "-c", "copy", "-f", "mpegts", str(ts)], check=True)
    data, done = ts.read_bytes(), threading.Event()

    def serve(listener: socket.socket) -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(data[:len(data) // 2 // 188 * 188])
            done.wait(60)

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        server = threading.Thread(target=serve, args=(listener,))
        server.start()
        opts = options(tmp_path, source=SourceOptions(open_timeout=10, read_timeout=1.0, reconnect=0))
        try:
            summary = run_stream(f"tcp://127.0.0.1:{listener.getsockname()[1]}", colour_runner(), opts)
        finally:
            done.set()
            server.join()
    assert summary["ended"] == "lost" and "no data within the 1 s read time-out" in summary["error"]
    assert 60 < summary["frames_read"] < 120  # about half the frames, every one handed on before the stall


def test_a_source_that_never_opens_fails_within_the_time_out_naming_it(tmp_path):
    refused = f"http://127.0.0.1:{free_port()}/live.ts"
    with pytest.raises(DecodeError, match=f"{refused}: .*Connection refused"):
        run_stream(refused, colour_runner(), options(tmp_path))
    import socket

    with socket.socket() as silent:  # accepts connections (the kernel does) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/live.ts"
        opts = options(tmp_path, source=SourceOptions(open_timeout=1.0, read_timeout=1.0, reconnect=0))
        with pytest.raises(DecodeError, match=f"{url}: .*no answer within the 1 s open time-out"):
            run_stream(url, colour_runner(), opts)
    assert not (tmp_path / "out.jsonl").exists()  # nothing started
    with pytest.raises(ValueError, match="unsupported source"):
        run_stream("ftp://127.0.0.1/x", colour_runner(), options(tmp_path))


@needs_ffmpeg
def test_nothing_is_left_running_whatever_ends_the_run(tmp_path, video):
    run_stream(video, colour_runner(), options(tmp_path, duration_s=0.5))  # thread pools of the first run stay
    before = os_threads()
    run_stream(video, colour_runner(), options(tmp_path, out_video=str(tmp_path / "a.mp4")))  # the end
    assert_no_new_threads(before)
    stop = threading.Event()
    runner = colour_runner(after=2)
    worker = threading.Thread(target=lambda: run_stream(video, runner, options(tmp_path, realtime=True), stop))
    worker.start()
    assert runner.classify.seen.wait(60)
    stop.set()  # what SIGINT/SIGTERM do
    worker.join(60)
    assert not worker.is_alive()
    assert_no_new_threads(before | {str(worker.native_id)})
    short = colour_video(tmp_path / "short.mp4", colours=((200, 30, 30),), seconds=0.5)
    with FFmpegServer(short, "http") as server:  # lost for good: ends with the reason
        summary = run_stream(server.url, colour_runner(), options(
            tmp_path, source=SourceOptions(reconnect=1, backoff_s=0.05, open_timeout=5, read_timeout=5)))
    assert summary["ended"] == "lost" and "1 reconnect attempts failed" in summary["error"]
    with pytest.raises(DecodeError):
        run_stream(tmp_path / "missing.mp4", colour_runner(), options(tmp_path))
    assert_no_new_threads(before | {str(worker.native_id)})


def test_rois_of_the_centre_crop_are_placed_on_the_whole_frame():
    from sfvideo.deploy.live.video_out import crop_rois_to_frame

    rois = np.array([[0.0, 0.0, 0.2, 1.0, 0.5, 0.7]])
    assert np.allclose(crop_rois_to_frame(rois, 48, 64), [[8 / 64, 0.0, 0.2, 56 / 64, 0.5, 0.7]])
    assert np.allclose(crop_rois_to_frame(rois, 64, 48), [[0.0, 8 / 64, 0.2, 1.0, 32 / 64, 0.7]])


# ----------------------------------------------------------------------------- the command
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A tiny ``video_test`` checkpoint written by sfvideo (model, protocol and class names inside)."""
    import torch

    from sfvideo.checkpoint import atomic_save, checkpoint_meta
    from sfvideo.config import load_config
    from sfvideo.models import build_model

    tmp = tmp_path_factory.mktemp("ckpt")
    data = make_video_dataset(tmp / "videos", num_train=1, num_val=1)
    cfg = load_config("k400_tiny.yaml", tiny_opts(data, tmp / "out"))
    torch.manual_seed(0)
    path = tmp / "tiny.pth"
    atomic_save({"model": build_model(cfg).state_dict(), "meta": checkpoint_meta(cfg, CLASS_NAMES)}, path)
    return path


def test_command_line_mistakes_are_refused_before_anything_runs(tmp_path, capsys):
    from sfvideo.cli import stream

    cases = [(["--onnx", "m.onnx", "rtsp://h/s", "--duration", "5"], 2, "comes after the positional arguments"),
             (["--onnx", "m.onnx", "--threshold", "1.5", "rtsp://h/s"], 2, "threshold 1.5 must be in (0, 1]"),
             (["--onnx", "m.onnx", "--stride", "0", "rtsp://h/s"], 2, "must be a positive number of seconds"),
             (["--onnx", "m.onnx", "--reconnect", "-1", "rtsp://h/s"], 2, "reconnect -1: must be 0 or more"),
             (["--onnx", "m.onnx", "rtsp://h/s", "MODEL.ARCH", "x"], 2, "an .onnx file has none"),
             (["--onnx", str(tmp_path / "none.onnx"), "rtsp://h/s"], 1, "none.onnx does not exist")]
    for argv, code, message in cases:
        with pytest.raises(SystemExit) as exit_:
            stream.main(argv)
        assert exit_.value.code == code and message in capsys.readouterr().err, argv


def spinning(runner) -> str:
    """The runner's onnxruntime session's ``allow_spinning`` entry (``default``: not set)."""
    try:
        return runner.classify.session.get_session_options().get_session_config_entry(
            "session.intra_op.allow_spinning")
    except Exception:  # onnxruntime raises for an entry never set
        return "default"


def test_stream_runs_onnxruntime_with_threads_that_sleep_between_tasks(tmp_path, checkpoint, monkeypatch):
    """The reader thread shares the cores with inference: onnxruntime's threads must not spin
    between tasks there, while predict keeps onnxruntime's default."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from sfvideo.cli import export, stream
    from sfvideo.cli.args import runner_from_args
    from sfvideo.cli.predict import _parser

    onnx = tmp_path / "m.onnx"
    export.main(["--checkpoint", str(checkpoint), "--out", str(onnx), "--opset", "17"])
    seen = []
    monkeypatch.setattr("sfvideo.deploy.live.run_stream", lambda source, runner, *a: seen.append(runner) or {
        "ended": "end"})
    monkeypatch.setattr(stream, "_report", lambda result: "")
    assert stream.main(["--onnx", str(onnx), "rtsp://127.0.0.1:9/none"]) == 0
    assert spinning(seen[0]) == "0"
    parser = _parser()
    assert spinning(runner_from_args(parser, parser.parse_args(["--onnx", str(onnx), "v.mp4"]))) == "default"


def decoded_frames(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


@needs_ffmpeg
def test_out_video_has_every_frame_read_with_the_label_drawn(tmp_path, video, checkpoint):
    from sfvideo.cli import stream

    out, summary = tmp_path / "annotated.mp4", tmp_path / "summary.json"
    status = stream.main(["--checkpoint", str(checkpoint), "--jsonl", str(tmp_path / "p.jsonl"), "--out-video",
                          str(out), "--summary", str(summary), "--window", "0.5", "--stride", "0.25", str(video)])
    result = json.loads(summary.read_text())
    frames = decoded_frames(out)
    assert status == 0 and result["ended"] == "end" and len(frames) == result["frames_read"] == 180
    assert frames[-1][6:9, 2:5].max() < 60 and decoded_frames(video)[-1][6:9, 2:5].max(-1).min() > 100  # the label's box
    lines, _ = read_lines(tmp_path / "p.jsonl")
    assert lines and {r["top"][0][0] for r in lines} <= set(CLASS_NAMES) and len(lines[0]["top"]) == 4


@needs_ffmpeg
@pytest.mark.slow
def test_onnx_file_streams_without_torch_and_its_rois_are_drawn(tmp_path, video, checkpoint):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from sfvideo.cli import export

    onnx = tmp_path / "m.onnx"
    # opset 17: TorchScript's exporter (a second; torch's dynamo exporter takes ten), RoIs output alike
    export.main(["--checkpoint", str(checkpoint), "--out", str(onnx), "--opset", "17"])
    code = ("import sys; sys.modules['torch'] = None\n"
            "from sfvideo.cli import stream\n"
            f"code = stream.main(['--onnx', {str(onnx)!r}, '--jsonl', {str(tmp_path / 'p.jsonl')!r}, '--out-video', "
            f"{str(tmp_path / 'o.mp4')!r}, '--summary', {str(tmp_path / 's.json')!r}, {str(video)!r}])\n"
            "assert not any(m.startswith('sfvideo.models') for m in sys.modules)\n"
            "sys.exit(code)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "gives no token RoIs" not in run.stderr  # the export's second output
    result = json.loads((tmp_path / "s.json").read_text())
    lines, _ = read_lines(tmp_path / "p.jsonl")
    assert len(lines) == result["windows_run"] > 0 and {r["top"][0][0] for r in lines} <= set(CLASS_NAMES)
    assert len(decoded_frames(tmp_path / "o.mp4")) == result["frames_read"] == 180


@needs_ffmpeg
@pytest.mark.parametrize("sig", [signal.SIGTERM, pytest.param(signal.SIGINT, marks=pytest.mark.slow)])
def test_a_signal_stops_cleanly_with_every_line_and_a_playable_video(tmp_path, video, checkpoint, sig):
    jsonl, out, summary = tmp_path / "p.jsonl", tmp_path / "annotated.mp4", tmp_path / "summary.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with FFmpegServer(video, "http", loop=True) as server:
        proc = subprocess.Popen([sys.executable, str(ROOT / "tools" / "stream.py"), "--checkpoint", str(checkpoint),
                                 "--jsonl", str(jsonl), "--out-video", str(out), "--summary", str(summary),
                                 "--stride", "0.1", server.url], env=env, stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: jsonl.is_file() and len(jsonl.read_text().splitlines()) >= 3 or proc.poll() is not None)
            assert proc.poll() is None, proc.stderr.read()
            proc.send_signal(sig)
            err = proc.communicate(timeout=120)[1]
        finally:
            proc.kill()
    assert proc.returncode == 0, err
    assert f"{signal.Signals(sig).name}: stopping" in err and "stopped after" in err
    lines, _ = read_lines(jsonl)  # every line whole
    result = json.loads(summary.read_text())
    assert result["ended"] == "stopped" and len(lines) == result["windows_run"] >= 3
    assert len(decoded_frames(out)) == result["frames_read"] > 0


# ----------------------------------------------------------------------------- the benchmark's arithmetic
def test_benchmark_figures_and_bars_read_the_run():
    from sfvideo.bench.results import render_table
    from sfvideo.bench.stream import check_speed, speed_figures

    lines = [{"wall_time": 1000.0 + t, "latency_s": 0.1 if t < 200 else 0.7} for t in range(300)]
    rss = [(1000.0 + t, 500.0 if t < 100 else 580.0) for t in range(300)]
    summary = {"stream_s": 300.0, "input_fps": 30.0, "windows_run": 300, "wall_s": 300.0, "dropped_windows": 2,
               "latency_p50_s": 0.1, "latency_p95_s": 0.7, "latency_max_s": 0.7, "real_time_factor": 0.8}
    r = speed_figures({"summary": summary, "lines": lines, "rss": rss, "log": "x.log"})
    assert (r["rss_start_mb"], r["rss_min1_mb"], r["rss_end_mb"], r["rss_growth_mb"]) == (500, 500, 580, 80)
    assert r["latency_p95_first_min_s"] == pytest.approx(0.1) and r["latency_p95_last_min_s"] == pytest.approx(0.7)
    assert r["latency_p95_by_min_s"] == "0.100 0.100 0.100 0.700 0.700"
    record = {**r, "setting": "video_tiny, 0.5 s", "weights": "random", "minutes": 5, "model": "video_tiny",
              "stride_s": 0.5}
    assert check_speed(record) == ["stride 0.5 s: latency p95 <= 1.0 s and not growing",
                                   "RSS growth <= 50 MB from minute 1 to the end"]
    assert check_speed({**record, "stride_s": 1.0, "rss_growth_mb": 3}) == [
        "stride 1.0 s: 0 dropped windows and latency p95 <= 0.6 s"]
    table = render_table([record], "stream")
    assert "| video_tiny, 0.5 s | random | 5 |" in table and "0.100 / 0.700" in table and "+80" in table
    assert "| 0.100 0.100 0.100 0.700 0.700 |" in table
