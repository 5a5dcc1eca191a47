#!/usr/bin/env python
"""Draw each token's spatiotemporal RoI and sampling points over a video clip. Same as ``sfvideo visualize``; the options are in ``sfvideo/cli/visualize.py`` (or ``--help``)."""

import sys

from sfvideo.cli.visualize import main

if __name__ == "__main__":
    sys.exit(main())
