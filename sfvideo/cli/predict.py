"""Top-5 classes of one video file.

    python tools/predict.py --cfg k400_tiny.yaml VIDEO TEST.CHECKPOINT PATH [KEY VALUE ...]
    sfvideo predict --checkpoint runs/k400_tiny/checkpoints/best.pth VIDEO

Uses the test views of the config (TEST.NUM_ENSEMBLE_VIEWS x TEST.NUM_SPATIAL_CROPS), the
weights in TEST.CHECKPOINT (or --checkpoint) and the class names in DATA.CLASS_NAMES. Without
--cfg, a checkpoint written by sfvideo supplies its own model, input protocol (frames, rate,
crop, mean/std, test views) and class names.
"""

from __future__ import annotations

from pathlib import Path

from .args import config_from_args, config_parser, fail


def main(argv=None) -> None:
    parser = config_parser(__doc__, cfg_required=False, positionals=[("video", "video file")])
    parser.add_argument("--topk", type=int, default=5, help="how many classes to print (default 5)")
    parser.add_argument("--checkpoint", help="weights to run (default TEST.CHECKPOINT); enough on its own "
                                             "for checkpoints written by sfvideo")
    args = parser.parse_args(argv)
    if not Path(args.video).is_file():
        fail(f"{args.video} does not exist")

    from sfvideo.checkpoint import CheckpointError, config_from_checkpoint
    from sfvideo.engine.evaluate import predict_video

    if args.checkpoint:
        args.opts += ["TEST.CHECKPOINT", args.checkpoint]
    try:
        if args.cfg:
            cfg, names = config_from_args(parser, args), None
        else:
            ckpt = _opt_value(args.opts, "TEST.CHECKPOINT")
            if not ckpt:
                parser.error("give --cfg, or --checkpoint with a checkpoint written by sfvideo")
            cfg, names = config_from_checkpoint(ckpt, args.opts)
        top = predict_video(cfg, args.video, topk=args.topk, class_names=names)
    except (CheckpointError, RuntimeError, ValueError) as err:
        fail(str(err))
    views = cfg.TEST.NUM_ENSEMBLE_VIEWS * cfg.TEST.NUM_SPATIAL_CROPS
    print(f"{args.video} ({views} views, {cfg.TEST.ENSEMBLE_METHOD}):")
    for rank, (index, name, prob) in enumerate(top, 1):
        print(f"  {rank}. {name:<40s} {100 * prob:6.2f}%  (class {index})")


def _opt_value(opts: list[str], key: str) -> str | None:
    """The last value given for ``key`` among ``KEY VALUE`` overrides."""
    values = [opts[i + 1] for i in range(0, len(opts) - 1, 2) if opts[i] == key]
    return values[-1] if values else None
