#!/usr/bin/env python
"""Inflate an ImageNet (image) SparseFormer checkpoint into the video model of a config. Same as ``sfvideo inflate``; the options are in ``sfvideo/cli/inflate.py`` (or ``--help``)."""

import sys

from sfvideo.cli.inflate import main

if __name__ == "__main__":
    sys.exit(main())
