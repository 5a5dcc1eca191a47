#!/usr/bin/env python
"""A browser app for a checkpoint. Same as ``sfvideo app``; the options are in ``sfvideo/cli/app.py`` (or ``--help``)."""

import sys

from sfvideo.cli.app import main

if __name__ == "__main__":
    sys.exit(main())
