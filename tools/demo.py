#!/usr/bin/env python
"""The sfvideo demo (what ``make demo`` runs): on the CPU, in minutes. Same as ``sfvideo demo``; the options are in ``sfvideo/cli/demo.py`` (or ``--help``)."""

import sys

from sfvideo.cli.demo import main

if __name__ == "__main__":
    sys.exit(main())
