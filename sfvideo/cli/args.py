"""Shared command-line plumbing for tools/: ``--cfg`` plus trailing ``KEY VALUE`` overrides, shared options."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Callable, Sequence

from ..config import CfgNode, ConfigError, load_config


class CommandParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line, ``PROG: error: MESSAGE`` with status 2 (the
    usage is in ``--help``)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _number(kind: Callable[[str], float], allowed: str, ok: Callable[[float], bool]) -> Callable[[str], float]:
    """An argparse ``type``: ``kind(text)`` when ``ok`` holds for it, else the error ``expected {allowed}``."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value) or not ok(value):
            raise argparse.ArgumentTypeError(f"expected {allowed}, got {text!r}")
        return value

    parse.__name__ = allowed  # what argparse calls the type in its own messages
    return parse


positive_int = _number(int, "an integer > 0", lambda v: v > 0)
non_negative_int = _number(int, "an integer >= 0", lambda v: v >= 0)
positive_float = _number(float, "a number > 0", lambda v: v > 0)
non_negative_float = _number(float, "a number >= 0", lambda v: v >= 0)


def config_parser(description: str, cfg_required: bool = True,
                  positionals: Sequence[tuple[str, str]] = ()) -> argparse.ArgumentParser:
    """An argument parser with ``--cfg``, the positional arguments ``positionals`` (name, help),
    then trailing ``KEY VALUE`` overrides (``opts``). Add options (``--x``) freely afterwards;
    positionals must come through ``positionals``, since nothing may follow the overrides."""
    parser = CommandParser(
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Trailing KEY VALUE pairs override the config, e.g. TRAIN.BATCH_SIZE 4 DATA.NUM_WORKERS 2.",
    )
    parser.add_argument("--cfg", required=cfg_required, help="config file: a path or a name in configs/ (e.g. k400_tiny.yaml)")
    for name, help_text in positionals:
        parser.add_argument(name, help=help_text)
    parser.add_argument("opts", nargs=argparse.REMAINDER, metavar="KEY VALUE", help="config overrides")
    return parser


def add_toy_size_arguments(parser: argparse.ArgumentParser, held_out: str = "validation") -> None:
    """``--train-per-class`` and ``--val-per-class``: the toy dataset's size (``make-toy``, ``demo``).

    Their defaults are the parser's ``argument_default``; left out, the toy generator's own apply.
    """
    parser.add_argument("--train-per-class", type=int, help="training videos per class (default 240)")
    parser.add_argument("--val-per-class", type=int, help=f"{held_out} videos per class (default 25)")


def reject_late_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """A usage error for an option given after the positional arguments (argparse hands
    everything after them to the ``KEY VALUE`` overrides)."""
    late = [t for t in args.opts if t.startswith("--")]
    if late:
        parser.error(f"option {late[0]} comes after the positional arguments, where everything is read as "
                     "KEY VALUE overrides: put options before them")


def config_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> CfgNode:
    """``load_config(args.cfg, args.opts)``; a config problem exits with the message, not a traceback."""
    reject_late_options(parser, args)
    try:
        return load_config(args.cfg, args.opts)
    except ConfigError as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")


def parse_config(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, CfgNode]:
    """Parse ``argv`` and load the config (see ``config_from_args``)."""
    args = parser.parse_args(argv)
    return args, config_from_args(parser, args)


def fail(message: str, code: int = 1) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def require_writable_folder(parser: argparse.ArgumentParser | None, path: str, option: str) -> None:
    """Exit with status 2 and one line naming ``option`` when files cannot be written in the
    folder ``path`` (a file of that name, a read-only place), before any work is done."""
    from ..utils.io import folder_write_problem

    problem = folder_write_problem(path)
    if problem and parser is not None:
        parser.exit(2, f"{parser.prog}: error: {option} {path}: {problem}\n")
    if problem:
        fail(f"{option} {path}: {problem}", code=2)


def opt_value(opts: Sequence[str], key: str) -> str | None:
    """The last value given for ``key`` among ``KEY VALUE`` overrides."""
    values = [opts[i + 1] for i in range(0, len(opts) - 1, 2) if opts[i] == key]
    return values[-1] if values else None


def config_for_weights(parser: argparse.ArgumentParser, args: argparse.Namespace,
                       other: str = "") -> tuple[CfgNode, list[str] | None]:
    """The config of a command that runs weights (predict, export, extract-features).

    ``--checkpoint`` becomes ``TEST.CHECKPOINT``. With ``--cfg`` it is that config, class names
    ``None`` (``DATA.CLASS_NAMES`` applies); without, the model, input protocol and class names
    the checkpoint recorded (``sfvideo.checkpoint.config_from_checkpoint``). ``other`` names a
    further way the command accepts in the usage error (``"or --onnx"``).
    """
    if args.checkpoint:
        args.opts += ["TEST.CHECKPOINT", args.checkpoint]
    if args.cfg:
        return config_from_args(parser, args), None
    ckpt = opt_value(args.opts, "TEST.CHECKPOINT")
    if not ckpt:
        parser.error(f"give --cfg, or --checkpoint with a checkpoint written by sfvideo{other}")
    from ..checkpoint import config_from_checkpoint  # imports torch: only when it runs

    return config_from_checkpoint(ckpt, args.opts)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--checkpoint``, ``--runtime``, ``--onnx`` and ``--threads``: the model a command runs (``runner_from_args``)."""
    parser.add_argument("--checkpoint", help="weights to run (default TEST.CHECKPOINT); enough on its own "
                                             "for checkpoints written by sfvideo")
    parser.add_argument("--runtime", default="auto", choices=["auto", "eager", "onnxruntime"],
                        help="auto (default): the fastest measured: onnxruntime for --onnx files and, on CPU, for "
                             "video_tiny/small/base checkpoints (exported once into ~/.cache/sfvideo/onnx), "
                             "else PyTorch eager")
    parser.add_argument("--onnx", help="an .onnx file from `sfvideo export` (--runtime onnxruntime)")
    parser.add_argument("--threads", type=positive_int, help="CPU threads (default: the runtime's own)")


def runner_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace, spin_wait: bool = True):
    """The ``deploy.run.Runner`` of ``add_model_arguments``' options (and ``--cfg``/overrides);
    ``spin_wait`` False when other threads share the cores (see ``OnnxVideoModel``)."""
    from ..deploy.run import checkpoint_runner, onnx_runner

    if args.onnx:
        if args.runtime == "eager":
            parser.error("--onnx runs in onnxruntime; drop --runtime eager or --onnx")
        return onnx_runner(args.onnx, args.threads, spin_wait=spin_wait)
    cfg, names = config_for_weights(parser, args, other=", or --onnx")
    return checkpoint_runner(cfg, names, args.runtime, args.threads, spin_wait=spin_wait)
