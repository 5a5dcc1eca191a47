"""Whole-video timeline checks: per-window accuracy on a long video of toy segments through a
trained toy model, and the peak memory of the timeline over a 10-minute 320p video
(``sfvideo.bench.timeline``). Fails (exit 1) when that peak passes --bound-mb.

    python tools/benchmark_timeline.py --checkpoint demo_output/run/checkpoints/best.pth \\
        --toy-data demo_output/toy_data [--work DIR] [--minutes 10] [--bound-mb 1500] [--results FILE]

(``make demo`` writes that checkpoint and toy dataset.) The videos, the timeline and
report.json go into --work.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
from pathlib import Path


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="a trained toy checkpoint written by sfvideo")
    p.add_argument("--onnx", help="run the .onnx export of it instead (onnxruntime)")
    p.add_argument("--toy-data", required=True, help="the toy dataset the model was trained on (val clips used)")
    p.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "sfvideo_timeline_bench"),
                   help="folder for the generated videos and timelines (default: sfvideo_timeline_bench in the "
                        "temporary folder)")
    p.add_argument("--segments", type=int, default=24, help="segments of the accuracy video (default 24)")
    p.add_argument("--clips-per-segment", type=int, default=10, help="toy clips per segment (default 10)")
    p.add_argument("--minutes", type=float, default=10.0, help="length of the memory video (default 10)")
    p.add_argument("--bound-mb", type=float, default=1500.0, help="peak RSS the long run must stay under")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--results", metavar="FILE", help="also write the figures to FILE (.csv or .json; replaced)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from sfvideo.bench.results import command_line, save_run
    from sfvideo.bench.timeline import accuracy_check, load_runner, memory_check, timeline_record

    work = Path(args.work)
    report = accuracy_check(load_runner(args.checkpoint, args.onnx, args.threads), args.toy_data, work,
                            args.segments, args.clips_per_segment)
    print(f"[accuracy] {report['video_s']:.0f} s video, {report['segments']} segments, {report['windows']} windows "
          f"({report['runtime']}): top-1 = segment under the window centre {report['centre']:.1%}; windows inside "
          f"one segment ({report['inside_windows']}) {report['inside']:.1%}; windows inside one toy clip "
          f"({report['one_clip_windows']}) {report['one_clip']:.1%}; timeline in {work / 'segments_timeline'}")
    if not args.skip_memory:
        make = functools.partial(load_runner, args.checkpoint, args.onnx, args.threads)
        report.update(memory_check(make, work, args.minutes), bound_mb=args.bound_mb)
        short, long = report["memory_1min"], report["memory_long"]
        print(f"[memory] peak RSS: 1 min {short['peak_rss_mb']:.0f} MB ({short['windows']} windows), "
              f"{args.minutes:g} min 320p {long['peak_rss_mb']:.0f} MB ({long['windows']} windows); model loaded "
              f"{long['loaded_rss_mb']:.0f} MB; bound {args.bound_mb:.0f} MB")
        if long["peak_rss_mb"] > args.bound_mb:
            print("[memory] FAILED: above the bound")
            return 1
    (work / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    if args.results:
        command = command_line("python tools/benchmark_timeline.py", sys.argv[1:] if argv is None else argv)
        print(f"wrote {save_run(args.results, [timeline_record(report)], 'timeline', command)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
