#!/usr/bin/env python
"""Actions on a live stream as it plays. Same as ``sfvideo stream``; the options are in ``sfvideo/cli/stream.py`` (or ``--help``)."""

import sys

from sfvideo.cli.stream import main

if __name__ == "__main__":
    sys.exit(main())
