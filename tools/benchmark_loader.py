#!/usr/bin/env python
"""Benchmark the training data pipeline per decoder against its own decode-only rate and against
pytorchvideo's Kinetics loader. Same as ``sfvideo benchmark-loader``; the options are in
``sfvideo/cli/benchmark_loader.py`` (or ``--help``)."""

import sys

from sfvideo.cli.benchmark_loader import main

if __name__ == "__main__":
    sys.exit(main())
