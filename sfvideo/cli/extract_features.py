"""Pooled token embeddings (the vector before the classifier, test views averaged) of videos.

    sfvideo extract-features --cfg toy_tiny.yaml --out feats/ --list val.txt TEST.CHECKPOINT best.pth
    sfvideo extract-features --checkpoint best.pth --out feats/ a.mp4 b.mp4 [KEY VALUE ...]
    torchrun --nproc_per_node 4 tools/extract_features.py --checkpoint best.pth --out feats/ --list val.txt
    sfvideo extract-features --checkpoint best.pth --out feats/ --shards s3://bucket/k400/val-shards.json

Writes OUT/features.npy (rows x D float32) and OUT/index.csv (video,label,row; with --per-window
one row per timeline window, plus start_s,end_s). Per-video parts in OUT/parts/ make an
interrupted run resume where it stopped (a damaged part is computed again); they are reused only
by a run with the same weights, mode (--per-window or not) and input protocol, and any other run
into OUT is refused unless --overwrite. Under torchrun every video is embedded by one process.
A --list is read like the datasets' lists (path label lines or a Kinetics CSV, paths relative
to DATA.PATH_TO_DATA_DIR). --shards reads WebDataset shards (a brace pattern or a *-shards.json,
local, http(s):// or s3://, as DATA.TEST_SHARDS), each process and loader worker its own; index.csv
then names each sample by the source path its .json records. Options go before the videos.
"""

from __future__ import annotations

import re

from .args import config_for_weights, config_parser, fail, require_writable_folder

_KEY = re.compile(r"^[A-Z][A-Z0-9_]*\.[A-Z0-9_.]+$")


def _videos_and_opts(tokens: list[str]) -> tuple[list[str], list[str]]:
    """Leading tokens up to the first ``SECTION.KEY`` are videos; the rest are overrides."""
    i = next((k for k, t in enumerate(tokens) if _KEY.match(t)), len(tokens))
    return tokens[:i], tokens[i:]


def _listed(cfg, list_file: str) -> list[tuple[str, int | None]]:
    from sfvideo.data.build import class_names_from_cfg
    from sfvideo.data.lists import load_video_list, resolve_path

    try:
        names = class_names_from_cfg(cfg)
    except FileNotFoundError:
        names = None
    result = load_video_list(resolve_path(list_file, cfg.DATA.PATH_TO_DATA_DIR), cfg.DATA.PATH_TO_DATA_DIR, names)
    return [(r.path, r.label) for r in result.records]


def main(argv=None) -> None:
    parser = config_parser(__doc__, cfg_required=False)
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--list", help="a list file of videos (instead of video paths)")
    parser.add_argument("--checkpoint", help="weights (default TEST.CHECKPOINT); enough on its own for "
                                             "checkpoints written by sfvideo")
    parser.add_argument("--shards", metavar="PATTERN", help="WebDataset shards to embed (instead of a list)")
    parser.add_argument("--per-window", action="store_true", help="one row per timeline window, not per video")
    parser.add_argument("--overwrite", action="store_true",
                        help="remove the parts another run left in --out (other weights, mode or input protocol) "
                             "and compute every part again")
    args = parser.parse_args(argv)
    videos, args.opts = _videos_and_opts(args.opts)
    if sum(map(bool, (videos, args.list, args.shards))) != 1:
        parser.error("give one of --list LIST, --shards PATTERN or video files")
    if args.shards and args.per_window:
        parser.error("--per-window reads video files; it does not take --shards")
    require_writable_folder(parser, args.out, "--out")
    if args.shards:
        args.opts += ["DATA.FORMAT", "shards", "DATA.TEST_SHARDS", args.shards, "TEST.SPLIT", "test"]

    import sys

    from sfvideo.checkpoint import CheckpointError
    from sfvideo.data.shards import SHARD_ERRORS, error_line
    from sfvideo.deploy.features import extract_features, extract_shard_features
    from sfvideo.deploy.run import torch_runner
    from sfvideo.engine import distributed as du

    try:
        cfg, _ = config_for_weights(parser, args)
        du.init_distributed(du.resolve_device(cfg.DEVICE))
        model = torch_runner(cfg).model
        if args.shards:
            path = extract_shard_features(cfg, model, args.out, progress=sys.stderr.isatty(), overwrite=args.overwrite)
        else:
            items = _listed(cfg, args.list) if args.list else [(v, None) for v in videos]
            path = extract_features(cfg, model, items, args.out,
                                    data_dir=cfg.DATA.PATH_TO_DATA_DIR if args.list else "",
                                    per_window=args.per_window, progress=sys.stderr.isatty(),
                                    overwrite=args.overwrite)
    except SHARD_ERRORS as err:
        fail(error_line(err))
    except (CheckpointError, RuntimeError, ValueError, FileNotFoundError) as err:
        fail(str(err))
    if path is not None:
        import numpy as np

        print(f"wrote {path} {np.load(path).shape} and {path.parent / 'index.csv'}")
