#!/usr/bin/env python
"""Lists and ``classes.txt`` from the official Kinetics CSVs and a download. Same as ``sfvideo build-kinetics-lists``, itself ``sfvideo build-lists --format kinetics``; the options are in ``sfvideo/cli/build_lists.py`` (or ``--help``)."""

import sys

from sfvideo.cli.build_kinetics_lists import main

if __name__ == "__main__":
    sys.exit(main())
