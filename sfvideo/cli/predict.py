"""Top-5 classes of one video file, or an action timeline over the whole of it (--window).

    python tools/predict.py --cfg k400_tiny.yaml VIDEO TEST.CHECKPOINT PATH [KEY VALUE ...]
    sfvideo predict --checkpoint runs/k400_tiny/checkpoints/best.pth VIDEO
    sfvideo predict --checkpoint best.pth --window 2 --stride 1 --out timeline/ VIDEO
    sfvideo predict --runtime onnxruntime --onnx model.onnx [--window 2 --out timeline/] VIDEO

Uses the test views of the config (TEST.NUM_ENSEMBLE_VIEWS x TEST.NUM_SPATIAL_CROPS), the
weights in TEST.CHECKPOINT (or --checkpoint) and the class names in DATA.CLASS_NAMES. Without
--cfg, a checkpoint written by sfvideo supplies its own model, input protocol (frames, rate,
crop, mean/std, test views) and class names; an .onnx file from `sfvideo export` does the same
for --runtime onnxruntime (no PyTorch model code involved).

--window S slides a clip window of S seconds every --stride seconds (default: the clip span and
half of it) over the whole video, decoding it once as a stream, and writes OUT/timeline.csv
(start_s,end_s,top1,top1_prob, then the top-k), timeline.json (+ a smoothed per-second label
track) and timeline.png. Options go before the positional arguments.
"""

from __future__ import annotations

from pathlib import Path

from .args import (
    add_model_arguments,
    config_parser,
    fail,
    positive_float,
    positive_int,
    require_writable_folder,
    runner_from_args,
)


def _parser():
    parser = config_parser(__doc__, cfg_required=False, positionals=[("video", "video file")])
    parser.add_argument("--topk", type=positive_int, default=5, help="how many classes to print (default 5)")
    add_model_arguments(parser)
    parser.add_argument("--window", type=positive_float, help="timeline: window length in seconds (default: clip span)")
    parser.add_argument("--stride", type=positive_float, help="timeline: seconds between windows (default: half a "
                                                                "window)")
    parser.add_argument("--out", default="timeline", help="timeline: output folder (default ./timeline)")
    parser.add_argument("--timeline", action="store_true", help="timeline with the default window and stride")
    parser.add_argument("--batch", type=positive_int, default=8, help="timeline: windows per forward pass (default 8)")
    return parser


def main(argv=None) -> None:
    import sys

    parser = _parser()
    args = parser.parse_args(argv)
    wants_timeline = args.window is not None or args.stride is not None or args.timeline
    if wants_timeline:
        require_writable_folder(parser, args.out, "--out")
    if not Path(args.video).is_file():
        fail(f"{args.video} does not exist")

    from sfvideo.deploy.run import timeline, top_classes

    try:
        runner = runner_from_args(parser, args)
        if wants_timeline:
            result = timeline(runner, args.video, args.out, window_s=args.window, stride_s=args.stride,
                              topk=args.topk, batch=args.batch, progress=sys.stderr.isatty())
            print(f"{args.video}: {len(result['windows'])} windows of {result['window_s']:.2f} s every "
                  f"{result['stride_s']:.2f} s ({runner.runtime}); wrote {', '.join(result['files'])}")
            for seg in result["segments"]:
                print(f"  {seg['start_s']:>6d}-{seg['end_s']:<6d}s  {seg['label']}")
            return
        top = top_classes(runner, args.video, args.topk)
    except (RuntimeError, ValueError, FileNotFoundError) as err:  # CheckpointError is a RuntimeError
        fail(str(err))
    p = runner.protocol
    print(f"{args.video} ({p['num_clips'] * p['num_crops']} views, {p['ensemble']}, {runner.runtime}):")
    for rank, (index, name, prob) in enumerate(top, 1):
        print(f"  {rank}. {name:<40s} {100 * prob:6.2f}%  (class {index})")

