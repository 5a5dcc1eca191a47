"""Multi-view test of a video SparseFormer checkpoint.

    python tools/test_video.py --cfg k400_tiny.yaml TEST.CHECKPOINT PATH [KEY VALUE ...]
    torchrun --nproc_per_node N tools/test_video.py --cfg k400_tiny.yaml TEST.CHECKPOINT PATH

Each video is scored with TEST.NUM_ENSEMBLE_VIEWS x TEST.NUM_SPATIAL_CROPS views, combined by
TEST.ENSEMBLE_METHOD (softmax_mean by default). Writes OUTPUT_DIR/test_results.json (top1, top5,
mean_class_accuracy, clip_top1 in percent, failed_videos, per-class accuracy) and
OUTPUT_DIR/predictions.csv (video, label, pred, top5, score, class names). Under torchrun every
video is scored exactly once. TEST.CHECKPOINT may be a training checkpoint (TEST.USE_EMA picks
its EMA weights), a video checkpoint or an image checkpoint (inflated).

Exit status: 0 when videos were scored (videos that fail to decode are listed in failed_videos,
never substituted); 1 when the checkpoint does not fit the config (CheckpointError: no output
written), when a loader worker died or could not be started (the message names it; nothing
written), or when every video failed (test_results.json is still written, naming them).
"""

import os

from .args import config_parser, fail, parse_config, require_writable_folder


def main(argv=None) -> None:
    parser = config_parser(__doc__)
    args, cfg = parse_config(parser, argv)
    require_writable_folder(parser, cfg.OUTPUT_DIR, "OUTPUT_DIR")

    from sfvideo.checkpoint import CheckpointError
    from sfvideo.data.shards import SHARD_ERRORS, error_line
    from sfvideo.engine import distributed as du
    from sfvideo.engine.evaluate import run_test
    from sfvideo.engine.loaders import LoaderStartError, LoaderWorkerError
    from sfvideo.utils.logging import setup_logging

    setup_logging(cfg.OUTPUT_DIR, int(os.environ.get("RANK", 0)), filename="test.log")
    try:
        results = run_test(cfg, config_name=args.cfg)
    except (CheckpointError, LoaderWorkerError, LoaderStartError) as err:
        fail(str(err))
    except SHARD_ERRORS as err:
        fail(error_line(err))
    finally:
        du.cleanup()
    if results is not None:
        print(f"top1 {results['top1']:.2f}  top5 {results['top5']:.2f}  mean class acc "
              f"{results['mean_class_accuracy']:.2f}  clip top1 {results['clip_top1']:.2f}  "
              f"({results['num_videos']} videos, {len(results['failed_videos'])} failed) -> {cfg.OUTPUT_DIR}")
        if results["num_videos"] == 0:  # nothing was scored: the metrics above mean nothing
            failed = results["failed_videos"]
            named = ", ".join(failed[:10]) + (f", ... ({len(failed) - 10} more)" if len(failed) > 10 else "")
            fail(f"every test video failed to load ({len(failed)}): {named}; no metrics (the list is in "
                 f"{cfg.OUTPUT_DIR}/test_results.json under failed_videos)" if failed else "the test list is empty")


if __name__ == "__main__":
    main()
