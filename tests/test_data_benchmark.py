"""Benchmark helpers: Kinetics-like video generation, RSS of a process tree, timing."""

from __future__ import annotations

import os

import pytest

from sfvideo.bench.loader import Throughput, generate_videos, time_batches, tree_rss_mb
from sfvideo.data.decoding import decode_video


def test_generate_videos_is_cached_and_decodable(tmp_path):
    paths = generate_videos(tmp_path, 2, seconds=0.5, fps=30.0)
    assert len(paths) == 2 and all(p.exists() for p in paths)
    mtime = paths[0].stat().st_mtime_ns
    assert generate_videos(tmp_path, 2, seconds=0.5)[0].stat().st_mtime_ns == mtime  # reused
    frames, meta = decode_video(paths[1], lambda m: [0, m.num_frames - 1], "pyav")
    assert meta.num_frames == 15 and min(frames.shape[1:3]) >= 240


def test_tree_rss_sums_a_process_and_its_descendants(monkeypatch):
    """The RSS reader is injected; the process tree is the real one (a child waiting on its stdin)."""
    import subprocess
    import sys

    from sfvideo.bench import loader

    child = subprocess.Popen([sys.executable, "-c", "input()"], stdin=subprocess.PIPE)
    try:
        me = os.getpid()
        assert child.pid in loader._children(me)
        monkeypatch.setattr(loader, "rss_mb", lambda pid: {me: 100.0, child.pid: 10.0}.get(pid))
        assert tree_rss_mb() == 110.0 and tree_rss_mb(include_children=False) == 100.0
        assert tree_rss_mb(child.pid) == 10.0
    finally:
        child.communicate(b"\n", timeout=120)


def test_time_batches_skips_warmup_batch():
    import torch

    seen = []

    def batches():
        for b in (4, 3, 3, 3):
            seen.append(b)
            yield {"video": torch.zeros(b)}

    tp = time_batches(batches(), 6, after_warmup=lambda: seen.append("warm"))
    assert isinstance(tp, Throughput) and tp.clips == 6 and tp.seconds >= 0 and tp.cpu_seconds >= 0
    assert seen == [4, "warm", 3, 3]  # the hook runs after the warm-up batch, before the timed ones
    assert tp.clips_per_s == 6 / tp.seconds


def test_bound_heap_growth_applies_the_settings_once_per_process(monkeypatch):
    from sfvideo.data import memory

    calls = []

    class Libc:
        def mallopt(self, param, value):
            calls.append((param, value))
            return 1

    pid = os.getpid() + 100_000
    monkeypatch.setattr(memory, "_applied_in", {})
    monkeypatch.setattr(memory, "_libc", Libc)
    monkeypatch.setattr(memory.os, "getpid", lambda: pid)
    assert memory.bound_heap_growth() is True and memory.bound_heap_growth() is True
    assert calls == [(memory._M_MMAP_THRESHOLD, 64 << 20), (memory._M_TRIM_THRESHOLD, 1 << 30), (memory._M_ARENA_MAX, 2)]
    monkeypatch.setattr(memory.os, "getpid", lambda: pid + 1)  # a forked worker applies them again
    assert memory.bound_heap_growth() is True and len(calls) == 6
    monkeypatch.setattr(memory, "_libc", lambda: None)  # another libc than glibc: nothing to apply
    monkeypatch.setattr(memory.os, "getpid", lambda: pid + 2)
    assert memory.bound_heap_growth() is False and memory.bound_heap_growth() is False


@pytest.fixture
def heap(monkeypatch):
    """``release_free_memory`` in a process of its own (``heap.use(pid)``) with glibc's trim faked
    and the RSS reader injected: the test sets ``heap.rss``; a trim brings it down to ``heap.trimmed_to``."""
    from sfvideo.data import memory

    class Heap:
        rss: float | None = 1000.0
        trimmed_to = 400.0
        trims = 0

        def malloc_trim(self, pad):
            self.trims += 1
            self.rss = self.trimmed_to

        def use(self, pid):
            monkeypatch.setattr(memory.os, "getpid", lambda: pid)
            memory._applied_in[pid] = self

    h = Heap()
    monkeypatch.setattr(memory, "_applied_in", {})
    monkeypatch.setattr(memory, "_state", {})
    monkeypatch.setattr(memory, "_rss_mb", lambda: h.rss)
    h.use(os.getpid() + 100_000)
    return h


def test_release_free_memory_checks_every_nth_item_and_trims_past_the_slack(heap):
    """Checks come every ``every`` items; the first trims, the next takes the level, a later one
    trims once the RSS has grown past the level by more than the slack."""
    from sfvideo.data.memory import release_free_memory

    def items(n, rss):
        heap.rss = rss if rss is not None else heap.rss
        return [release_free_memory(every=4, slack_mb=32) for _ in range(n)]

    assert items(4, None) == [False, False, False, True] and heap.rss == 400.0  # first check: trims
    assert items(4, 900.0) == [False] * 4  # the level: 900
    assert items(4, 932.0) == [False] * 4  # within the slack
    assert items(4, 933.0) == [False, False, False, True] and heap.trims == 2  # past it
    heap.rss = heap.trimmed_to = None  # an RSS /proc cannot tell: every check trims
    assert items(8, None) == [False, False, False, True] * 2 and heap.trims == 4


def test_release_free_memory_keeps_its_level_per_process(heap):
    """A forked worker starts with its own post-trim level: its first check trims, whatever the
    parent's level was (the parent's RSS says nothing about the worker's)."""
    from sfvideo.data.memory import release_free_memory

    assert release_free_memory(every=1, slack_mb=1e9)  # the first check trims
    assert not release_free_memory(every=1, slack_mb=1e9)  # the level
    assert not release_free_memory(every=1, slack_mb=1e9)
    heap.use(os.getpid() + 100_001)  # the "worker"
    assert release_free_memory(every=1, slack_mb=1e9) and heap.trims == 2


