#!/usr/bin/env python
"""Re-encode a Kinetics download to a fixed short side (H.264 mp4, video only), in parallel. Same as ``sfvideo prepare-kinetics``; the options are in ``sfvideo/cli/prepare_kinetics.py`` (or ``--help``)."""

import sys

from sfvideo.cli.prepare_kinetics import main

if __name__ == "__main__":
    sys.exit(main())
