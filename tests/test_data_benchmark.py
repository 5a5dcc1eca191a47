"""Benchmark helpers: Kinetics-like video generation, RSS of a process tree, timing."""

from __future__ import annotations

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


def test_tree_rss_counts_this_process():
    assert tree_rss_mb() > 10


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


def test_bound_heap_growth_is_idempotent():
    from sfvideo.data.memory import bound_heap_growth

    first = bound_heap_growth()
    assert isinstance(first, bool)
    assert bound_heap_growth() is first or bound_heap_growth() is True


def test_release_free_memory_trims_when_the_heap_grew():
    from sfvideo.data import memory

    if not memory.bound_heap_growth():
        pytest.skip("not glibc: the heap settings do not apply")
    # growth beyond a negative slack always counts: every other check (each 4th item) trims, the
    # check after a trim takes the level
    trims = [memory.release_free_memory(every=4, slack_mb=-1) for _ in range(16)]
    at = [i for i, t in enumerate(trims) if t]
    assert len(at) == 2 and at[1] - at[0] == 8
    # a slack no heap reaches: the checks find nothing to return
    assert not any(memory.release_free_memory(every=4, slack_mb=1e9) for _ in range(12))
    # held memory raises the RSS past a small slack: the next check trims
    held = bytearray(96 << 20)  # noqa: F841 - touched pages count in the RSS
    for i in range(len(held) // 4096):
        held[i * 4096] = 1
    assert any(memory.release_free_memory(every=4, slack_mb=32) for _ in range(4))


def test_release_free_memory_keeps_its_level_per_process(monkeypatch):
    """A forked worker starts with its own post-trim level: its first check trims, whatever the
    parent's level was (the parent's RSS says nothing about the worker's)."""
    import os

    from sfvideo.data import memory

    if not memory.bound_heap_growth():
        pytest.skip("not glibc: the heap settings do not apply")
    memory.release_free_memory(every=1, slack_mb=-1)  # this process now has a level
    assert not memory.release_free_memory(every=1, slack_mb=1e9)
    child = os.getpid() + 100_000
    monkeypatch.setitem(memory._applied_in, child, memory._applied_in[os.getpid()])
    monkeypatch.setattr(memory.os, "getpid", lambda: child)
    assert memory.release_free_memory(every=1, slack_mb=1e9)  # first check in the "worker"


def test_release_free_memory_measures_its_level_once_the_heap_is_back_in_use(monkeypatch):
    """Right after a trim the RSS is low; the buffers in steady use then fault back in. The level
    is the RSS at the check after the trim, so refilling the working set does not trim again (and
    fault it all in again); growing past that level by the slack does."""
    import os

    from sfvideo.data import memory

    rss = {"mb": 1000.0}

    class Libc:  # a trim returns the free pages: the RSS drops to 400 MiB
        trims = 0

        def malloc_trim(self, pad):
            Libc.trims += 1
            rss["mb"] = 400.0

    pid = os.getpid() + 200_000
    monkeypatch.setattr(memory.os, "getpid", lambda: pid)
    monkeypatch.setitem(memory._applied_in, pid, Libc())
    monkeypatch.setattr(memory, "_rss_mb", lambda: rss["mb"])
    trims = []
    # first check: trims; the working set faults back in (900: the level, no trim); within the
    # slack of it (1000); past it (1200: trims); back in use (1100: the new level)
    for mb in (1000.0, 900.0, 1000.0, 1200.0, 1100.0):
        rss["mb"] = mb
        trims.append(memory.release_free_memory(every=1, slack_mb=192))
    assert trims == [True, False, False, True, False] and Libc.trims == 2


@pytest.mark.slow
def test_benchmark_tool_smoke(tmp_path):
    """The whole tool on 1-second videos and tiny clips: both file sets, every decoder, pytorchvideo
    and the --long memory run."""
    import subprocess
    import sys
    from pathlib import Path

    tool = Path(__file__).resolve().parent.parent / "tools" / "benchmark_loader.py"
    cmd = [sys.executable, str(tool), "--videos", "2", "--seconds", "1", "--clips", "4", "--batch-size", "2",
           "--rounds", "2", "--long", "4", "--long-workers", "1", "--long-decoder", "auto", "--cache-dir", str(tmp_path),
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
    assert len(rec.spans) == 2  # closed: no longer recording


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
