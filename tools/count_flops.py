#!/usr/bin/env python
"""Print GFLOPs per view (multiply-adds, as the paper and fvcore) and parameters.

    python tools/count_flops.py                      # video tiny/small/base at 8, 16, 32 frames
    python tools/count_flops.py --models video_tiny --frames 32 --size 224
    python tools/count_flops.py --cfg k400_tiny.yaml # the config's model at its own input
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sfvideo.config import ConfigError, load_config  # noqa: E402
from sfvideo.utils.flops import flops_table, format_table  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["video_tiny", "video_small", "video_base"])
    parser.add_argument("--frames", nargs="+", type=int, default=[8, 16, 32])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--num-classes", type=int, default=400)
    parser.add_argument("--cfg", help="count the model of this config at DATA.NUM_FRAMES x DATA.TEST_CROP_SIZE")
    parser.add_argument("opts", nargs=argparse.REMAINDER, metavar="KEY VALUE", help="config overrides (with --cfg)")
    args = parser.parse_args(argv)
    if args.cfg:
        try:
            cfg = load_config(args.cfg, args.opts)
        except ConfigError as err:
            parser.exit(2, f"error: {err}\n")
        args.models, args.frames = [cfg.MODEL.ARCH], [cfg.DATA.NUM_FRAMES]
        args.size, args.num_classes = cfg.DATA.TEST_CROP_SIZE, cfg.MODEL.NUM_CLASSES
    print(format_table(flops_table(args.models, args.frames, args.size, args.num_classes)))


if __name__ == "__main__":
    main()
