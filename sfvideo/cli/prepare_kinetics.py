"""Re-encode a Kinetics download to a fixed short side (H.264 mp4, video only), in parallel.

Example::

    python tools/prepare_kinetics.py --src /data/k400_raw --dst /data/k400_320 --short-side 320 --workers 16

Resumable: outputs are written under a temporary name and renamed when complete, and a re-run
skips outputs that already exist. Videos that cannot be read, and videos whose output name another
source also has (``clip.mkv`` beside ``clip.mp4``: the ``.mp4`` is converted), are listed in
``{dst}/failed.txt``; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", required=True, help="folder of downloaded videos (any layout)")
    p.add_argument("--dst", required=True, help="output folder (same layout, .mp4)")
    p.add_argument("--short-side", type=int, default=320, help="target short side in pixels (never upscaled)")
    p.add_argument("--workers", type=int, default=4, help="parallel processes")
    p.add_argument("--crf", type=int, default=23, help="x264 quality (lower is better)")
    p.add_argument("--gop-seconds", type=float, default=2.0, help="keyframe interval in seconds")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    # imported after parsing so that --help answers without loading torch
    from sfvideo.data.prepare import prepare_dataset
    results = prepare_dataset(args.src, args.dst, args.short_side, args.workers, args.crf, args.gop_seconds,
                              progress=not args.no_progress)
    counts = {k: sum(r.status == k for r in results) for k in ("done", "skipped", "failed", "collision")}
    problems = [r for r in results if r.status in ("failed", "collision")]
    if problems:
        report = Path(args.dst) / "failed.txt"
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text("".join(f"{r.src}\t{r.status}: {r.error}\n" for r in problems))
        print(f"videos not converted are listed in {report}")
    print(f"{len(results)} videos: {counts['done']} re-encoded, {counts['skipped']} already done, "
          f"{counts['failed']} failed, {counts['collision']} not converted (same output name as another)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
