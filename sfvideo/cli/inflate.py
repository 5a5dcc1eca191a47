"""Inflate an ImageNet (image) SparseFormer checkpoint into the video model of a config.

    python tools/inflate_checkpoint.py --cfg k400_tiny.yaml --image-ckpt sparseformer_v1_tiny.pth \
        --out sf_tiny_k400_init.pth [--use-ema] [KEY VALUE ...]

Accepts the official library layout and the v1 ``imagenet/`` layout (plain state dict or
training checkpoint with model/model_ema/epoch/config). Prints what happened to every key.
OUT holds {"model": video_state_dict, "inflated_from": ..., "report": ...} and loads with
torch.load(OUT, weights_only=True)["model"].
"""



from sfvideo.checkpoint import CheckpointError, inflate_checkpoint
from sfvideo.models import build_model

from .args import config_parser, fail, parse_config


def main(argv=None) -> None:
    parser = config_parser(__doc__)
    parser.add_argument("--image-ckpt", required=True, help="image checkpoint to inflate")
    parser.add_argument("--out", required=True, help="where to write the video checkpoint")
    parser.add_argument("--use-ema", action="store_true", help="take the EMA weights (model_ema) of a training checkpoint")
    args, cfg = parse_config(parser, argv)
    model = build_model(cfg)
    try:
        inflate_checkpoint(args.image_ckpt, model, args.out, use_ema=args.use_ema, cfg=cfg)
    except CheckpointError as err:
        fail(str(err))
    print(f"wrote {args.out} ({cfg.MODEL.ARCH}, {cfg.MODEL.NUM_CLASSES} classes)")


if __name__ == "__main__":
    main()
