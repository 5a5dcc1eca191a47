#!/usr/bin/env python
"""Benchmark sfvideo's video models against pytorchvideo's model zoo, or against the official code. Same as ``sfvideo benchmark``; the options are in ``sfvideo/cli/benchmark.py`` (or ``--help``)."""

import sys

from sfvideo.cli.benchmark import main

if __name__ == "__main__":
    sys.exit(main())
