"""Benchmark the training data pipeline per decoder against its own decode-only rate and
pytorchvideo's Kinetics loader, on a smooth and a high-entropy set of synthetic videos.

For each file set and decoder, in one process (the loader's ``num_workers`` 0):

* pipeline: sfvideo's training dataset through a DataLoader (decode, crop, flip, RandAugment,
  erasing, collation), clips/s; every decode's exact frame indices are recorded. By default the
  dataset decodes a batch's items one after another while a background thread augments the
  decoded ones (``DATA.DECODE_AHEAD``); the table also gives the pipeline with the two stages one
  after the other ("sequential"), and the process CPU time per clip of the pipeline over that of
  decode-only (what the transforms cost in CPU, whatever overlaps);
* decode-only: the same backend decoding exactly those recorded spans, nothing else;
* ``DATA.CLIPS_PER_DECODE 2``: the pipeline sampling two clips from each decode;
* pytorchvideo's ``Kinetics`` loader (PyAV, its documented training transform) with the same
  clip span, on the same files.

Measurements run in ``--rounds`` alternating rounds (order reversed every other round) and the
table reports each rate's median and the median of the per-round ratios, so a busy machine
slows both sides of a ratio alike. ``--long N`` adds the memory of a long multi-worker run.
``--results FILE`` also writes the figures as data (``sfvideo.bench.results``).

``--shards PATTERN`` (a local brace pattern, e.g. ``/tmp/sfvideo_bench/shards/bench-{000000..000002}.tar``;
its shards are written from the ``--long-set`` videos when its index is missing) times the same
clips from those shards, from the shards served over loopback HTTP (nginx, else Python's
http.server), and from the loose files, each through the training loader with ``--long-workers``
workers, in alternating rounds; ``--long N`` then measures the memory over N clips read from the
HTTP shards. Its figures go to ``FILE_shards`` and ``FILE_shards_memory`` with ``--results``.

Example::

    python tools/benchmark_loader.py --videos 6 --clips 48 --rounds 5 --long 2000
    sfvideo benchmark-loader --videos 6 --clips 48 --rounds 5 --long 2000 \
        --shards '/tmp/sfvideo_bench/shards/bench-{000000..000002}.tar' --results results/loader.csv

Trailing ``KEY VALUE`` pairs override the config of sfvideo's pipeline
(default: the defaults tree: 32 frames at rate 2, crop 224, RandAugment rand-m7-n4, erasing 0.25).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable


def build_parser() -> argparse.ArgumentParser:
    from .args import CommandParser, non_negative_int, positive_float, positive_int

    p = CommandParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache-dir", default=str(Path(tempfile.gettempdir()) / "sfvideo_bench"),
                   help="where the synthetic videos are generated (reused across runs)")
    p.add_argument("--sets", nargs="*", default=["smooth", "high_entropy"], choices=["smooth", "high_entropy"],
                   help="file sets to measure (none: only the --long run)")
    p.add_argument("--videos", type=positive_int, default=6, help="videos per file set")
    p.add_argument("--seconds", type=positive_float, default=10.0, help="length of each video")
    p.add_argument("--clips", type=positive_int, default=16, help="clips timed per measurement")
    p.add_argument("--rounds", type=positive_int, default=3, help="alternating measurement rounds")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help="items per loader batch (default: the config's TRAIN.BATCH_SIZE, 8 in the defaults)")
    p.add_argument("--decoders", nargs="+", default=["torchcodec", "decord", "pyav"],
                   choices=["auto", "torchcodec", "decord", "pyav"])
    p.add_argument("--no-pytorchvideo", action="store_true", help="skip pytorchvideo's loader")
    p.add_argument("--long", type=non_negative_int, default=0, metavar="N",
                   help="also run N training clips and report memory")
    p.add_argument("--long-workers", type=non_negative_int, default=2, help="loader workers for the --long run")
    p.add_argument("--long-decoder", default="torchcodec", choices=["auto", "torchcodec", "decord", "pyav"])
    p.add_argument("--long-set", default="smooth", choices=["smooth", "high_entropy"])
    p.add_argument("--threads", type=positive_int, default=1, help="torch threads in this process")
    p.add_argument("--cfg", default=None, help="config for sfvideo's pipeline (default: built-in defaults)")
    p.add_argument("--results", metavar="FILE", help="also write the table's figures to FILE (.csv or .json; "
                   "replaced) and the --long run's to FILE_memory (same suffix)")
    p.add_argument("--shards", metavar="PATTERN", help="also time the clips from local shards, shards over loopback "
                   "HTTP and loose files (see above); PATTERN is a local brace pattern")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    return p


def parse_args(argv=None) -> argparse.Namespace:
    """The options, checked: a bad value, a ``--cache-dir`` that cannot hold files or a config
    override that does not load exits with one line (status 2) before any video is made."""
    from sfvideo.config import ConfigError, load_config

    from .args import require_writable_folder

    parser = build_parser()
    args = parser.parse_args(argv)
    require_writable_folder(parser, args.cache_dir, "--cache-dir")
    try:
        args.config = load_config(args.cfg, _base_opts(Path(args.cache_dir)) + list(args.opts))
    except ConfigError as err:
        parser.error(str(err))
    return args


def _base_opts(cache: Path) -> list[str]:
    return ["DATA.PATH_TO_DATA_DIR", str(cache), "DATA.CLASS_NAMES", "", "OUTPUT_DIR", str(cache / "out")]


# ----------------------------------------------------------------------------- pytorchvideo
def _pytorchvideo_loader(list_file: str, cfg, batch_size: int, workers: int = 0):
    """pytorchvideo's Kinetics loader with its documented training transform."""
    import torch
    import torchvision.transforms.functional as tv_f
    from torch.utils.data import DataLoader, RandomSampler

    # pytorchvideo 0.1.5 imports torchvision.transforms.functional_tensor, which torchvision 0.17+ lacks;
    # torchvision.transforms.functional holds its functions.
    sys.modules.setdefault("torchvision.transforms.functional_tensor", tv_f)
    from pytorchvideo.data import Kinetics, make_clip_sampler
    from pytorchvideo.transforms import (
        ApplyTransformToKey,
        Normalize,
        RandomShortSideScale,
        UniformTemporalSubsample,
    )
    from torchvision.transforms import Compose, Lambda, RandomCrop, RandomHorizontalFlip

    d = cfg.DATA
    transform = ApplyTransformToKey("video", Compose([
        UniformTemporalSubsample(d.NUM_FRAMES),
        Lambda(lambda x: x / 255.0),
        Normalize(tuple(d.MEAN), tuple(d.STD)),
        RandomShortSideScale(min_size=d.TRAIN_JITTER_SCALES[0], max_size=d.TRAIN_JITTER_SCALES[1]),
        RandomCrop(d.TRAIN_CROP_SIZE),
        RandomHorizontalFlip(p=0.5),
    ]))
    clip_seconds = d.NUM_FRAMES * d.SAMPLING_RATE / d.TARGET_FPS  # the same span as sfvideo's clips
    ds = Kinetics(list_file, clip_sampler=make_clip_sampler("random", clip_seconds),
                  video_sampler=RandomSampler, transform=transform, decode_audio=False, decoder="pyav")
    return DataLoader(ds, batch_size=batch_size, num_workers=workers,
                      collate_fn=lambda b: {"video": torch.stack([x["video"] for x in b])})


