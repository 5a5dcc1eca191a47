"""The ``sfvideo`` command: one sub-command per tool.

    sfvideo train --cfg k400_tiny.yaml [KEY VALUE ...]
    sfvideo test --cfg k400_tiny.yaml TEST.CHECKPOINT best.pth
    sfvideo <command> --help

Each sub-command is a module of this package with a ``main(argv)``; ``tools/<name>.py`` are
two-line wrappers around the same functions, so ``python tools/train_video.py`` keeps working
in a source checkout. Modules are imported only when their command runs, so ``--help`` is fast.
"""

from __future__ import annotations

import difflib
import importlib
import sys
from typing import NamedTuple, Sequence


class Command(NamedTuple):
    module: str  # module of this package holding main(argv)
    summary: str  # one line for ``sfvideo --help``
    tool: str  # the equivalent script under tools/


COMMANDS: dict[str, Command] = {
    "train": Command("train", "train a model (resumable; single process or torchrun)", "train_video.py"),
    "test": Command("test", "multi-view test -> test_results.json, predictions.csv", "test_video.py"),
    "predict": Command("predict", "top-k classes of one video, or a timeline over it (--window)", "predict.py"),
    "stream": Command("stream", "actions on a live stream (camera, RTSP, HTTP, TCP/UDP, file) as it plays",
                      "stream.py"),
    "inflate": Command("inflate", "image checkpoint -> video checkpoint, with a key report", "inflate_checkpoint.py"),
    "export": Command("export", "ONNX / torch.export of a model, checked against PyTorch (metadata inside)",
                      "export.py"),
    "extract-features": Command("extract_features", "pooled token embeddings per video (.npy + index.csv)",
                                "extract_features.py"),
    "flops": Command("flops", "GFLOPs per view and parameters", "count_flops.py"),
    "benchmark": Command("benchmark", "model speed/memory vs pytorchvideo's zoo or the official code", "benchmark.py"),
    "benchmark-loader": Command("benchmark_loader", "data-loader throughput per decoder vs pytorchvideo's loader",
                                "benchmark_loader.py"),
    "demo": Command("demo", "toy data -> train -> test -> predict -> pictures, on the CPU", "demo.py"),
    "make-toy": Command("make_toy", "write the embedded synthetic toy dataset", "make_toy_dataset.py"),
    "visualize": Command("visualize", "draw token RoIs and sampling points over a clip", "visualize_rois.py"),
    "plot-curves": Command("plot_curves", "training curves (PNG) from metrics.jsonl", "plot_curves.py"),
    "build-lists": Command("build_lists", "path-label lists + classes.txt from a folder, UCF101, HMDB51, SSv2 "
                           "or Kinetics download", "build_lists.py"),
    "build-kinetics-lists": Command("build_kinetics_lists", "the same as build-lists --format kinetics",
                                    "build_kinetics_lists.py"),
    "app": Command("app", "a browser app (Gradio): top-5, timeline and the tokens' RoIs of a video", "app.py"),
    "prepare-kinetics": Command("prepare_kinetics", "re-encode a video folder to a short side (parallel)",
                                "prepare_kinetics.py"),
    "make-shards": Command("make_shards", "a video list -> WebDataset shards + index (local, HTTP, S3 training)",
                           "make_shards.py"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [__doc__.strip().splitlines()[0], "", "usage: sfvideo <command> [options] [KEY VALUE ...]", "",
             "commands:"]
    lines += [f"  {name:<{width}}  {cmd.summary}" for name, cmd in COMMANDS.items()]
    lines += ["", "Run 'sfvideo <command> --help' for a command's options."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch ``argv`` (default ``sys.argv[1:]``) to a sub-command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        close = difflib.get_close_matches(name, COMMANDS, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        print(f"sfvideo: unknown command {name!r}{hint}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"{__name__}.{COMMANDS[name].module}")
    sys.argv[0] = f"sfvideo {name}"  # argparse takes its prog (usage line) from argv[0]
    status = module.main(rest)
    return status if isinstance(status, int) else 0


if __name__ == "__main__":
    sys.exit(main())
