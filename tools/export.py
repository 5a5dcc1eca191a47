#!/usr/bin/env python
"""Export a model to ONNX or torch.export with a parity check. Same as ``sfvideo export``; the options are in ``sfvideo/cli/export.py`` (or ``--help``)."""

import sys

from sfvideo.cli.export import main

if __name__ == "__main__":
    sys.exit(main())
