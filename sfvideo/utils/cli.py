"""Shared command-line plumbing for tools/: ``--cfg`` plus trailing ``KEY VALUE`` overrides."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from ..config import CfgNode, ConfigError, load_config


def config_parser(description: str, cfg_required: bool = True) -> argparse.ArgumentParser:
    """An argument parser with ``--cfg`` and trailing ``KEY VALUE`` overrides (``opts``)."""
    parser = argparse.ArgumentParser(
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Trailing KEY VALUE pairs override the config, e.g. TRAIN.BATCH_SIZE 4 DATA.NUM_WORKERS 2.",
    )
    parser.add_argument("--cfg", required=cfg_required, help="config file: a path or a name in configs/ (e.g. k400_tiny.yaml)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, metavar="KEY VALUE", help="config overrides")
    return parser


def parse_config(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, CfgNode]:
    """Parse ``argv`` and load the config; config problems exit with the message, not a traceback."""
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.cfg, args.opts)
    except ConfigError as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    return args, cfg


def fail(message: str, code: int = 1) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)
