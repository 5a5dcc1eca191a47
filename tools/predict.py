#!/usr/bin/env python
"""Top-5 classes of one video file. Same as ``sfvideo predict``; the options are in ``sfvideo/cli/predict.py`` (or ``--help``)."""

import sys

from sfvideo.cli.predict import main

if __name__ == "__main__":
    sys.exit(main())
