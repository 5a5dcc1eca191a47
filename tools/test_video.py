#!/usr/bin/env python
"""Multi-view test of a video SparseFormer checkpoint. Same as ``sfvideo test``; the options are in ``sfvideo/cli/test.py`` (or ``--help``)."""

import sys

from sfvideo.cli.test import main

if __name__ == "__main__":
    sys.exit(main())
