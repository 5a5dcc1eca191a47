"""``tools/benchmark_timeline.py``: the accuracy and memory checks of ``sfvideo.bench.timeline``."""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path


def _runner(checkpoint: str, onnx: str | None, threads: int):
    from ..deploy.run import onnx_runner, torch_runner

    if onnx:
        return onnx_runner(onnx, threads)
    from ..checkpoint import config_from_checkpoint

    cfg, names = config_from_checkpoint(checkpoint, ["DEVICE", "cpu"])
    return torch_runner(cfg, names, threads)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--checkpoint", required=True, help="a trained toy checkpoint written by sfvideo")
    p.add_argument("--onnx", help="run the .onnx export of it instead (onnxruntime)")
    p.add_argument("--toy-data", required=True, help="the toy dataset the model was trained on (val clips used)")
    p.add_argument("--work", default="/tmp/timeline_bench", help="folder for the generated videos and timelines")
    p.add_argument("--segments", type=int, default=24, help="segments of the accuracy video (default 24)")
    p.add_argument("--clips-per-segment", type=int, default=10, help="toy clips per segment (default 10)")
    p.add_argument("--minutes", type=float, default=10.0, help="length of the memory video (default 10)")
    p.add_argument("--bound-mb", type=float, default=1500.0, help="peak RSS the long run must stay under")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--skip-memory", action="store_true")
    args = p.parse_args(argv)
    from ..data.lists import read_class_names
    from ..deploy.timeline import run_timeline, write_timeline
    from .timeline import long_video, segment_video, timeline_peak_memory, window_accuracy

    work = Path(args.work)
    video = work / "segments.mp4"
    segments = segment_video(args.toy_data, video, args.segments, args.clips_per_segment)
    runner = _runner(args.checkpoint, args.onnx, args.threads)
    if not runner.class_names:
        runner.class_names = read_class_names(Path(args.toy_data) / "classes.txt")
    start = time.perf_counter()
    result = run_timeline(str(video), runner.classify, runner.protocol, class_names=runner.class_names)
    result["truth"] = [{"start_s": s["start_s"], "end_s": s["end_s"], "index": s["label"], "label": s["name"]}
                       for s in segments]
    write_timeline(result, work / "segments_timeline")
    acc = window_accuracy(result, segments)
    report = {"video_s": segments[-1]["end_s"], "segments": len(segments), "runtime": runner.runtime,
              "seconds": time.perf_counter() - start, **acc}
    print(f"[accuracy] {report['video_s']:.0f} s video, {len(segments)} segments, {acc['windows']} windows "
          f"({runner.runtime}): top-1 = segment under the window centre {acc['centre']:.1%}; windows inside one "
          f"segment ({acc['inside_windows']}) {acc['inside']:.1%}; windows inside one toy clip "
          f"({acc['one_clip_windows']}) {acc['one_clip']:.1%}; timeline in {work / 'segments_timeline'}")
    if not args.skip_memory:
        make = functools.partial(_runner, args.checkpoint, args.onnx, args.threads)
        short = timeline_peak_memory(make, str(long_video(work / "long_1min.mp4", 1.0)))
        long = timeline_peak_memory(make, str(long_video(work / f"long_{args.minutes:g}min.mp4", args.minutes)))
        report.update(memory_1min=short, memory_long=long, bound_mb=args.bound_mb)
        print(f"[memory] peak RSS: 1 min {short['peak_rss_mb']:.0f} MB ({short['windows']} windows), "
              f"{args.minutes:g} min 320p {long['peak_rss_mb']:.0f} MB ({long['windows']} windows); model loaded "
              f"{long['loaded_rss_mb']:.0f} MB; bound {args.bound_mb:.0f} MB")
        if long["peak_rss_mb"] > args.bound_mb:
            print("[memory] FAILED: above the bound")
            return 1
    (work / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    return 0
