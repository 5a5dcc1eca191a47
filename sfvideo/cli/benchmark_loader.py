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

Example::

    python tools/benchmark_loader.py --videos 6 --clips 48 --rounds 5 --long 2000

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


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache-dir", default=str(Path(tempfile.gettempdir()) / "sfvideo_bench"),
                   help="where the synthetic videos are generated (reused across runs)")
    p.add_argument("--sets", nargs="*", default=["smooth", "high_entropy"], choices=["smooth", "high_entropy"],
                   help="file sets to measure (none: only the --long run)")
    p.add_argument("--videos", type=int, default=6, help="videos per file set")
    p.add_argument("--seconds", type=float, default=10.0, help="length of each video")
    p.add_argument("--clips", type=int, default=16, help="clips timed per measurement")
    p.add_argument("--rounds", type=int, default=3, help="alternating measurement rounds")
    p.add_argument("--batch-size", type=int, default=None,
                   help="items per loader batch (default: the config's TRAIN.BATCH_SIZE, 8 in the defaults)")
    p.add_argument("--decoders", nargs="+", default=["torchcodec", "decord", "pyav"],
                   choices=["auto", "torchcodec", "decord", "pyav"])
    p.add_argument("--no-pytorchvideo", action="store_true", help="skip pytorchvideo's loader")
    p.add_argument("--long", type=int, default=0, metavar="N", help="also run N training clips and report memory")
    p.add_argument("--long-workers", type=int, default=2, help="loader workers for the --long run")
    p.add_argument("--long-decoder", default="torchcodec", choices=["auto", "torchcodec", "decord", "pyav"])
    p.add_argument("--long-set", default="smooth", choices=["smooth", "high_entropy"])
    p.add_argument("--threads", type=int, default=1, help="torch threads in this process")
    p.add_argument("--cfg", default=None, help="config for sfvideo's pipeline (default: built-in defaults)")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    return p.parse_args(argv)


# ----------------------------------------------------------------------------- pytorchvideo
def _pytorchvideo_loader(list_file: str, cfg, batch_size: int, workers: int = 0):
    """pytorchvideo's Kinetics loader with its documented training transform."""
    import torch
    import torchvision.transforms.functional as tv_f
    from torch.utils.data import DataLoader, RandomSampler

    # pytorchvideo 0.1.5 imports a module torchvision removed (0.17+); its functions live here now.
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


