#!/usr/bin/env python
"""Benchmark the data loaders on Kinetics-like synthetic videos and print a Markdown table.

Compares sfvideo's training pipeline (decord and PyAV) with pytorchvideo's Kinetics loader
(PyAV, random short-side scale + random 224 crop + flip, 32 frames at rate 2) on the same files
and worker counts, reports sfvideo's test pipeline, the decode ceiling (frames/s of a plain
full decode) and the fraction of it each loader reaches, and with ``--long N`` the memory (RSS
of the main process plus workers) over a long run.

Example::

    python tools/benchmark_loader.py --videos 8 --clips 32 --workers 0 1 2 --long 1000

Trailing ``KEY VALUE`` pairs override the config used for sfvideo's pipelines
(default: the defaults tree, i.e. 32 frames, rate 2, crop 224, RandAugment, random erasing).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))



def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache-dir", default=str(Path(tempfile.gettempdir()) / "sfvideo_bench"),
                   help="where the synthetic videos are generated (reused across runs)")
    p.add_argument("--videos", type=int, default=8, help="number of synthetic videos")
    p.add_argument("--seconds", type=float, default=10.0, help="length of each video")
    p.add_argument("--clips", type=int, default=32, help="training clips timed per measurement")
    p.add_argument("--test-videos", type=int, default=4, help="videos timed per test-pipeline measurement")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--decoders", nargs="+", default=["decord", "pyav"], choices=["decord", "pyav"])
    p.add_argument("--no-pytorchvideo", action="store_true", help="skip pytorchvideo's loader")
    p.add_argument("--no-test", action="store_true", help="skip the test pipeline")
    p.add_argument("--long", type=int, default=0, metavar="N", help="also run N training clips and report memory")
    p.add_argument("--long-workers", type=int, default=2, help="workers for the --long run")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    p.add_argument("--cfg", default=None, help="config for sfvideo's pipelines (default: built-in defaults)")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    return p.parse_args(argv)


# ----------------------------------------------------------------------------- pytorchvideo
def _pytorchvideo_loader(list_file: str, cfg, batch_size: int, workers: int):
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
    clip_seconds = d.NUM_FRAMES * d.SAMPLING_RATE / d.TARGET_FPS
    ds = Kinetics(list_file, clip_sampler=make_clip_sampler("random", clip_seconds),
                  video_sampler=RandomSampler, transform=transform, decode_audio=False, decoder="pyav")
    return DataLoader(ds, batch_size=batch_size, num_workers=workers,
                      collate_fn=lambda b: {"video": torch.stack([x["video"] for x in b])})


# ----------------------------------------------------------------------------- sfvideo
def _sfvideo_train_loader(cfg, batch_size: int, workers: int, num_clips: int):
    from torch.utils.data import DataLoader, RandomSampler

    from sfvideo.data import build_dataset

    ds = build_dataset(cfg, "train")
    sampler = RandomSampler(ds, replacement=True, num_samples=num_clips + 2 * batch_size)
    return DataLoader(ds, batch_size=batch_size, num_workers=workers, sampler=sampler)


def _sfvideo_test_loader(cfg, workers: int):
    from torch.utils.data import DataLoader

    from sfvideo.data import build_dataset, collate

    return DataLoader(build_dataset(cfg, "test"), batch_size=1, num_workers=workers, collate_fn=collate)


def _row(pipeline, decoder, workers, clips_per_s, frames_per_clip, ceiling, unit="clips/s", ref=None):
    src_fps = clips_per_s * frames_per_clip
    frac = src_fps / (ceiling * max(workers, 1)) if ceiling else float("nan")
    speedup = f"{clips_per_s / ref:.2f}x" if ref else ""
    return f"| {pipeline} | {decoder} | {workers} | {clips_per_s:.2f} {unit} | {src_fps:.0f} | {100 * frac:.0f}% | {speedup} |"


def main(argv=None) -> int:
    args = parse_args(argv)
    # imported after parsing so that --help answers without loading torch
    import torch

    from sfvideo.bench.loader import RssSampler, decode_ceiling, generate_videos, time_batches, tree_rss_mb
    from sfvideo.config import load_config

    torch.set_num_threads(args.threads)
    cache = Path(args.cache_dir)
    print(f"generating/reusing {args.videos} videos in {cache} ...", flush=True)
    paths = generate_videos(cache, args.videos, seconds=args.seconds)
    repeats = math.ceil((args.clips + 4 * args.batch_size) / len(paths)) + 1
    list_file = cache / "bench_list.txt"
    list_file.write_text("".join(f"{p} {i % 400}\n" for i, p in enumerate(paths)))
    pv_list = cache / "bench_list_repeated.txt"
    pv_list.write_text("".join(f"{p} {i % 400}\n" for _ in range(repeats) for i, p in enumerate(paths)))
    test_list = cache / "bench_test_list.txt"
    test_list.write_text("".join(f"{p} {i % 400}\n" for i, p in enumerate(paths[: max(args.test_videos, 2)])) * 4)

    base_opts = ["DATA.PATH_TO_DATA_DIR", str(cache), "DATA.TRAIN_LIST", str(list_file),
                 "DATA.TEST_LIST", str(test_list), "DATA.CLASS_NAMES", "", "OUTPUT_DIR", str(cache / "out")]
    cfgs = {dec: load_config(args.cfg, base_opts + ["DATA.DECODER", dec] + list(args.opts)) for dec in args.decoders}
    # the same augmentation as pytorchvideo's transform: short-side jitter + crop + flip only
    basic = ["AUG.RAND_AUGMENT", "", "AUG.RE_PROB", "0.0"]
    basic_cfgs = {dec: load_config(args.cfg, base_opts + ["DATA.DECODER", dec] + list(args.opts) + basic)
                  for dec in args.decoders}
    any_cfg = next(iter(cfgs.values()))
    span = any_cfg.DATA.NUM_FRAMES * any_cfg.DATA.SAMPLING_RATE  # source frames per clip at 30 fps
    views = any_cfg.TEST.NUM_ENSEMBLE_VIEWS * any_cfg.TEST.NUM_SPATIAL_CROPS

    print("measuring the decode ceiling ...", flush=True)
    ceilings = {dec: decode_ceiling(paths[:2], dec) for dec in args.decoders}

    rows = []
    for w in args.workers:
        ref = None
        if not args.no_pytorchvideo:
            print(f"pytorchvideo train, {w} workers ...", flush=True)
            tp = time_batches(_pytorchvideo_loader(str(pv_list), any_cfg, args.batch_size, w), args.clips)
            ref = tp.clips_per_s
            rows.append(_row("pytorchvideo Kinetics (train)", "pyav", w, ref, span, ceilings.get("pyav", 0.0)))
        for dec in args.decoders:
            for name, cfg in (("scale+crop+flip, as pytorchvideo", basic_cfgs[dec]),
                              ("config aug: + RandAugment, erasing", cfgs[dec])):
                print(f"sfvideo train ({name}), {dec}, {w} workers ...", flush=True)
                tp = time_batches(_sfvideo_train_loader(cfg, args.batch_size, w, args.clips), args.clips)
                rows.append(_row(f"sfvideo train ({name})", dec, w, tp.clips_per_s, span, ceilings[dec], ref=ref))
        if not args.no_test:
            for dec, cfg in cfgs.items():
                print(f"sfvideo test, {dec}, {w} workers ...", flush=True)
                tp = time_batches(_sfvideo_test_loader(cfg, w), args.test_videos)
                # a test item decodes all its clips: report views/s; source frames = clips x span
                clips_per_video = cfg.TEST.NUM_ENSEMBLE_VIEWS
                rows.append(_row(f"sfvideo test ({views} views/video)", dec, w, tp.clips_per_s * views,
                                 span * clips_per_video / views, ceilings[dec], unit="views/s"))

    print()
    print(f"Videos: {len(paths)} x {args.seconds:g} s, 30 fps, H.264, short side 240-320, keyframes every 2-4 s; "
          f"clip = {any_cfg.DATA.NUM_FRAMES} frames at rate {any_cfg.DATA.SAMPLING_RATE} ({span} source frames), "
          f"crop {any_cfg.DATA.TRAIN_CROP_SIZE}, batch {args.batch_size}, torch threads {args.threads}.")
    print()
    print("| pipeline | decoder | workers | throughput | source frames/s | of decode ceiling x max(workers,1) | vs pytorchvideo |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print()
    print("Decode ceiling (plain sequential decode to RGB, one process): "
          + ", ".join(f"{dec} {fps:.0f} frames/s" for dec, fps in ceilings.items()))

    if args.long:
        dec = args.decoders[0]
        print(f"\nlong run: {args.long} clips, {dec}, {args.long_workers} workers ...", flush=True)
        loader = _sfvideo_train_loader(cfgs[dec], args.batch_size, args.long_workers, args.long)
        trace: list[tuple[int, float, float]] = []  # (clips, main RSS, main + workers RSS) after each batch

        def on_clips(n: int) -> None:
            trace.append((n, tree_rss_mb(include_children=False), tree_rss_mb()))

        with RssSampler() as rss:
            tp = time_batches(loader, args.long, on_clips)

        def window(lo: float, hi: float, col: int) -> float:
            # median over a window of the run: a single sample depends on how many batches are in flight
            vals = [row[col] for row in trace if lo * args.long <= row[0] <= hi * args.long]
            return statistics.median(vals) if vals else float("nan")

        print()
        print("| long run | clips | clips/s | RSS main+workers, 5-15% of run (MiB) | 45-55% | 90-100% | peak | growth | main only 5-15% | main 90-100% |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        first, mid, last = window(0.05, 0.15, 2), window(0.45, 0.55, 2), window(0.9, 1.0, 2)
        print(f"| sfvideo train {dec}, {args.long_workers} workers | {tp.clips} | {tp.clips_per_s:.2f} | {first:.0f} | "
              f"{mid:.0f} | {last:.0f} | {rss.peak:.0f} | {last - first:+.0f} MiB | {window(0.05, 0.15, 1):.0f} | "
              f"{window(0.9, 1.0, 1):.0f} |")
        print("(RSS counts shared pages once per process, so batches in flight are counted in the worker and the main process.)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
