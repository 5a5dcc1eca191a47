"""Write the embedded synthetic action dataset (H.264 mp4 files + "path label" lists).

Example::

    python tools/make_toy_dataset.py --out demo_output/toy_data
    python tools/train_video.py --cfg toy_tiny.yaml

See ``sfvideo/data/toy.py`` for the classes and why they can only be told apart by motion.
"""

from __future__ import annotations

import argparse
import sys
import time

from .args import add_toy_size_arguments, require_writable_folder


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="output folder (created)")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    add_toy_size_arguments(parser)
    # Defaults of None mean the generator's own (sfvideo.data.toy.DEFAULT_*); the package is
    # imported after parsing so that --help does not pay for importing torch.
    parser.add_argument("--frames", type=int, default=None, help="frames per video (default 24)")
    parser.add_argument("--size", type=int, default=None, help="frame height and width in pixels, even (default 112)")
    parser.add_argument("--fps", type=float, default=None, help="frame rate (default 30)")
    parser.add_argument("--workers", type=int, default=None, help="encoding threads (default: CPU count)")
    parser.add_argument("--force", action="store_true", help="regenerate even if an identical dataset exists")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    require_writable_folder(None, args.out, "--out")
    start = time.perf_counter()
    from sfvideo.data import toy

    try:
        ds = toy.make_toy_dataset(
            args.out,
            seed=args.seed,
            train_per_class=args.train_per_class,
            val_per_class=args.val_per_class,
            num_frames=args.frames,
            size=args.size,
            fps=args.fps,
            workers=args.workers,
            force=args.force,
        )
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    what = "wrote" if ds.generated else "kept existing (same parameters; --force to regenerate)"
    counts = ", ".join(f"{split} {n}" for split, n in ds.num_videos.items())
    print(f"{what} {ds.root}: {len(toy.CLASS_NAMES)} classes, {counts} videos in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