def _measure_decoder(d: str, configs, bs: int, n: int, seed: int, add, ratios) -> None:
    """One round of one decoder: pipeline (recording its spans), decode-only on those spans,
    the sequential pipeline, and two clips per decode; rates go to ``add``, ratios to ``ratios``."""
    from sfvideo.bench.loader import SpanRecorder, decode_only, time_batches
    from sfvideo.data.decoding import resolve_backend

    cfg, cfg_seq, cfg_k2 = configs
    items = n + 2 * bs  # warm-up batch + timed clips + slack
    ds, loader = _sfvideo_loader(cfg, bs, 0, items, seed)
    rec = SpanRecorder(ds)
    pipe = time_batches(loader, n, after_warmup=rec.spans.clear)
    rec.close()
    spans = rec.spans[: pipe.clips]
    dec = decode_only(spans, resolve_backend(d), cfg.DATA.SEEK_MODE)
    add((d, "pipeline"), pipe.clips_per_s)
    add((d, "decode"), dec.clips_per_s)
    ratios.setdefault((d, "pipe/decode"), []).append(pipe.clips_per_s / dec.clips_per_s)
    ratios.setdefault((d, "cpu"), []).append((pipe.cpu_seconds / pipe.clips) / (dec.cpu_seconds / dec.clips))
    _, loader_seq = _sfvideo_loader(cfg_seq, bs, 0, items, seed)
    seq = time_batches(loader_seq, n)
    ratios.setdefault((d, "seq/decode"), []).append(seq.clips_per_s / dec.clips_per_s)
    _, loader2 = _sfvideo_loader(cfg_k2, max(bs // 2, 1), 0, items // 2 + bs, seed)
    k2 = time_batches(loader2, n)
    add((d, "k2"), k2.clips_per_s)
    ratios.setdefault((d, "k2/k1"), []).append(k2.clips_per_s / pipe.clips_per_s)


def _measure_set(args, name: str, paths, base_opts, seed: int) -> list[str]:
    import torch

    from sfvideo.bench.loader import time_batches
    from sfvideo.config import load_config
    from sfvideo.data.decoding import backend_status, resolve_backend

    cache = Path(args.cache_dir)
    list_file = cache / f"{name}_list.txt"
    list_file.write_text("".join(f"{p} {i % 400}\n" for i, p in enumerate(paths)))
    pv_list = cache / f"{name}_list_repeated.txt"  # pytorchvideo walks its list once: repeat it
    repeats = (args.clips + 2 * args.batch_size) // len(paths) + 2
    pv_list.write_text("".join(f"{p} {i % 400}\n" for _ in range(repeats) for i, p in enumerate(paths)))
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
    ratios: dict[tuple[str, str], list[float]] = {}

    def add(key, value):
        rates.setdefault(key, []).append(value)

    tasks = []
    for d in decoders:
        def run_decoder(d=d, r=0):
            _measure_decoder(d, configs[d], bs, n, seed + r, add, ratios)
        tasks.append((f"sfvideo {d}", run_decoder))
    if not args.no_pytorchvideo:
        def run_pv(r=0):
            torch.manual_seed(seed + r)
            add(("pytorchvideo", "pipeline"), time_batches(_pytorchvideo_loader(str(pv_list), any_cfg, bs), n).clips_per_s)
        tasks.append(("pytorchvideo", run_pv))

    for r in range(args.rounds):
        order = tasks if r % 2 == 0 else tasks[::-1]
        for label, fn in order:
            print(f"  [{name}] round {r + 1}/{args.rounds}: {label} ...", flush=True)
            fn(r=r)
        if not args.no_pytorchvideo:  # per-round ratio against pytorchvideo of the same round
            pv = rates[("pytorchvideo", "pipeline")][-1]
            for d in decoders:
                ratios.setdefault((d, "vs pv"), []).append(rates[(d, "pipeline")][-1] / pv)

    med = statistics.median
    rows = []
    for d in decoders:
        shown = f"{d} ({resolve_backend(d)})" if d == "auto" else d
        vs_pv = f"{med(ratios[(d, 'vs pv')]):.2f}x" if (d, "vs pv") in ratios else "n/a"
        rows.append(f"| {name} | sfvideo, {shown} | {med(rates[(d, 'decode')]):.2f} | {med(rates[(d, 'pipeline')]):.2f} | "
                    f"{med(ratios[(d, 'pipe/decode')]):.2f} | {med(ratios[(d, 'seq/decode')]):.2f} | "
                    f"{med(ratios[(d, 'cpu')]):.2f} | {med(rates[(d, 'k2')]):.2f} | "
                    f"{med(ratios[(d, 'k2/k1')]):.2f}x | {vs_pv} |")
    if not args.no_pytorchvideo:
        rows.append(f"| {name} | pytorchvideo Kinetics, pyav | | {med(rates[('pytorchvideo', 'pipeline')]):.2f} "
                    "| | | | | | 1.00x |")
    return rows


def _long_run(args, paths, base_opts) -> list[str]:
    """Memory of the main process and workers over ``--long`` training clips."""
    from sfvideo.bench.loader import RssSampler, tree_rss_mb
    from sfvideo.config import load_config

    cache = Path(args.cache_dir)
    list_file = cache / f"{args.long_set}_list.txt"
    list_file.write_text("".join(f"{p} {i % 400}\n" for i, p in enumerate(paths)))
    cfg = load_config(args.cfg, base_opts + ["DATA.TRAIN_LIST", str(list_file), "DATA.DECODER", args.long_decoder]
                      + list(args.opts))
    _, loader = _sfvideo_loader(cfg, args.batch_size, args.long_workers, args.long + 2 * args.batch_size, 0)
    trace: list[tuple[int, float, float]] = []  # (clips, main RSS, main + workers RSS) after each batch
    from sfvideo.bench.loader import batch_size_of

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

    first, mid, last = window(0.05, 0.15, 2), window(0.45, 0.55, 2), window(0.9, 1.0, 2)
    return [
        "| long run | clips | clips/s | RSS main+workers, 5-15% of run (MiB) | 45-55% | 90-100% | peak | growth | main 5-15% | main 90-100% |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| {args.long_set}, {args.long_decoder}, {args.long_workers} workers | {clips} | {clips / seconds:.2f} | "
        f"{first:.0f} | {mid:.0f} | {last:.0f} | {rss.peak:.0f} | {last - first:+.0f} MiB | "
        f"{window(0.05, 0.15, 1):.0f} | {window(0.9, 1.0, 1):.0f} |",
        "(RSS counts shared pages once per process, so batches in flight count in a worker and in the main process.)",
    ]


def main(argv=None) -> int:
    args = parse_args(argv)
    # imported after parsing so that --help answers without loading torch
    import torch

    from sfvideo.bench.loader import generate_videos
    from sfvideo.config import load_config

    torch.set_num_threads(args.threads)
    cache = Path(args.cache_dir)
    base_opts = ["DATA.PATH_TO_DATA_DIR", str(cache), "DATA.CLASS_NAMES", "", "OUTPUT_DIR", str(cache / "out")]
    cfg = load_config(args.cfg, base_opts + list(args.opts))
    if args.batch_size is None:
        args.batch_size = cfg.TRAIN.BATCH_SIZE
    sets = {}
    for name in sorted(set(args.sets) | ({args.long_set} if args.long else set())):
        print(f"generating/reusing {args.videos} {name} videos in {cache} ...", flush=True)
        sets[name] = generate_videos(cache, args.videos, seconds=args.seconds, kind=name)

    rows = []
    for i, name in enumerate(args.sets):
        rows += _measure_set(args, name, sets[name], base_opts, seed=1000 * i)

    if rows:
        _print_table(args, cfg, rows)
    if args.long:
        print(f"\nlong run: {args.long} clips, {args.long_decoder}, {args.long_workers} workers ...", flush=True)
        print()
        print("\n".join(_long_run(args, sets[args.long_set], base_opts)))
    return 0


def _print_table(args, cfg, rows) -> None:
    d = cfg.DATA
    span = d.NUM_FRAMES * d.SAMPLING_RATE
    print()
    print(f"One process (loader num_workers 0), torch threads {args.threads}, batch {args.batch_size}; "
          f"clip = {d.NUM_FRAMES} frames at rate {d.SAMPLING_RATE} ({span} source frames), crop {d.TRAIN_CROP_SIZE}, "
          f"RandAugment {cfg.AUG.RAND_AUGMENT or 'off'}, erasing {cfg.AUG.RE_PROB}; {args.videos} videos x "
          f"{args.seconds:g} s per set (smooth: Kinetics-like, short side 240-320, GOP 2-4 s; high_entropy: "
          f"textured + noise, 256x340, GOP 150; 30 fps H.264); medians of {args.rounds} alternating rounds of "
          f"{args.clips} clips.")
    print()
    print("| file set | loader | decode-only clips/s (same spans) | pipeline clips/s | pipeline / decode-only | "
          "sequential / decode-only | CPU per clip, pipeline / decode-only | "
          "CLIPS_PER_DECODE 2 clips/s | 2 vs 1 | pipeline vs pytorchvideo |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    sys.exit(main())
