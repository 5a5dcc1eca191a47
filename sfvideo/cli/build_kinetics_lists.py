"""Turn the official Kinetics CSVs plus a local download into ``path label`` lists.

Example::

    python tools/build_kinetics_lists.py --csv kinetics400/train.csv kinetics400/validate.csv \\
        --out-dir data_lists/k400 --cfg k400_tiny.yaml DATA.PATH_TO_DATA_DIR /data/k400

Writes ``{out-dir}/{csv stem}.txt`` and, when some rows have no video, ``{csv stem}_missing.txt``.
An alias kept for existing scripts: ``tools/build_lists.py --format kinetics --root DIR --out-dir OUT``
reads the same CSVs (found below the root) into ``train.txt``/``val.txt`` and ``classes.txt``.
The data directory and class names come from the config (``DATA.PATH_TO_DATA_DIR``,
``DATA.CLASS_NAMES``) unless ``--data-dir`` / ``--class-names`` are given.
"""

from __future__ import annotations

import argparse
import sys

from .args import config_from_args, config_parser  # no torch: --help stays fast


def build_parser() -> argparse.ArgumentParser:
    p = config_parser(__doc__, cfg_required=False)
    p.add_argument("--csv", nargs="+", required=True, help="official Kinetics CSV files")
    p.add_argument("--out-dir", required=True, help="where the lists and missing reports go")
    p.add_argument("--data-dir", help="root of the download (default: DATA.PATH_TO_DATA_DIR)")
    p.add_argument("--class-names", help="class-name file (default: DATA.CLASS_NAMES)")
    p.add_argument("--absolute", action="store_true", help="write absolute paths")
    return p


def parse_args(argv=None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    cfg = config_from_args(parser, args)
    # imported after parsing so that --help answers without loading torch
    from sfvideo.data.lists import build_lists_from_csvs, read_class_names, resolve_path

    data_dir = args.data_dir or cfg.DATA.PATH_TO_DATA_DIR
    names_file = args.class_names or str(resolve_path(cfg.DATA.CLASS_NAMES, data_dir, repo_fallback=True))
    summaries = build_lists_from_csvs(args.csv, data_dir, read_class_names(names_file), args.out_dir, args.absolute)
    for s in summaries:
        line = f"{s.csv}: {s.num_found} videos -> {s.list_file}"
        if s.num_missing:
            line += f"; {s.num_missing} missing -> {s.missing_report}"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
