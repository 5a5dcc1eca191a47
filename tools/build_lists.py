#!/usr/bin/env python
"""Write ``path label`` lists and ``classes.txt`` for a folder of videos or a benchmark download. Same as ``sfvideo build-lists``; the options are in ``sfvideo/cli/build_lists.py`` (or ``--help``)."""

import sys

from sfvideo.cli.build_lists import main

if __name__ == "__main__":
    sys.exit(main())
