"""The sfvideo demo (what ``make demo`` runs): on the CPU, in minutes.

    python tools/demo.py --out demo_output              # generate, train, test, predict, RoIs, curves
    python tools/demo.py --out demo_output --frames 1   # the same on one frame per clip (no motion)
    python tools/demo.py --out demo_output --ablation   # both, with a side-by-side per-class table

Steps: build the embedded toy dataset (8 classes told apart only by the direction of motion),
train configs/toy_tiny.yaml, run the multi-view test on the held-out videos, predict one video,
draw the token RoIs (initial vs final) and the training curves, print a per-class table.
Everything lands in --out; rerunning with the same settings reuses the dataset and the trained run.
"""

from __future__ import annotations

import sys
from typing import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from ..demo import main_cli

    return main_cli(argv, description=__doc__)


if __name__ == "__main__":
    sys.exit(main())
