"""Write the benchmark tables of the docs from the results files (``sfvideo.bench.results``).

In README.md and every Markdown file under docs/, the text between

    <!-- results:NAME -->
    <!-- /results:NAME -->

is replaced by the table made from results/NAME.csv (or results/NAME.json) and a line saying
when, on which machine and with which command the figures were measured.

    python tools/results_tables.py            # rewrite the tables that disagree with their data
    python tools/results_tables.py --check    # only report them: exit 1 naming each file
    python tools/results_tables.py --only flops official_parity   # just these tables

Exit status: 0 when every table agrees with its data (or has been rewritten to), 1 when --check
finds one that does not, or a marker or results file is unusable (the file and line named).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default=".", help="the checkout whose README.md and docs/ are written (default: here)")
    p.add_argument("--results-dir", default=None, help="folder of the results files (default: ROOT/results)")
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 if a table disagrees with its data")
    p.add_argument("--only", nargs="+", metavar="NAME",
                   help="only the tables of these names (results files' stems); the others are left as they are")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from sfvideo.bench.results import ResultsError, markdown_files, update_tables

    try:
        stale = update_tables(args.root, args.results_dir, check=args.check, names=args.only)
    except ResultsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    results_dir = args.results_dir or str(Path(args.root) / "results")
    for path, names in stale:
        tables = ", ".join(f"results:{n}" for n in names)
        if args.check:
            print(f"{path}: {tables} disagree with their data in {results_dir} "
                  "(run python tools/results_tables.py)", file=sys.stderr)
        else:
            print(f"{path}: rewrote {tables}")
    if not stale:
        print(f"every results table in {len(markdown_files(args.root))} Markdown files agrees with its data")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
