#!/usr/bin/env python
"""Whole-video timeline checks: per-window accuracy on a long video of toy segments through a
trained toy model, and peak memory on a 10-minute 320p video. See ``sfvideo/bench/timeline.py``.

    python tools/benchmark_timeline.py --checkpoint /work/demo_runs/seed0/checkpoints/best.pth \\
        --toy-data /work/demo_runs/toy_data --work /tmp/timeline_bench [--minutes 10] [--bound-mb 1500]
"""

import sys

from sfvideo.bench.timeline_cli import main

if __name__ == "__main__":
    sys.exit(main())
