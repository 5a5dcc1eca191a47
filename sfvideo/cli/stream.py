"""Recognise actions on a live stream as it plays: a camera, an RTSP/HTTP/TCP/UDP stream or a file.

    sfvideo stream --checkpoint best.pth --jsonl - rtsp://camera.local:554/stream
    sfvideo stream --onnx model.onnx --jsonl preds.jsonl http://host:8080/live.ts
    sfvideo stream --checkpoint best.pth --out-video annotated.mp4 --realtime video.mp4
    sfvideo stream --checkpoint best.pth tcp://127.0.0.1:9000      (or udp://127.0.0.1:9000)
    sfvideo stream --checkpoint best.pth --duration 60 /dev/video0

Windows of --window seconds every --stride seconds of stream (default: the model's clip span and
half of it) are classified as they complete. When inference falls behind, the newest complete
window runs next and the older ones are skipped and counted, never queued, so latency and memory
stay bounded. A file is read as fast as inference goes (no window skipped), or at its own frame
rate with --realtime.

--jsonl writes one JSON object per line, flushed as written: per window {"stream_start_s",
"stream_end_s", "wall_time", "latency_s", "top": [[class, prob] x5], "smoothed": [[class, prob]
x3], "dropped_windows", "input_fps"}, and per action event {"event": "start"|"end", "class",
"stream_s", "prob"}. A lost source is reopened with back-off (--reconnect attempts); SIGINT or
SIGTERM stop cleanly. Exit status: 0 when the stream ends, --duration is reached or a signal
stops it; 1 when the source cannot be opened or is lost for good. Options go before SOURCE.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from .args import add_model_arguments, config_parser, fail, reject_late_options, runner_from_args


def _positive(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise argparse.ArgumentTypeError(f"{value}: must be a positive number of seconds")
    return number


def _option(value: str) -> tuple[str, str]:
    key, sep, val = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{value}: expected KEY=VALUE (an FFmpeg input option)")
    return key, val


def _parser() -> argparse.ArgumentParser:
    p = config_parser(__doc__, cfg_required=False, positionals=[("source", "a video file, /dev/videoN, rtsp://, "
                                                                           "http(s)://, tcp:// or udp:// URL")])
    add_model_arguments(p)
    p.add_argument("--window", type=_positive, help="window length in seconds (default: the model's clip span)")
    p.add_argument("--stride", type=_positive, help="seconds between windows (default: half a window)")
    p.add_argument("--smooth", type=float, default=1.0, help="time constant of the moving average of the "
                                                             "probabilities, seconds (default 1; 0: none)")
    p.add_argument("--threshold", type=float, default=0.5, help="events: smoothed probability an action starts at "
                                                                "(default 0.5)")
    p.add_argument("--min-duration", type=float, default=1.0, help="events: seconds it must hold (default 1)")
    p.add_argument("--hysteresis", type=float, default=0.1, help="events: it ends below threshold - this "
                                                                 "(default 0.1)")
    p.add_argument("--jsonl", help="JSON lines of predictions and events (- for standard output)")
    p.add_argument("--out-video", help="the stream re-encoded with the label, its probability and the token RoIs")
    p.add_argument("--summary", help="also write the run's summary to this JSON file")
    p.add_argument("--duration", type=_positive, help="stop after this many seconds of stream")
    p.add_argument("--realtime", action="store_true", help="read a file at its own frame rate (as a live source)")
    p.add_argument("--reconnect", type=int, default=5, help="attempts to reopen a lost source (default 5)")
    p.add_argument("--rtsp-transport", default="tcp", choices=["tcp", "udp"], help="RTSP transport (default tcp)")
    p.add_argument("--open-timeout", type=_positive, default=10.0, help="seconds to wait for a source to open "
                                                                        "(default 10)")
    p.add_argument("--read-timeout", type=_positive, default=10.0, help="seconds without data before a source "
                                                                        "counts as lost (default 10)")
    p.add_argument("--input-option", type=_option, action="append", default=[], metavar="KEY=VALUE",
                   help="an FFmpeg input option (repeatable), e.g. probesize=32768")
    return p


def _options(args: argparse.Namespace):
    from sfvideo.deploy.live import SourceOptions, StreamOptions

    source = SourceOptions(rtsp_transport=args.rtsp_transport, open_timeout=args.open_timeout,
                           read_timeout=args.read_timeout, reconnect=args.reconnect,
                           ffmpeg_options=dict(args.input_option))
    return StreamOptions(window_s=args.window, stride_s=args.stride, smooth_s=args.smooth, threshold=args.threshold,
                         min_duration_s=args.min_duration, hysteresis=args.hysteresis, duration_s=args.duration,
                         realtime=args.realtime, jsonl=args.jsonl, out_video=args.out_video, source=source)


class _LineHandler(logging.StreamHandler):
    """Log lines on standard error, starting on a clean line where the status line is drawn."""

    def emit(self, record: logging.LogRecord) -> None:
        if self.stream.isatty():
            self.stream.write("\r\033[K")
        super().emit(record)


def _stop_on_signals(stop: threading.Event) -> dict:
    """SIGINT and SIGTERM set ``stop`` (the run then ends cleanly); returns the handlers replaced."""
    def handler(signum, frame):
        if not stop.is_set():
            logging.getLogger("sfvideo.stream").warning("%s: stopping", signal.Signals(signum).name)
        stop.set()

    return {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}


def _report(result: dict) -> str:
    def seconds(key: str) -> str:
        return "n/a" if result[key] is None else f"{result[key]:.3f}"

    return (f"{result['source']}: {result['ended']} after {result['stream_s']:.1f} s of stream "
            f"({result['frames_read']} frames, {result['wall_s']:.1f} s wall); {result['windows_run']} windows run, "
            f"{result['dropped_windows']} dropped; latency p50 {seconds('latency_p50_s')} s, p95 "
            f"{seconds('latency_p95_s')} s; real-time factor {seconds('real_time_factor')}; "
            f"{result['reconnects']} reconnects, {result['corrupt_packets']} corrupt packets")


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    reject_late_options(parser, args)
    if args.onnx and args.opts:
        parser.error(f"KEY VALUE overrides ({' '.join(args.opts)}) change a config; an .onnx file has none")
    try:
        options = _options(args)
    except ValueError as err:
        parser.error(str(err))
    if args.onnx and not os.path.isfile(args.onnx):
        fail(f"{args.onnx} does not exist")

    from sfvideo.data.pyav_reader import DecodeError
    from sfvideo.deploy.live import run_stream

    logger, handler = logging.getLogger("sfvideo.stream"), _LineHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    stop, previous = threading.Event(), {}
    try:
        runner = runner_from_args(parser, args, spin_wait=False)  # the reader thread shares the cores
        if runner.runtime == "onnxruntime":
            _one_torch_thread()
        previous = _stop_on_signals(stop)
        result = run_stream(args.source, runner, options, stop)
    except (DecodeError, RuntimeError, ValueError, FileNotFoundError) as err:  # CheckpointError is a RuntimeError
        fail(str(err))
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        logger.removeHandler(handler)
    return _finish(result, args.summary)


def _one_torch_thread() -> None:
    """With onnxruntime running the model, torch only resizes frames in the reader thread: one
    thread is enough there, and its pool would otherwise compete with onnxruntime's for the cores."""
    from sfvideo.deploy.preprocess import torch_available

    if torch_available():
        import torch

        torch.set_num_threads(1)


def _finish(result: dict, summary: str | None) -> int:
    """The summary on standard error (and in ``summary``); the exit status."""
    print(_report(result), file=sys.stderr)
    if summary:
        import json

        from sfvideo.utils.io import atomic_write_text

        atomic_write_text(summary, json.dumps(result, indent=1) + "\n")
    if result["ended"] == "lost":
        print(f"error: {result['error']}", file=sys.stderr)
        return 1
    return 0
