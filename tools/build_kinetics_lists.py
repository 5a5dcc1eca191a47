#!/usr/bin/env python
"""Turn the official Kinetics CSVs plus a local download into ``path label`` lists. Same as ``sfvideo build-kinetics-lists``; the options are in ``sfvideo/cli/build_kinetics_lists.py`` (or ``--help``)."""

import sys

from sfvideo.cli.build_kinetics_lists import main

if __name__ == "__main__":
    sys.exit(main())
