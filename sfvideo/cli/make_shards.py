"""Write a video list as WebDataset shards (tar files of ~--shard-size) and their index.

    sfvideo make-shards --list train.txt --root /data/k400 --out /data/k400-shards --short-side 320 --workers 16
    sfvideo make-shards --list demo_output/toy_data/val.txt --root demo_output/toy_data --out shards/ --split val

--list is a "path label" list or Kinetics CSV, as the datasets read it (build-lists writes them
from a folder, UCF101, HMDB51, SSv2 or Kinetics download); paths are relative to --root.
Labels that are class names are mapped through classes.txt beside the list.

Writes OUT/{split}-000000.tar, ... (one sample per video: <key>.<ext> with the original bytes, or
<key>.mp4 re-encoded to --short-side, and <key>.json with the label, class name, source path,
fps, frame count and duration), OUT/{split}-shards.json (the index training reads), and
OUT/failed.txt (videos that could not be read; the exit status is then 1). Samples are spread
over the shards in a seeded random order. Resumable: run the same command again after an
interruption; finished shards are kept.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--list", required=True, help="the videos: a 'path label' list or a Kinetics CSV")
    p.add_argument("--root", required=True, help="folder the list's paths are relative to")
    p.add_argument("--out", required=True, help="output folder for the shards and their index")
    p.add_argument("--split", help="name of the shards (default: the list's file name, e.g. train)")
    p.add_argument("--shard-size", default="1GB", help="close a shard at this size (default 1GB)")
    p.add_argument("--max-count", type=int, default=0, help="and at this many samples (default: no limit)")
    p.add_argument("--workers", type=int, default=4, help="processes reading (and re-encoding) the videos")
    p.add_argument("--short-side", type=int, default=0,
                   help="re-encode each video to H.264 with this short side (default: keep the original bytes)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    # imported after parsing so that --help answers at once
    from sfvideo.bench.results import command_line
    from sfvideo.data.lists import ListFormatError, is_kinetics_csv, load_video_list, read_class_names
    from sfvideo.data.shards.write import ShardOptions, make_shards, parse_size

    list_path = Path(args.list)
    classes_file = list_path.parent / "classes.txt"
    if not classes_file.is_file() and list_path.is_file() and is_kinetics_csv(list_path):
        print(f"error: {list_path} names its classes: put their order in {classes_file} (sfvideo build-lists "
              "--format kinetics writes path-label lists and classes.txt)", file=sys.stderr)
        return 1
    try:
        classes = read_class_names(classes_file) if classes_file.is_file() else []
        records = load_video_list(list_path, args.root, classes or None).records
        options = ShardOptions(split=args.split or list_path.stem, shard_bytes=parse_size(args.shard_size),
                               max_count=args.max_count, workers=args.workers, short_side=args.short_side)
        result = make_shards(records, args.root, args.out, options, classes,
                             command_line("sfvideo make-shards", sys.argv[1:] if argv is None else argv),
                             progress=sys.stderr.isatty())
    except (ListFormatError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    samples = sum(e.count for e in result.entries)
    print(f"{len(result.entries)} shards ({result.kept} kept from an earlier run), {samples} samples, "
          f"{sum(e.bytes for e in result.entries) / 1e9:.2f} GB; index {result.index}")
    if result.failed:
        print(f"{len(result.failed)} videos could not be read and were left out; listed in "
              f"{result.index.parent / 'failed.txt'}")
        for path, why in result.failed[:10]:
            print(f"  {path}: {why}")
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main())
