"""Benchmark sfvideo's video models against pytorchvideo's model zoo, or against the official code.

Model table (default): GFLOPs per view (multiply-adds, one counter for all), parameters,
inference and training-step (forward + backward + AdamW) clips/s and peak memory, for sfvideo's
video_tiny/small/base (32 x 224^2) and pytorchvideo architectures built without weights at
their standard inputs: X3D-M (16 x 224^2), SlowFast-R50 8x8 (slow 8 + fast 32 frames, 224^2),
MViT-B 16x4 (16 x 224^2), Slow-R50 8x8 (8 x 224^2). All models are timed in one process with
their runs interleaved; compare them as ratios (on a shared machine absolute numbers drift).
Peak memory: on CPU each model runs once in a fresh process (peak RSS above the idle
interpreter); on CUDA max_memory_allocated above what was allocated before the model.

    python tools/benchmark.py                                  # all models, CPU, batch 1, 1 warmup + 2 iters
    python tools/benchmark.py --models video_tiny x3d_m --iters 5 --markdown bench.md
    python tools/benchmark.py --device cuda --batch 8 --iters 20 --amp bf16 --compile
    python tools/benchmark.py --quick --models video_test      # seconds; what the tests run
    python tools/benchmark.py --iters 1 --warmup 0 --no-memory # one call each: a rough pass on a busy CPU

Official mode: sfvideo's video_tiny vs the official MediaSparseFormer (SF-T, 8 replicates) on
identical weights and input (drop path off in both; outputs checked to agree), inference and
training-step ratios (official time / sfvideo time, > 1: sfvideo faster) at 8 and 32 frames
(batch 2, 224^2) in fp32, sfvideo bf16-autocast inference vs official fp32 inference, and the
argmax agreement of sfvideo bf16 vs fp32 on the official fixture clips. The official code is a
checkout of github.com/showlab/sparseformer outside this repository, and needs timm; the
fixture clips are tests/fixtures/official_sparseformer of a source checkout (--fixtures):

    PYTHONPATH=/tmp/bench_site python tools/benchmark.py --official /tmp/official

Parity mode: sfvideo against the official code's reference logits in the fixture files
(--fixtures, default tests/fixtures/official_sparseformer of a source checkout): library-layout
image weights, MediaSparseFormer video weights, image weights inflated to video, and a v1
training checkpoint with the library's and with v1 numerics. The largest |sfvideo - official|
logit per check; CPU, fp32, seconds, the same figures on every run of one machine:

    python tools/benchmark.py --parity --results results/official_parity.csv

--results FILE also writes the figures as data (``sfvideo.bench.results``: one record per row
with the command, the machine and the date); ``tools/results_tables.py`` makes the docs' tables
from such files.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

from sfvideo.bench import models as bench
from sfvideo.bench import zoo

DEFAULT_MODELS = list(zoo.SFVIDEO_MODELS) + list(zoo.ZOO_MODELS)
FIXTURES = Path("tests") / "fixtures" / "official_sparseformer"  # in a source checkout, from its root


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=None, metavar="NAME",
                   help=f"models to benchmark (default: {' '.join(DEFAULT_MODELS)}; also video_test, video_toy)")
    p.add_argument("--batch", type=int, default=None, help="clips per step (default 1; 2 with --official)")
    p.add_argument("--iters", type=int, default=2, help="timed calls per step (median reported)")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls per step first")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--amp", default="none", choices=["none", "bf16"], help="autocast dtype for the model table")
    p.add_argument("--compile", action="store_true", help="torch.compile the timed models (helps on GPU)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    p.add_argument("--frames", type=int, nargs="+", default=None,
                   help="frames of the sfvideo models' clip (default 32); several: one row per count")
    p.add_argument("--runtimes", nargs="+", default=["eager"], choices=list(bench.RUNTIMES),
                   help="runtimes of the sfvideo models' inference rows (default eager; zoo models: eager)")
    p.add_argument("--size", type=int, default=None,
                   help="crop size of the sfvideo models' clip and of --official (default 224)")
    p.add_argument("--quick", action="store_true",
                   help=f"sfvideo models at {zoo.QUICK_FRAMES} x {zoo.QUICK_SIZE}^2, "
                   "1 iteration, no warmup (tests)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    p.add_argument("--markdown", metavar="PATH", help="also write the table(s) to this Markdown file")
    p.add_argument("--official", metavar="DIR", help="compare video_tiny with the official code checked out in DIR")
    p.add_argument("--parity", action="store_true",
                   help="compare with the official code's reference logits in --fixtures (no timing)")
    p.add_argument("--official-frames", type=int, nargs="+", default=[8, 32], help="frame counts of --official")
    p.add_argument("--fixtures", metavar="DIR", default=None,
                   help=f"the official fixture weights, inputs and logits for --parity and --official's bf16 "
                        f"check (default: {FIXTURES} when run from a source checkout's root)")
    p.add_argument("--results", metavar="FILE", help="also write the figures to FILE (.csv or .json; replaced)")
    args = p.parse_args(argv)
    if args.parity and args.official:
        p.error("--parity and --official are two benchmarks: run them one at a time")
    if args.parity and not (Path(args.fixtures) if args.fixtures else FIXTURES).is_dir():
        p.error(f"--parity needs the fixture folder: {args.fixtures or FIXTURES} does not exist "
                "(run from a source checkout's root, or pass --fixtures DIR)")
    if args.models:
        unknown = sorted(set(args.models) - set(zoo.benchmark_model_names()))
        if unknown:
            p.error(f"unknown model(s) {unknown}; available: {' '.join(zoo.benchmark_model_names())}")
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            p.error("--device cuda but torch sees no CUDA device")
    if args.quick:
        args.iters, args.warmup = 1, 0
    if min(args.iters, args.batch or 1) < 1 or args.warmup < 0:
        p.error("--iters and --batch must be at least 1, --warmup at least 0")
    return args


def _fixtures(args) -> Path | None:
    """--fixtures, or the source checkout's fixtures when run from its root; None (said once) without."""
    if args.fixtures:
        return Path(args.fixtures)
    if (FIXTURES / "media_small_r2.pth").is_file():
        return FIXTURES
    print(f"no {FIXTURES} here: the bf16 fixture check is left out (pass --fixtures DIR)")
    return None


