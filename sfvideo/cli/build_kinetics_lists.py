"""``sfvideo build-kinetics-lists`` is ``sfvideo build-lists --format kinetics``: the same options,
the same files (``OUT/train.txt``, ``OUT/val.txt``, ``OUT/test.txt`` when labelled, ``OUT/classes.txt``).

    python tools/build_kinetics_lists.py --root /data/k400 --out-dir /data/k400

The official CSVs (``train.csv``, ``validate.csv``, ``test.csv``) are found in ``--root`` or two
levels below it; see ``sfvideo build-lists --help``.
"""

from __future__ import annotations

import sys

from .build_lists import main as build_lists_main


def main(argv=None) -> int:
    return build_lists_main(argv, fmt="kinetics")


if __name__ == "__main__":
    sys.exit(main())
