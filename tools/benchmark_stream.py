#!/usr/bin/env python
"""Live-stream benchmark: ``sfvideo stream`` against a 320p 30 fps video served over loopback in
real time, per setting; or (--acceptance) its smoothed-label accuracy on glued toy segments. The
options are in ``sfvideo/cli/benchmark_stream.py`` (or ``--help``)."""

import sys

from sfvideo.cli.benchmark_stream import main

if __name__ == "__main__":
    sys.exit(main())