def _official(args, stamp: str, machine: str) -> tuple[str, list[dict]]:
    from sfvideo.bench.official import compare_with_official, format_official_table, official_records

    result = compare_with_official(args.official, _fixtures(args), frames=tuple(args.official_frames),
                                   batch=args.batch or 2, size=args.size or 224, iters=args.iters,
                                   warmup=args.warmup, device=args.device)
    header = (f"**sfvideo video_tiny vs official MediaSparseFormer (SF-T, 8 replicates)**, {stamp}, {machine}, "
              f"fp32 unless stated, {args.warmup} warmup + {args.iters} timed calls (median)")
    return format_official_table(result, header), official_records(result)


def _parity(args, stamp: str, machine: str) -> tuple[str, list[dict]]:
    from sfvideo.bench.parity import parity_records
    from sfvideo.bench.results import render_table

    records = parity_records(args.fixtures or FIXTURES)
    header = f"**sfvideo vs the official code's reference logits** ({args.fixtures or FIXTURES}), {stamp}, {machine}"
    return f"{header}\n\n{render_table(records, 'parity')}", records


def _models(args, stamp: str, machine: str) -> tuple[str, list[dict]]:
    batch = args.batch or 1
    rows = bench.benchmark_models(args.models or DEFAULT_MODELS, batch=batch, iters=args.iters,
                                  warmup=args.warmup, device=args.device, amp=args.amp, compile=args.compile,
                                  frames=args.frames, size=args.size, quick=args.quick,
                                  memory=not args.no_memory, threads=args.threads, runtimes=tuple(args.runtimes))
    header = (f"**Model benchmark**, {stamp}, {machine}, batch {batch}, amp {args.amp}"
              f"{', torch.compile' if args.compile else ''}, "
              f"{args.warmup} warmup + {args.iters} timed calls (median)")
    return bench.format_benchmark_table(rows, header), bench.model_records(rows)


def main(argv=None) -> None:
    args = parse_args(argv)
    import torch

    from sfvideo.bench.results import command_line, machine_description, machine_info, save_run

    if args.threads:
        torch.set_num_threads(args.threads)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    machine = machine_description(machine_info(args.device))
    run = _official if args.official else _parity if args.parity else _models
    table, records = run(args, stamp, machine)
    print()
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")
        print(f"\nwritten to {args.markdown}")
    if args.results:
        command = command_line("sfvideo benchmark", sys.argv[1:] if argv is None else argv)
        kind = "official" if args.official else "parity" if args.parity else "models"
        path = save_run(args.results, records, kind, command, args.device)
        print(f"results written to {path}")


if __name__ == "__main__":
    main()
