"""The moving-toy recipe trained from file lists and from shards served over loopback HTTP; prints
both multi-view top-1 and exits 1 when they differ by more than --tolerance points.

    python tools/make_toy_dataset.py --out demo_output/toy_data
    python tools/toy_shards_check.py --data demo_output/toy_data --out demo_output/toy_shards_check

Trailing KEY VALUE pairs override the config (toy_tiny.yaml, the demo's recipe).
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="demo_output/toy_data", help="the toy dataset (make_toy_dataset.py)")
    p.add_argument("--out", default="demo_output/toy_shards_check", help="runs, shards and the comparison")
    p.add_argument("--cfg", default="toy_tiny.yaml")
    p.add_argument("--max-count", type=int, default=240, help="samples per shard")
    p.add_argument("--tolerance", type=float, default=2.0, help="allowed |top-1 difference| in points")
    p.add_argument("opts", nargs=argparse.REMAINDER, metavar="KEY VALUE")
    args = p.parse_args(argv)
    from sfvideo.bench.toy_shards import lists_vs_shards
    from sfvideo.utils.io import atomic_write_text

    r = lists_vs_shards(args.data, args.out, args.cfg, args.opts, args.max_count)
    summary = {"lists_top1": r["lists"]["top1"], "shards_over_http_top1": r["shards"]["top1"],
               "difference": r["difference"], "tolerance": args.tolerance,
               "num_videos": [r["lists"]["num_videos"], r["shards"]["num_videos"]]}
    atomic_write_text(f"{args.out}/comparison.json", json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0 if abs(r["difference"]) <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