def test_release_free_memory_measures_its_level_once_the_heap_is_back_in_use(heap):
    """Right after a trim the RSS is low; the buffers in steady use then fault back in. The level
    is the RSS at the check after the trim, so refilling the working set does not trim again (and
    fault it all in again); growing past that level by the slack does."""
    from sfvideo.data.memory import release_free_memory

    trims = []
    # first check: trims; the working set faults back in (900: the level, no trim); within the
    # slack of it (1000); past it (1200: trims); back in use (1100: the new level)
    for mb in (1000.0, 900.0, 1000.0, 1200.0, 1100.0):
        heap.rss = mb
        trims.append(release_free_memory(every=1, slack_mb=192))
    assert trims == [True, False, False, True, False] and heap.trims == 2


@pytest.mark.slow
def test_benchmark_tool_smoke(tmp_path):
    """The whole tool on 1-second videos and tiny clips: both file sets, every decoder, pytorchvideo
    and the --long memory run."""
    import subprocess
    import sys
    from pathlib import Path

    tool = Path(__file__).resolve().parent.parent / "tools" / "benchmark_loader.py"
    cmd = [sys.executable, str(tool), "--videos", "1", "--seconds", "1", "--clips", "4", "--batch-size", "2",
           "--rounds", "1", "--long", "4", "--long-workers", "1", "--long-decoder", "auto", "--cache-dir", str(tmp_path),
           "--results", str(tmp_path / "loader.csv"),
           "DATA.NUM_FRAMES", "4", "DATA.TRAIN_JITTER_SCALES", "[40, 48]", "DATA.TRAIN_CROP_SIZE", "32"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    for name in ("smooth", "high_entropy"):
        assert f"| {name} | pytorchvideo Kinetics, pyav |" in out.stdout
        for dec in ("torchcodec", "decord", "pyav"):
            assert f"| {name} | sfvideo, {dec} |" in out.stdout
    assert "| long run |" in out.stdout
    from sfvideo.bench.results import read_results, render_table

    table, memory = read_results(tmp_path / "loader.csv"), read_results(tmp_path / "loader_memory.csv")
    assert [r["loader"] for r in table].count("pytorchvideo Kinetics, pyav") == 2 and len(table) == 8
    assert render_table(table) in out.stdout and render_table(memory) in out.stdout
    assert memory[0]["workers"] == "1" and "--long 4" in memory[0]["command"]


def test_span_recorder_and_decode_only_replay(tmp_path):
    from sfvideo.bench.loader import SpanRecorder, decode_only
    from sfvideo.config import load_config
    from sfvideo.data import build_dataset

    paths = generate_videos(tmp_path, 1, seconds=1.0, fps=30.0)
    (tmp_path / "list.txt").write_text(f"{paths[0]} 0\n")
    cfg = load_config(None, ["DATA.PATH_TO_DATA_DIR", str(tmp_path), "DATA.TRAIN_LIST", "list.txt",
                             "DATA.CLASS_NAMES", "", "DATA.NUM_FRAMES", "4", "DATA.TRAIN_CROP_SIZE", "32",
                             "DATA.TRAIN_JITTER_SCALES", "[40, 48]"])
    ds = build_dataset(cfg, "train")
    rec = SpanRecorder(ds)
    ds[0]
    ds[0]
    rec.close()
    assert len(rec.spans) == 2 and all(len(idx) == 4 for _, idx in rec.spans)
    assert rec.spans[0][0] == str(paths[0])
    assert decode_only(rec.spans, "pyav").clips == 2
    ds[0]
    assert len(rec.spans) == 2  # closed: later items are not recorded


@pytest.mark.slow
def test_benchmark_shard_rows_smoke(tmp_path):
    """--shards on 1-second videos: shards written from the videos, rows for local shards, HTTP
    shards and loose files, the memory of a run over the HTTP shards, results as data."""
    import subprocess
    import sys
    from pathlib import Path

    tool = Path(__file__).resolve().parent.parent / "tools" / "benchmark_loader.py"
    pattern = str(tmp_path / "shards" / "bench-{000000..000001}.tar")
    cmd = [sys.executable, str(tool), "--sets", "--videos", "4", "--seconds", "1", "--clips", "4", "--batch-size", "2",
           "--rounds", "2", "--long", "8", "--long-workers", "2", "--long-decoder", "pyav", "--shards", pattern,
           "--cache-dir", str(tmp_path), "--results", str(tmp_path / "loader.csv"),
           "DATA.NUM_FRAMES", "4", "DATA.TRAIN_JITTER_SCALES", "[40, 48]", "DATA.TRAIN_CROP_SIZE", "32"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    from sfvideo.bench.results import read_results, render_table

    rows = read_results(tmp_path / "loader_shards.csv")
    assert [r["source"] for r in rows] == ["local shards", "HTTP shards", "loose files"]
    assert float(rows[2]["vs_loose_files"]) == 1.0 and all(float(r["clips_s"]) > 0 for r in rows)
    memory = read_results(tmp_path / "loader_shards_memory.csv")
    assert memory[0]["set"] == "smooth, HTTP shards" and int(memory[0]["clips"]) >= 8
    assert render_table(rows) in out.stdout and render_table(memory) in out.stdout
    assert (tmp_path / "shards" / "bench-shards.json").is_file() and not (tmp_path / "loader.csv").exists()
