"""Does the toy recipe hold on a small data set with no option changed? (the check of SOLVER.MIN_STEPS)

    python tools/benchmark_small_data.py --out small_data_bench --results results/small_data.csv

Makes a toy data set with --train-per-class training videos a class (20: 160 clips), trains the
recipe (--cfg, toy_tiny.yaml) as shipped and --longer times as long, each with --seeds training
seeds (RNG_SEED 0, 1, ...; the data set stays the same), tests every run's final weights on the
held-out videos, and prints a table and whether the recipe's mean top-1 over the seeds is within
--max-gap points of the longer run's (exit 1 when not). On 160 clips one run's top-1 moves by
several points with the seed alone: a single pair of runs cannot settle a 5-point bar. About 40
minutes a seed on two CPU cores; the runs resume when the command is run again with the same
--out. Trailing KEY VALUE pairs override every run's config (for a quick smoke test with a tiny
model; the measurement itself has none).
"""

from __future__ import annotations

import argparse
import sys

from .args import CommandParser, non_negative_float, positive_int, require_writable_folder


def build_parser() -> argparse.ArgumentParser:
    p = CommandParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="small_data_bench", help="folder for the data set and both runs "
                                                             "(default ./small_data_bench)")
    p.add_argument("--cfg", default="toy_tiny.yaml", help="the recipe (default toy_tiny.yaml)")
    p.add_argument("--train-per-class", type=positive_int, default=20, help="training videos a class (default 20)")
    p.add_argument("--val-per-class", type=positive_int, help="held-out videos a class (default: the toy set's 25)")
    p.add_argument("--video-size", type=positive_int, help="frame size in pixels (default: the toy set's 112)")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the toy data set (default 0)")
    p.add_argument("--longer", type=positive_int, default=4, help="how many times as long the reference run "
                                                                  "trains (default 4)")
    p.add_argument("--seeds", type=positive_int, default=3, help="training seeds each run is trained with: "
                                                                 "RNG_SEED 0 to N-1 (default 3)")
    p.add_argument("--max-gap", type=non_negative_float, default=5.0,
                   help="top-1 points the recipe's mean may fall behind the longer run's (default 5)")
    p.add_argument("--results", metavar="FILE", help="also write the records to FILE (.csv or .json)")
    p.add_argument("opts", nargs=argparse.REMAINDER, metavar="KEY VALUE", help="config overrides for both runs")
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    require_writable_folder(parser, args.out, "--out")
    from pathlib import Path

    from sfvideo.config import ConfigError, load_config

    try:
        load_config(args.cfg, list(args.opts) + ["MODEL.NUM_CLASSES", "8"])
    except ConfigError as err:
        parser.error(str(err))
    from sfvideo.bench.results import command_line, render_table, save_run
    from sfvideo.bench.small_data import SmallDataOptions, run_small_data, verdict

    options = SmallDataOptions(Path(args.out), args.cfg, args.train_per_class, args.val_per_class, args.video_size,
                               args.data_seed, args.longer, tuple(range(args.seeds)), tuple(args.opts))
    from sfvideo.bench.small_data import RunStopped
    from sfvideo.cli.args import fail
    from sfvideo.engine.train import TRAINING_ERRORS

    try:
        records = run_small_data(options)
    except RunStopped as err:
        fail(str(err), err.exit_status)
    except TRAINING_ERRORS as err:
        fail(str(err))
    ok, line = verdict(records, args.max_gap)
    print(f"\n{render_table(records, 'small_data')}\n\n{line}")
    if args.results:
        command = command_line("python tools/benchmark_small_data.py", sys.argv[1:] if argv is None else argv)
        print(f"results written to {save_run(args.results, records, 'small_data', command)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
