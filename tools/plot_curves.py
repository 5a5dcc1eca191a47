#!/usr/bin/env python
"""Plot training curves (loss, accuracy, learning rate per epoch) from a JSON-lines metrics log. Same as ``sfvideo plot-curves``; the options are in ``sfvideo/cli/plot_curves.py`` (or ``--help``)."""

import sys

from sfvideo.cli.plot_curves import main

if __name__ == "__main__":
    sys.exit(main())
