#!/usr/bin/env python
"""Whole-video timeline checks: window accuracy on a long video of toy segments and peak memory on a
10-minute video. The options are in ``sfvideo/cli/benchmark_timeline.py`` (or ``--help``)."""

import sys

from sfvideo.cli.benchmark_timeline import main

if __name__ == "__main__":
    sys.exit(main())
