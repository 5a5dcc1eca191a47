#!/usr/bin/env python
"""Does the toy recipe hold on a small data set with no option changed? The options are in
``sfvideo/cli/benchmark_small_data.py`` (or ``--help``)."""

import sys

from sfvideo.cli.benchmark_small_data import main

if __name__ == "__main__":
    sys.exit(main())
