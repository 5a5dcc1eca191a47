"""Draw each token's spatiotemporal RoI and sampling points over a video clip.

    python tools/visualize_rois.py --cfg toy_tiny.yaml VIDEO [--checkpoint PATH] [--out DIR] [KEY VALUE ...]

Takes the centre test clip of VIDEO (DATA.NUM_FRAMES frames at DATA.SAMPLING_RATE, short side
DATA.TEST_CROP_SIZE, centre crop), runs model.forward_details on it and writes, in --out
(default OUTPUT_DIR/rois):

  NAME.png      the initial RoIs and the final RoIs, frame by frame, with a colour legend
  NAME.gif      the same stages side by side, animated over the clip's frames
  NAME_all.png  every adjustment step

One colour per token. A box is solid on the frames its time slab [t0, t1] covers and faint and
dashed on the others; dots are the sampling points on the frame nearest their time.
Weights: --checkpoint, else TEST.CHECKPOINT, else a freshly initialised model (initial RoIs only
mean something then).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .args import require_writable_folder


def _add_options(parser: argparse.ArgumentParser, suppress: bool = False) -> None:
    default = (lambda v: argparse.SUPPRESS) if suppress else (lambda v: v)
    parser.add_argument("--checkpoint", default=default(""), help="weights (default: TEST.CHECKPOINT)")
    parser.add_argument("--out", default=default(""), help="output folder (default: OUTPUT_DIR/rois)")
    parser.add_argument("--name", default=default(""), help="file name stem (default: the video's)")
    parser.add_argument("--steps", default=default("ends"),
                        help="stages of NAME.png/.gif: 'ends' (initial and final, default), 'all', or "
                             "comma-separated indices into the RoI list (0 = initial, -1 = final)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Trailing KEY VALUE pairs override the config, e.g. DATA.DECODER pyav.")
    parser.add_argument("--cfg", required=True, help="config file: a path or a name in configs/")
    _add_options(parser)
    parser.add_argument("video", help="video file")
    parser.add_argument("opts", nargs=argparse.REMAINDER, metavar="KEY VALUE", help="config overrides")
    args = parser.parse_args(argv)
    # Options written after VIDEO land in the REMAINDER list; pick them out of it.
    late = argparse.ArgumentParser(add_help=False)
    _add_options(late, suppress=True)
    extra, args.opts = late.parse_known_args(args.opts)
    vars(args).update(vars(extra))
    return args


def _steps(text: str):
    if text in ("ends", "all"):
        return text
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise SystemExit(f"error: --steps must be 'ends', 'all' or comma-separated integers, got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    steps = _steps(args.steps)
    if args.out:
        require_writable_folder(None, args.out, "--out")

    from sfvideo.config import ConfigError, load_config

    from .args import fail

    try:
        cfg = load_config(args.cfg, args.opts)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    video = Path(args.video)
    if not video.is_file():
        fail(f"video {video} not found")

    import torch

    from sfvideo.checkpoint import CheckpointError, load_test_weights
    from sfvideo.data.build import class_names_from_cfg
    from sfvideo.data.decoding import DecodeError
    from sfvideo.models import build_model
    from sfvideo.viz.rois import load_clip, visualize_model_rois

    model = build_model(cfg)
    weights = args.checkpoint or cfg.TEST.CHECKPOINT
    if weights:
        try:
            load_test_weights(model, weights, use_ema=cfg.TEST.USE_EMA, log=print)
        except (CheckpointError, FileNotFoundError) as err:
            fail(str(err))
    else:
        print("warning: no --checkpoint or TEST.CHECKPOINT; drawing a freshly initialised model", file=sys.stderr)
    use_cuda = cfg.DEVICE == "cuda" or (cfg.DEVICE == "auto" and torch.cuda.is_available())
    model.to("cuda" if use_cuda else "cpu")
    try:
        clip = load_clip(video, cfg)  # (C, T, S, S)
    except DecodeError as err:
        fail(str(err))
    try:
        class_names = class_names_from_cfg(cfg)
    except (OSError, ValueError):
        class_names = None
    out_dir = Path(args.out) if args.out else Path(cfg.OUTPUT_DIR) / "rois"
    result = visualize_model_rois(model, clip, cfg.DATA.MEAN, cfg.DATA.STD, out_dir, args.name or video.stem,
                                  class_names, steps)
    print(f"wrote {result['png']}, {result['gif']}, {result['png_all']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
