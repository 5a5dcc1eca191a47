"""GPU checks of the deployment path (``sfvideo.bench.gpu_export``): eager fp32 vs bf16 inference of
video_tiny, and its ONNX export in onnxruntime's CUDA provider. Without a CUDA device it says so
and exits 0 (nothing measured).

    python tools/gpu_export_check.py [--json gpu_export_check.json] [--iters 10] [--batches 1 32]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", default="gpu_export_check.json", help="where the figures are written")
    p.add_argument("--iters", type=int, default=10, help="timed calls per setting (median reported)")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 32], help="batch sizes")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from sfvideo.bench.gpu_export import gpu_export_checks
    from sfvideo.utils.io import atomic_write_text

    report = gpu_export_checks(args.batches, args.iters)
    if report is None:
        print("skipped: torch sees no CUDA device (nothing measured)")
        return 0
    atomic_write_text(Path(args.json), json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
