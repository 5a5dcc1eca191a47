"""Write ``path label`` lists and ``classes.txt`` for a folder of videos or a benchmark download.

    python tools/build_lists.py --format folder --root my_videos --out-dir my_videos --val-fraction 0.2
    python tools/build_lists.py --format ucf101 --root /data/ucf101 --out-dir /data/ucf101 --split 1

Formats and the layouts of --root (the download as it unpacks):
  folder    ROOT/<class>/<video>, or ROOT/train/<class>/... and ROOT/val/<class>/...
  ucf101    ROOT/UCF-101/<Class>/v_*.avi + ROOT/ucfTrainTestlist/{classInd,trainlist0N,testlist0N}.txt
  hmdb51    ROOT/<any>/<class>/*.avi + <class>_test_splitN.txt anywhere below ROOT
  ssv2      ROOT/20bn-something-something-v2/<id>.webm + ROOT/labels/{labels,train,validation,test}.json
  kinetics  official CSVs (train.csv, validate.csv, test.csv) in ROOT or two levels below; videos per class or flat

Writes OUT/train.txt, OUT/val.txt, OUT/test.txt (those the format has) with paths relative to
ROOT (set DATA.PATH_TO_DATA_DIR to ROOT), and OUT/classes.txt; nothing is written on an error.
Prints the classes, videos per split, files listed but missing and files present but unlisted,
and how many optimiser steps the recipe (--cfg; by default the format's) takes on the training list.
"""

from __future__ import annotations

import argparse
import sys

from .args import CommandParser, require_writable_folder

FORMATS = ("folder", "ucf101", "hmdb51", "ssv2", "kinetics")  # sfvideo.data.formats.FORMATS (no import: fast --help)
# The recipe each format's lists are for (configs/), whose optimiser steps the summary counts.
RECIPES = {"folder": "finetune_folder_tiny.yaml", "ucf101": "ucf101_tiny.yaml", "hmdb51": "hmdb51_tiny.yaml",
           "ssv2": "ssv2_tiny.yaml", "kinetics": "k400_tiny.yaml"}


def build_parser(fmt: str | None = None) -> argparse.ArgumentParser:
    """The options; with ``fmt`` the format is fixed (an alias such as ``build-kinetics-lists``)."""
    description = __doc__ if fmt is None else f"The same as 'build-lists --format {fmt}'.\n\n{__doc__}"
    p = CommandParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    if fmt is None:
        p.add_argument("--format", required=True, choices=FORMATS, help="layout of --root")
    else:
        p.set_defaults(format=fmt)
    p.add_argument("--root", required=True, help="the dataset's root folder (list paths are relative to it)")
    p.add_argument("--out-dir", required=True, help="where train.txt, val.txt, test.txt and classes.txt go")
    p.add_argument("--split", type=int, default=1, choices=(1, 2, 3),
                   help="official split of ucf101/hmdb51 (default 1)")
    p.add_argument("--val-fraction", type=float, default=None,
                   help="folder format without train/ and val/ folders: fraction of each class held out for "
                        "val (default 0.2; 0 writes no val list)")
    p.add_argument("--seed", type=int, default=0, help="seed of the held-out choice (default 0)")
    p.add_argument("--class-names", help="kinetics: a class-name file fixing the label order "
                                         "(default: the sorted labels of train.csv)")
    p.add_argument("--absolute", action="store_true", help="write absolute paths instead of paths relative to --root")
    p.add_argument("--cfg", help="the recipe the lists are for: the summary says how many optimiser steps it takes "
                                 "on them (default: finetune_folder_tiny.yaml for folders, <dataset>_tiny.yaml, "
                                 "k400_tiny.yaml for kinetics)")
    return p


def _recipe(parser: argparse.ArgumentParser, name: str):
    from sfvideo.config import ConfigError, load_config

    try:
        return load_config(name, ["MODEL.NUM_CLASSES", "1"])  # the steps do not depend on the classes
    except ConfigError as err:
        parser.error(f"--cfg {name}: {err}")


def _steps_summary(recipe_name: str, recipe, built) -> str:
    from sfvideo.engine.plan import epoch_steps, steps_line

    clips = len(built.splits.get("train", []))
    return f"  training with {recipe_name}: {steps_line(recipe, epoch_steps(recipe, clips))} on one process"


def main(argv=None, fmt: str | None = None) -> int:
    """Run the command; ``fmt`` fixes the format (the ``--format`` option is then absent)."""
    parser = build_parser(fmt)
    args = parser.parse_args(argv)
    require_writable_folder(parser, args.out_dir, "--out-dir")
    recipe_name = args.cfg or RECIPES[args.format]
    recipe = _recipe(parser, recipe_name)
    from sfvideo.data.formats import build_lists, summary, write_lists
    from sfvideo.data.lists import ListFormatError

    try:
        built = build_lists(args.format, args.root, split=args.split, val_fraction=args.val_fraction,
                            seed=args.seed, class_names=args.class_names)
        written = write_lists(built, args.out_dir, absolute=args.absolute)
    except (ListFormatError, ValueError, OSError) as err:  # OSError: a full disk while writing
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(summary(built))
    if "train" in built.splits:
        print(_steps_summary(recipe_name, recipe, built))
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
