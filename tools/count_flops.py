#!/usr/bin/env python
"""Print GFLOPs per view (multiply-adds, as the paper and fvcore) and parameters. Same as ``sfvideo flops``; the options are in ``sfvideo/cli/flops.py`` (or ``--help``)."""

import sys

from sfvideo.cli.flops import main

if __name__ == "__main__":
    sys.exit(main())
