"""Train a video SparseFormer (resumable; single process or torchrun).

    python tools/train_video.py --cfg k400_tiny.yaml [KEY VALUE ...]

One machine, N processes (gloo on CPU, nccl on GPU):

    torchrun --nproc_per_node N tools/train_video.py --cfg k400_tiny.yaml [KEY VALUE ...]

Several machines, through torchrun's rendezvous (the same command on each machine; HOST is one
of them, reachable by all; OUTPUT_DIR on a shared file system):

    torchrun --nnodes 2 --nproc_per_node 8 --rdzv_backend c10d --rdzv_endpoint HOST:29500 \
        --rdzv_id RUN_NAME tools/train_video.py --cfg k400_tiny.yaml OUTPUT_DIR /shared/run

Writes OUTPUT_DIR/config.yaml, train.log, metrics.jsonl (one JSON line per epoch) and
checkpoints/{last,best,epoch_XXXX}.pth. With TRAIN.AUTO_RESUME (default) the same command
continues from checkpoints/last.pth.

Exit status: 0 when training finished; 128 + the signal number when SIGINT (130) or SIGTERM (143)
stopped it after writing a resumable checkpoint (a scheduler can requeue on these); 1 when it
failed with a message (weights that do not fit, a run directory in use or holding an incompatible
run, a non-finite loss, a data-loader worker killed or one that cannot be started, no space left
on device; the previous checkpoint is kept); 2 for a bad command line or config (an OUTPUT_DIR
that cannot be written included).

--benchmark-steps N instead times N training steps on random clips (no data needed) and prints
clips/s and the peak resident memory (--results FILE: also as data, sfvideo.bench.results).
"""

import errno
import sys

from .args import config_parser, fail, parse_config, require_writable_folder


def main(argv=None) -> int:
    parser = config_parser(__doc__)
    parser.add_argument("--benchmark-steps", type=int, default=0, metavar="N",
                        help="time N training steps on random clips instead of training")
    parser.add_argument("--benchmark-warmup", type=int, default=2, metavar="N",
                        help="untimed steps before the benchmark (default 2)")
    parser.add_argument("--results", metavar="FILE", help="--benchmark-steps: also write the figures to FILE")
    args, cfg = parse_config(parser, argv)
    if args.benchmark_steps <= 0:
        require_writable_folder(parser, cfg.OUTPUT_DIR, "OUTPUT_DIR")

    from sfvideo.bench.training import benchmark_training
    from sfvideo.data.shards import SHARD_ERRORS, error_line
    from sfvideo.engine import distributed as du
    from sfvideo.engine import train as engine_train

    if args.benchmark_steps > 0:
        result = benchmark_training(cfg, args.benchmark_steps, args.benchmark_warmup)
        print(result.format())
        if args.results:
            from sfvideo.bench.results import command_line, save_run

            command = command_line("sfvideo train", sys.argv[1:] if argv is None else argv)
            print(f"results written to {save_run(args.results, [result.record()], 'train_step', command, result.device)}")
        return 0
    try:
        result = engine_train.train(cfg)
    except engine_train.TRAINING_ERRORS as err:
        fail(str(err))
    except SHARD_ERRORS as err:  # a shard store that cannot be read, or a bad shard index
        fail(error_line(err))
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        fail(err.strerror if "while writing" in (err.strerror or "") else str(err))
    finally:
        du.cleanup()
    print(f"{result.status}: {result.epoch} epochs, {result.step} steps; outputs in {result.output_dir}")
    return result.exit_status


if __name__ == "__main__":
    main()
