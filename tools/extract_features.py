#!/usr/bin/env python
"""Pooled token embeddings per video (.npy + index.csv). Same as ``sfvideo extract-features``; the options are in ``sfvideo/cli/extract_features.py`` (or ``--help``)."""

import sys

from sfvideo.cli.extract_features import main

if __name__ == "__main__":
    sys.exit(main())
