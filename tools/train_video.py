#!/usr/bin/env python
"""Train a video SparseFormer (resumable; single process or torchrun). Same as ``sfvideo train``; the options are in ``sfvideo/cli/train.py`` (or ``--help``)."""

import sys

from sfvideo.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
