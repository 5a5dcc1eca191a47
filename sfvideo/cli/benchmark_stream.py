"""Live-stream benchmark (``sfvideo.bench.stream``): FFmpeg serves a 320p 30 fps video over HTTP
on loopback in real time, and ``sfvideo stream`` runs against it for --minutes of stream per
setting, in its own process. Printed per setting: input fps, inference rate, dropped windows,
latency p50/p95/max (and p95 over the first and the last minute), RSS at the first prediction,
after one minute, one minute before the end and at the end, and the real-time factor, then the
issue's bars that fail. Exit 1 when one fails.

    python tools/benchmark_stream.py --toy-checkpoint demo_output/run/checkpoints/best.pth \\
        [--minutes 5] [--settings tiny-1.0 tiny-0.5 toy-0.25] [--threads 2] [--work DIR] [--results FILE]

Settings: tiny-1.0 / tiny-0.5: video_tiny at 32 x 224² through onnxruntime, stride 1.0 / 0.5 s
(random weights: the speed does not depend on them; exported once into --work); toy-0.25: the
`make demo` model, stride 0.25 s.

--acceptance instead serves a video of glued toy segments (held-out clips of --toy-data, one
class per segment) in real time and reports, among the windows inside one segment, the fraction
whose smoothed label is the segment's class (the bar: 90%), and whose own top-1 is.

    python tools/benchmark_stream.py --acceptance --toy-checkpoint demo_output/run/checkpoints/best.pth \\
        --toy-data demo_output/toy_data [--segments 24] [--results FILE]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


def parse_args(argv=None) -> argparse.Namespace:
    from sfvideo.bench.stream import SETTINGS

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=5.0, help="minutes of stream per setting (default 5)")
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    p.add_argument("--threads", type=int, default=2, help="CPU threads of the model (default 2)")
    p.add_argument("--toy-checkpoint", default="demo_output/run/checkpoints/best.pth",
                   help="the `make demo` model (default demo_output/run/checkpoints/best.pth)")
    p.add_argument("--toy-data", default="demo_output/toy_data", help="--acceptance: the toy dataset")
    p.add_argument("--acceptance", action="store_true", help="the smoothed-label accuracy on glued toy segments")
    p.add_argument("--segments", type=int, default=24, help="--acceptance: segments (default 24)")
    p.add_argument("--clips-per-segment", type=int, default=10, help="--acceptance: toy clips each (default 10)")
    p.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "sfvideo_stream_bench"),
                   help="folder for the videos, exports, JSON lines and logs")
    p.add_argument("--results", metavar="FILE", help="also write the figures to FILE (.csv or .json; replaced)")
    return p.parse_args(argv)


def _speed(args, work: Path) -> tuple[list[dict], bool]:
    from sfvideo.bench.stream import SETTINGS, check_speed, run_setting, tiny_onnx
    from sfvideo.bench.timeline import long_video

    video = long_video(work / "stream_320p_1min.mp4", 1.0)  # served in a loop
    records, ok = [], True
    for key in args.settings:
        setting = SETTINGS[key]
        if setting.model == "toy" and not Path(args.toy_checkpoint).is_file():
            print(f"[{key}] skipped: no {args.toy_checkpoint} (run make demo, or give --toy-checkpoint)")
            continue
        model = (["--onnx", str(tiny_onnx(work))] if setting.model == "video_tiny" else
                 ["--checkpoint", args.toy_checkpoint])
        r = run_setting(setting, video, work, args.minutes, args.threads, model)
        r["weights"] = "random" if setting.model == "video_tiny" else "trained (make demo)"
        failed = check_speed(r)
        ok &= not failed
        print(f"[{key}] {setting.name} ({r['weights']} weights), {r['minutes']:g} min: input {r['input_fps']:.1f} "
              f"fps, {r['inference_per_s']:.2f} windows/s, {r['dropped_windows']} dropped of "
              f"{r['windows_run'] + r['dropped_windows']}; latency p50 {r['latency_p50_s']:.3f} s, p95 "
              f"{r['latency_p95_s']:.3f} s (first minute {r['latency_p95_first_min_s']:.3f}, last "
              f"{r['latency_p95_last_min_s']:.3f}), max {r['latency_max_s']:.3f} s; RSS {r['rss_start_mb']:.0f} -> "
              f"{r['rss_min1_mb']:.0f} (minute 1) -> {r['rss_last_min_mb']:.0f} (last minute) -> "
              f"{r['rss_end_mb']:.0f} MB (growth {r['rss_growth_mb']:+.0f} MB); real-time factor "
              f"{r['real_time_factor']:.2f}" + "".join(f"\n  FAILED: {f}" for f in failed))
        records.append(r)
    return records, ok


def _acceptance(args, work: Path) -> tuple[list[dict], bool]:
    from sfvideo.bench.stream import accuracy_check

    r = accuracy_check(args.toy_checkpoint, args.toy_data, work, args.segments, args.clips_per_segment, args.threads)
    ok = r["smoothed_inside"] >= 0.9
    print(f"[acceptance] {r['video_s']:.0f} s of {r['segments']} toy segments over HTTP in real time, "
          f"{r['frames_read']} frames, {r['windows']} windows ({r['dropped_windows']} dropped) of {r['window_s']:.2f} s "
          f"every {r['stride_s']:.2f} s, smoothing {r['smooth_s']:g} s: windows inside one segment "
          f"({r['inside_windows']}): smoothed label = the segment's class {r['smoothed_inside']:.1%} (bar 90%: "
          f"{'passed' if ok else 'FAILED'}), the window's own top-1 {r['raw_inside']:.1%}; {r['events']} event lines")
    return [r], ok


def main(argv=None) -> int:
    args = parse_args(argv)
    from sfvideo.bench.results import command_line, save_run

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    records, ok = (_acceptance if args.acceptance else _speed)(args, work)
    if args.results and records:
        command = command_line("python tools/benchmark_stream.py", sys.argv[1:] if argv is None else argv)
        kind = "stream_accuracy" if args.acceptance else "stream"
        print(f"wrote {save_run(args.results, records, kind, command)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