# ----------------------------------------------------------------------------- sfvideo
def _sfvideo_loader(cfg, batch_size: int, workers: int, num_items: int, seed: int):
    import torch
    from torch.utils.data import DataLoader, RandomSampler

    from sfvideo.data import build_dataset, collate_train

    ds = build_dataset(cfg, "train")
    gen = torch.Generator().manual_seed(seed)
    sampler = RandomSampler(ds, replacement=True, num_samples=num_items, generator=gen)
    return ds, DataLoader(ds, batch_size=batch_size, num_workers=workers, sampler=sampler, collate_fn=collate_train)


def _write_list(path: Path, videos, repeats: int = 1) -> Path:
    """A ``path label`` list of ``videos`` (labels cycling over 400 classes), ``repeats`` times over."""
    path.write_text("".join(f"{p} {i % 400}\n" for _ in range(repeats) for i, p in enumerate(videos)))
    return path


def _measure_decoder(d: str, configs, bs: int, n: int, seed: int, add: Callable[[tuple, float], None]) -> None:
    """One round of one decoder: pipeline (recording its spans), decode-only on those spans,
    the sequential pipeline, and two clips per decode; each figure goes to ``add``."""
    from sfvideo.bench.loader import SpanRecorder, decode_only, time_batches
    from sfvideo.data.decoding import resolve_backend

    cfg, cfg_seq, cfg_k2 = configs
    items = n + 2 * bs  # warm-up batch + timed clips + slack
    ds, loader = _sfvideo_loader(cfg, bs, 0, items, seed)
    rec = SpanRecorder(ds)
    pipe = time_batches(loader, n, after_warmup=rec.spans.clear)
    rec.close()
    dec = decode_only(rec.spans[: pipe.clips], resolve_backend(d), cfg.DATA.SEEK_MODE)
    add((d, "pipeline"), pipe.clips_per_s)
    add((d, "decode"), dec.clips_per_s)
    add((d, "pipeline_cpu"), pipe.cpu_seconds / pipe.clips)  # process CPU seconds per clip
    add((d, "decode_cpu"), dec.cpu_seconds / dec.clips)
    add((d, "sequential"), time_batches(_sfvideo_loader(cfg_seq, bs, 0, items, seed)[1], n).clips_per_s)
    _, loader2 = _sfvideo_loader(cfg_k2, max(bs // 2, 1), 0, items // 2 + bs, seed)
    add((d, "k2"), time_batches(loader2, n).clips_per_s)


def _set_records(name: str, decoders: list[str], rates: dict[tuple, list[float]]) -> list[dict]:
    """One record per loader: rates are medians over rounds, ratios medians of per-round ratios."""
    from sfvideo.bench.timing import paired_ratio
    from sfvideo.data.decoding import resolve_backend

    med = statistics.median
    pv = rates.get(("pytorchvideo", "pipeline"))
    records = []
    for d in decoders:
        r = {k: rates[(d, k)] for k in ("pipeline", "decode", "pipeline_cpu", "decode_cpu", "sequential", "k2")}
        records.append({
            "set": name, "loader": f"sfvideo, {d} ({resolve_backend(d)})" if d == "auto" else f"sfvideo, {d}",
            "decoder": resolve_backend(d), "decode_clips_s": med(r["decode"]), "pipeline_clips_s": med(r["pipeline"]),
            "pipeline_vs_decode": paired_ratio(r["pipeline"], r["decode"]),
            "sequential_vs_decode": paired_ratio(r["sequential"], r["decode"]),
            "cpu_vs_decode": paired_ratio(r["pipeline_cpu"], r["decode_cpu"]), "k2_clips_s": med(r["k2"]),
            "k2_vs_k1": paired_ratio(r["k2"], r["pipeline"]),
            "vs_pytorchvideo": paired_ratio(r["pipeline"], pv) if pv else float("nan")})
    if pv:
        records.append({"set": name, "loader": "pytorchvideo Kinetics, pyav", "decoder": "pyav",
                        "pipeline_clips_s": med(pv), "vs_pytorchvideo": 1.0})
    return records


def _measure_set(args, name: str, paths, base_opts, seed: int) -> list[dict]:
    """Every decoder (and pytorchvideo's loader) on one file set, in alternating rounds."""
    import torch

    from sfvideo.bench.loader import time_batches
    from sfvideo.config import load_config
    from sfvideo.data.decoding import backend_status

    cache = Path(args.cache_dir)
    list_file = _write_list(cache / f"{name}_list.txt", paths)
    # pytorchvideo walks its list once: repeat it
    pv_list = _write_list(cache / f"{name}_list_repeated.txt", paths, (args.clips + 2 * args.batch_size) // len(paths) + 2)
    opts = base_opts + ["DATA.TRAIN_LIST", str(list_file)]
    decoders = [d for d in args.decoders if d == "auto" or not backend_status(d)]
    for d in set(args.decoders) - set(decoders):
        print(f"  skipping {d}: {backend_status(d)}", flush=True)
    variants = ([], ["DATA.DECODE_AHEAD", "False"], ["DATA.CLIPS_PER_DECODE", "2"])  # default, sequential, K=2
    configs = {d: tuple(load_config(args.cfg, opts + ["DATA.DECODER", d] + list(args.opts) + extra) for extra in variants)
               for d in decoders}
    any_cfg = next(iter(configs.values()))[0]
    bs, n = args.batch_size, args.clips
    rates: dict[tuple[str, str], list[float]] = {}

    def add(key: tuple, value: float) -> None:
        rates.setdefault(key, []).append(value)

    def run_pv(r: int) -> None:
        torch.manual_seed(seed + r)
        add(("pytorchvideo", "pipeline"), time_batches(_pytorchvideo_loader(str(pv_list), any_cfg, bs), n).clips_per_s)

    tasks = [(f"sfvideo {d}", lambda r, d=d: _measure_decoder(d, configs[d], bs, n, seed + r, add)) for d in decoders]
    tasks += [] if args.no_pytorchvideo else [("pytorchvideo", run_pv)]
    for r in range(args.rounds):
        for label, fn in tasks if r % 2 == 0 else tasks[::-1]:
            print(f"  [{name}] round {r + 1}/{args.rounds}: {label} ...", flush=True)
            fn(r)
    return _set_records(name, decoders, rates)


def _long_run(args, paths, base_opts) -> dict:
    """Memory of the main process and workers over ``--long`` training clips from the loose files."""
    from sfvideo.config import load_config

    list_file = _write_list(Path(args.cache_dir) / f"{args.long_set}_list.txt", paths)
    cfg = load_config(args.cfg, base_opts + ["DATA.TRAIN_LIST", str(list_file), "DATA.DECODER", args.long_decoder]
                      + list(args.opts))
    _, loader = _sfvideo_loader(cfg, args.batch_size, args.long_workers, args.long + 2 * args.batch_size, 0)
    return _memory_run(args, loader, args.long_set)


def _memory_run(args, loader, set_name: str) -> dict:
    """RSS of the main process and ``loader``'s workers over ``--long`` clips, by window of the run."""
    from sfvideo.bench.loader import RssSampler, batch_size_of, tree_rss_mb

    trace: list[tuple[int, float, float]] = []  # (clips, main RSS, main + workers RSS) after each batch
    t0, clips = None, 0
    with RssSampler() as rss:
        for batch in loader:
            if t0 is None:
                t0 = time.perf_counter()
                continue
            clips += batch_size_of(batch)
            trace.append((clips, tree_rss_mb(include_children=False), tree_rss_mb()))
            if clips >= args.long:
                break
    seconds = time.perf_counter() - t0

    def window(lo: float, hi: float, col: int) -> float:
        # median over a window of the run: one sample depends on how many batches are in flight
        vals = [row[col] for row in trace if lo * args.long <= row[0] <= hi * args.long]
        return statistics.median(vals) if vals else float("nan")

    first, last = window(0.05, 0.15, 2), window(0.9, 1.0, 2)
    return {"set": set_name, "decoder": args.long_decoder, "workers": args.long_workers, "clips": clips,
            "clips_s": clips / seconds, "rss_start_mb": first, "rss_middle_mb": window(0.45, 0.55, 2),
            "rss_end_mb": last, "rss_peak_mb": rss.peak, "growth_mb": last - first,
            "growth_from_quarter_mb": last - window(0.25, 0.3, 2),
            "main_start_mb": window(0.05, 0.15, 1), "main_end_mb": window(0.9, 1.0, 1)}


def _measure_shards(args, paths, base_opts) -> tuple[list[dict], dict | None]:
    """--shards: the same clips from local shards, HTTP shards and loose files, alternating rounds;
    with --long, the memory of a run over the HTTP shards."""
    import os

    from sfvideo.bench.loader import time_batches
    from sfvideo.bench.serve import http_server
    from sfvideo.bench.shards import SOURCES, ensure_shards, shard_layout, shard_loader
    from sfvideo.bench.timing import paired_ratio
    from sfvideo.config import load_config

    cache, bs, workers, n = Path(args.cache_dir), args.batch_size, args.long_workers, args.clips
    ensure_shards(args.shards, paths)
    opts = base_opts + ["DATA.TRAIN_LIST", str(_write_list(cache / f"{args.long_set}_list.txt", paths)),
                        "DATA.DECODER", args.long_decoder] + list(args.opts)
    cfg = load_config(args.cfg, opts)
    rates: dict[str, list[float]] = {s: [] for s in SOURCES}
    with http_server(shard_layout(args.shards)[0], cache / "http") as url:
        patterns = {"local shards": args.shards, "HTTP shards": f"{url}/{os.path.basename(args.shards)}"}

        def loader(source: str, items: int, seed: int):
            if source == "loose files":
                return _sfvideo_loader(cfg, bs, workers, items, seed)[1]
            return shard_loader(args.cfg, opts, patterns[source], bs, workers, items)

        for r in range(args.rounds):
            for source in SOURCES if r % 2 == 0 else SOURCES[::-1]:
                print(f"  [shards] round {r + 1}/{args.rounds}: {source} ...", flush=True)
                rates[source].append(time_batches(loader(source, n + 2 * bs, r), n).clips_per_s)
        long = None
        if args.long:
            print(f"\nlong run over the HTTP shards: {args.long} clips, {workers} workers ...\n", flush=True)
            long = _memory_run(args, loader("HTTP shards", args.long + 2 * bs, 0), f"{args.long_set}, HTTP shards")
    records = [{"set": args.long_set, "source": s, "decoder": args.long_decoder, "workers": workers,
                "clips_s": statistics.median(rates[s]), "vs_loose_files": paired_ratio(rates[s], rates["loose files"])}
               for s in SOURCES]
    return records, long


def _save(args, argv, outputs: list[tuple[str, list[dict], str]]) -> None:
    """--results: each (suffix, records, table) to FILE with the suffix before its extension
    (``""``: FILE itself; ``"_memory"``: FILE_memory.csv, ...)."""
    from sfvideo.bench.results import command_line, save_run

    path = Path(args.results)
    command = command_line("sfvideo benchmark-loader", sys.argv[1:] if argv is None else argv)
    for suffix, records, kind in outputs:
        if records:
            target = path.with_name(f"{path.stem}{suffix}{path.suffix}")
            print(f"results written to {save_run(target, records, kind, command)}")


def main(argv=None) -> int:
    args = parse_args(argv)
    # imported after parsing so that --help answers without loading torch
    import torch

    from sfvideo.bench.loader import generate_videos
    from sfvideo.bench.results import render_table

    torch.set_num_threads(args.threads)
    cache = Path(args.cache_dir)
    base_opts, cfg = _base_opts(cache), args.config
    if args.batch_size is None:
        args.batch_size = cfg.TRAIN.BATCH_SIZE
    sets = {}
    for name in sorted(set(args.sets) | ({args.long_set} if args.long or args.shards else set())):
        print(f"generating/reusing {args.videos} {name} videos in {cache} ...", flush=True)
        sets[name] = generate_videos(cache, args.videos, seconds=args.seconds, kind=name)
    records = [rec for i, name in enumerate(args.sets) for rec in _measure_set(args, name, sets[name], base_opts, 1000 * i)]
    if records:
        print(f"\n{_table_header(args, cfg)}\n\n{render_table(records, 'loader')}")
    long = None
    if args.long:
        print(f"\nlong run: {args.long} clips, {args.long_decoder}, {args.long_workers} workers ...\n", flush=True)
        long = _long_run(args, sets[args.long_set], base_opts)
        print(render_table([long], "loader_memory"))
    shard_records, shard_long = _measure_shards(args, sets[args.long_set], base_opts) if args.shards else ([], None)
    for table, rows in (("loader_shards", shard_records), ("loader_memory", [shard_long] if shard_long else [])):
        if rows:
            print(f"\n{render_table(rows, table)}")
    if args.results:
        _save(args, argv, [("", records, "loader"), ("_memory", [long] if long else [], "loader_memory"),
                           ("_shards", shard_records, "loader_shards"),
                           ("_shards_memory", [shard_long] if shard_long else [], "loader_memory")])
    return 0


def _table_header(args, cfg) -> str:
    d = cfg.DATA
    span = d.NUM_FRAMES * d.SAMPLING_RATE
    return (f"One process (loader num_workers 0), torch threads {args.threads}, batch {args.batch_size}; "
            f"clip = {d.NUM_FRAMES} frames at rate {d.SAMPLING_RATE} ({span} source frames), crop {d.TRAIN_CROP_SIZE}, "
            f"RandAugment {cfg.AUG.RAND_AUGMENT or 'off'}, erasing {cfg.AUG.RE_PROB}; {args.videos} videos x "
            f"{args.seconds:g} s per set (smooth: Kinetics-like, short side 240-320, GOP 2-4 s; high_entropy: "
            f"textured + noise, 256x340, GOP 150; 30 fps H.264); medians of {args.rounds} alternating rounds of "
            f"{args.clips} clips.")


if __name__ == "__main__":
    sys.exit(main())
