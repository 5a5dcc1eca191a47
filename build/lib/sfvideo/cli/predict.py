"""Top-5 classes of one video file.

    python tools/predict.py --cfg k400_tiny.yaml VIDEO TEST.CHECKPOINT PATH [KEY VALUE ...]

Uses the test views of the config (TEST.NUM_ENSEMBLE_VIEWS x TEST.NUM_SPATIAL_CROPS), the
weights in TEST.CHECKPOINT and the class names in DATA.CLASS_NAMES.
"""

import sys
from pathlib import Path


from .args import config_parser, fail, parse_config


def main(argv=None) -> None:
    parser = config_parser(__doc__, positionals=[("video", "video file")])
    parser.add_argument("--topk", type=int, default=5, help="how many classes to print (default 5)")
    args, cfg = parse_config(parser, argv)
    if not Path(args.video).is_file():
        fail(f"{args.video} does not exist")

    from sfvideo.checkpoint import CheckpointError
    from sfvideo.engine.evaluate import predict_video

    try:
        top = predict_video(cfg, args.video, topk=args.topk)
    except (CheckpointError, RuntimeError) as err:
        fail(str(err))
    views = cfg.TEST.NUM_ENSEMBLE_VIEWS * cfg.TEST.NUM_SPATIAL_CROPS
    print(f"{args.video} ({views} views, {cfg.TEST.ENSEMBLE_METHOD}):")
    for rank, (index, name, prob) in enumerate(top, 1):
        print(f"  {rank}. {name:<40s} {100 * prob:6.2f}%  (class {index})")


if __name__ == "__main__":
    main()
