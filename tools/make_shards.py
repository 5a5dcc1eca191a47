#!/usr/bin/env python
"""Write a video list as WebDataset shards and their index. Same as ``sfvideo make-shards``; the options are in ``sfvideo/cli/make_shards.py`` (or ``--help``)."""

import sys

from sfvideo.cli.make_shards import main

if __name__ == "__main__":
    sys.exit(main())
