"""Print GFLOPs per view (multiply-adds, as the paper and fvcore) and parameters.

    python tools/count_flops.py                      # video tiny/small/base at 8, 16, 32 frames
    python tools/count_flops.py --models video_tiny --frames 32 --size 224
    python tools/count_flops.py --cfg k400_tiny.yaml # the config's model at its own input

--results FILE also writes the figures as data (sfvideo.bench.results).
"""

import sys

from sfvideo.bench.flops import flops_table
from sfvideo.bench.results import command_line, render_table, save_run

from .args import config_from_args, config_parser


def main(argv=None) -> None:
    parser = config_parser(__doc__, cfg_required=False)
    parser.add_argument("--models", nargs="+", default=["video_tiny", "video_small", "video_base"])
    parser.add_argument("--frames", nargs="+", type=int, default=[8, 16, 32])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--num-classes", type=int, default=400)
    parser.add_argument("--results", metavar="FILE", help="also write the figures to FILE (.csv or .json; replaced)")
    args = parser.parse_args(argv)
    if args.cfg:  # the config's model at DATA.NUM_FRAMES x DATA.TEST_CROP_SIZE
        cfg = config_from_args(parser, args)
        args.models, args.frames = [cfg.MODEL.ARCH], [cfg.DATA.NUM_FRAMES]
        args.size, args.num_classes = cfg.DATA.TEST_CROP_SIZE, cfg.MODEL.NUM_CLASSES
    records = flops_table(args.models, args.frames, args.size, args.num_classes)
    print(render_table(records, "flops"))
    if args.results:
        command = command_line("sfvideo flops", sys.argv[1:] if argv is None else argv)
        print(f"results written to {save_run(args.results, records, 'flops', command)}")


if __name__ == "__main__":
    main()
