#!/usr/bin/env python
"""Write the embedded synthetic action dataset (H.264 mp4 files + "path label" lists). Same as ``sfvideo make-toy``; the options are in ``sfvideo/cli/make_toy.py`` (or ``--help``)."""

import sys

from sfvideo.cli.make_toy import main

if __name__ == "__main__":
    sys.exit(main())
