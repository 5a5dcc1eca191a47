#!/usr/bin/env python
"""Write (or, with --check, verify) the docs' benchmark tables from the files in results/. The
options are in ``sfvideo/cli/results_tables.py`` (or ``--help``)."""

import sys

from sfvideo.cli.results_tables import main

if __name__ == "__main__":
    sys.exit(main())
