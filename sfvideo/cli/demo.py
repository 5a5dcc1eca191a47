"""The sfvideo demo (what ``make demo`` runs): on the CPU, in minutes.

    python tools/demo.py --out demo_output              # generate, train, test, predict, RoIs, curves
    python tools/demo.py --out demo_output --frames 1   # the same on one frame per clip (no motion)
    python tools/demo.py --out demo_output --ablation   # both, with a side-by-side per-class table
    python tools/demo.py --seeds 0 1 2 --results results/demo.csv   # one run per training seed, as data

Steps: build the embedded toy dataset (8 classes told apart only by the direction of motion),
train configs/toy_tiny.yaml, run the multi-view test on the held-out videos, predict one video,
draw the token RoIs (initial vs final) and the training curves, print a per-class table.
Everything lands in --out; rerunning with the same settings reuses the dataset and the trained run.

--results FILE writes each run's held-out video top-1, top-5, mean class accuracy and per-class
accuracy (percent), with its seed and frames, as one record (``sfvideo.bench.results``: .csv or
.json, replaced, with the command, the machine and the date); ``tools/results_tables.py`` makes
the docs' tables from it.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .args import add_toy_size_arguments, require_writable_folder


def build_parser() -> argparse.ArgumentParser:
    """The demo's options; each one left out keeps ``sfvideo.demo.DemoOptions``' default."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, argument_default=argparse.SUPPRESS,
        epilog="Trailing KEY VALUE pairs override the config, e.g. SOLVER.BASE_LR 1e-3.")
    parser.add_argument("--out", default="demo_output", help="output folder (default demo_output)")
    parser.add_argument("--cfg", dest="cfg_file", metavar="CFG", help="config (default toy_tiny.yaml)")
    parser.add_argument("--frames", type=int, help="frames per clip (default: the config's; 1 = appearance-only control)")
    parser.add_argument("--ablation", action="store_true", default=False,
                        help="run the config and the 1-frame control, and print them side by side")
    parser.add_argument("--epochs", type=int, help="SOLVER.MAX_EPOCH (default: the config's)")
    parser.add_argument("--arch", help="MODEL.ARCH (default: the config's)")
    parser.add_argument("--crop-size", type=int, help="train/test crop (default: the config's)")
    parser.add_argument("--seed", type=int, help="RNG_SEED for training (default: the config's)")
    parser.add_argument("--seeds", type=int, nargs="+", metavar="N",
                        help="one run per training seed, in seed<N>/ under --out, then their table side by side")
    parser.add_argument("--data-seed", type=int, help="toy dataset seed (default 0)")
    add_toy_size_arguments(parser, held_out="held-out")
    parser.add_argument("--video-size", type=int, help="toy frame side in pixels (default 112)")
    parser.add_argument("--batch-size", type=int, help="train and test batch size")
    parser.add_argument("--workers", dest="num_workers", metavar="N", type=int, help="DATA.NUM_WORKERS")
    parser.add_argument("--run-name", help="run folder name under --out (default run / run_1frame)")
    parser.add_argument("--results", metavar="FILE", help="also write the runs' accuracies to FILE (.csv or .json)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, default=[], metavar="KEY VALUE", help="config overrides")
    return parser


def _check_modes(parser: argparse.ArgumentParser, args: dict) -> None:
    """--ablation and --seeds choose the run folders themselves; each excludes what would clash."""
    if len(args["opts"]) % 2:
        parser.error(f"config overrides come in KEY VALUE pairs, got {args['opts']}")
    if args.get("ablation") and ("frames" in args or "run_name" in args or "seeds" in args):
        parser.error("--ablation runs both the config's frames and 1 frame, in run/ and run_1frame/: "
                     "leave out --frames, --run-name and --seeds")
    if "seeds" in args and ("seed" in args or "run_name" in args):
        parser.error("--seeds runs one training per seed, in seed<N>/: leave out --seed and --run-name")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = vars(parser.parse_args(argv))
    _check_modes(parser, args)
    out, ablation, seeds, results = args.pop("out"), args.pop("ablation"), args.pop("seeds", None), \
        args.pop("results", None)
    require_writable_folder(parser, out, "--out")
    from sfvideo.config import ConfigError
    from sfvideo.demo import DemoOptions, demo_records, run_ablation, run_demo, run_seeds

    options = DemoOptions(**args)
    try:
        if seeds:
            runs = run_seeds(out, seeds, options)
        else:
            runs = list(run_ablation(out, options)) if ablation else [run_demo(out, options)]
    except (ConfigError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if results:
        from sfvideo.bench.results import command_line, save_run

        command = command_line("sfvideo demo", sys.argv[1:] if argv is None else argv)
        print(f"results written to {save_run(results, demo_records(runs), 'demo', command)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
