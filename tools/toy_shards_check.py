#!/usr/bin/env python
"""The moving-toy recipe from file lists and from shards over loopback HTTP, top-1 compared. The options are in ``sfvideo/cli/toy_shards_check.py`` (or ``--help``)."""

import sys

from sfvideo.cli.toy_shards_check import main

if __name__ == "__main__":
    sys.exit(main())
