#!/usr/bin/env python
"""GPU checks of the deployment path (eager bf16 vs fp32, onnxruntime CUDA); run by
``tools/gpu_export_check.sh``. The options are in ``sfvideo/cli/gpu_export_check.py`` (or ``--help``)."""

import sys

from sfvideo.cli.gpu_export_check import main

if __name__ == "__main__":
    sys.exit(main())
