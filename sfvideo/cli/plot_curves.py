"""Plot training curves (loss, accuracy, learning rate per epoch) from a JSON-lines metrics log.

    python tools/plot_curves.py OUTPUT_DIR/metrics.jsonl --out curves.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("metrics", help="JSON-lines log, one object per epoch")
    parser.add_argument("--out", default="", help="PNG to write (default: next to the log, curves.png)")
    parser.add_argument("--title", default="", help="figure title (default: the log's path)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    metrics = Path(args.metrics)
    if not metrics.is_file():
        print(f"error: metrics log {metrics} not found", file=sys.stderr)
        return 2
    from sfvideo.viz.curves import plot_training_curves

    try:
        out = plot_training_curves(metrics, args.out or metrics.with_name("curves.png"), args.title)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
