"""A browser app: upload a video, see its top-5, its timeline and where the model's tokens look.

    sfvideo app --checkpoint runs/toy/checkpoints/best.pth
    sfvideo app --checkpoint hf-hub:ORG/NAME --port 7860 --examples my_videos/
    sfvideo app --cfg toy_tiny.yaml TEST.CHECKPOINT best.pth

Serves a Gradio page on http://127.0.0.1:7860 (--host 0.0.0.0 to serve other machines: there is
no login). The page shows the top-5 classes, for a video longer than one clip the timeline picture
and table, and an animated picture of the centre clip with each token's spatiotemporal RoI and
sampling points, layer by layer. The same analysis is an HTTP API (Gradio's, endpoint /classify):

    from gradio_client import Client, handle_file   # HF_HUB_OFFLINE=1 on a machine without a network
    client = Client("http://127.0.0.1:7860/", analytics_enabled=False)
    top5, status, rois_gif, timeline_png, windows = client.predict(handle_file("video.mp4"), api_name="/classify")

Examples default to one held-out clip per class of the toy dataset. Requests queue and run
--concurrency at a time; uploads above --max-mb or --max-seconds, and files that are not videos,
get a message in the page. Needs the app extra: pip install "sfvideo[app]".
"""

from __future__ import annotations

from .args import config_for_weights, config_parser, fail


def _parser():
    parser = config_parser(__doc__, cfg_required=False)
    parser.add_argument("--checkpoint", help="weights: a .pth, .safetensors, model directory or hf-hub:ORG/NAME "
                                             "(default TEST.CHECKPOINT)")
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument("--examples", help="a folder of example videos (default: toy held-out clips)")
    parser.add_argument("--concurrency", type=int, default=1, help="analyses run at a time (default 1)")
    parser.add_argument("--max-mb", type=float, default=200.0, help="largest upload in MB (default 200)")
    parser.add_argument("--max-seconds", type=float, default=600.0, help="longest video in seconds (default 600)")
    parser.add_argument("--runtime", default="auto", choices=["auto", "eager", "onnxruntime"],
                        help="top-5 and timeline runtime, as predict's (default auto: the fastest on this machine)")
    parser.add_argument("--threads", type=int, help="CPU threads (default: the runtime's own)")
    return parser


def main(argv=None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.concurrency < 1 or args.max_mb <= 0 or args.max_seconds <= 0:
        parser.error("--concurrency, --max-mb and --max-seconds must be positive")

    from sfvideo.app.analysis import example_videos, load_app_model
    from sfvideo.checkpoint import CheckpointError

    try:
        from sfvideo.app.ui import AppOptions, import_gradio, launch_app

        import_gradio()
        cfg, names = config_for_weights(parser, args)
        app = load_app_model(cfg, names, args.runtime, args.threads)
        examples = example_videos(args.examples)
    except (ImportError, CheckpointError, RuntimeError, ValueError, FileNotFoundError) as err:
        fail(str(err))
    options = AppOptions(host=args.host, port=args.port, examples=examples, concurrency=args.concurrency,
                         max_mb=args.max_mb, max_seconds=args.max_seconds)
    try:
        launch_app(app, options, block=True)
    except OSError:  # Gradio's message names its environment variables, not these options
        fail(f"cannot serve on {args.host}:{args.port}: the port is taken or the address is not this machine's; "
             "choose another --port or --host")
    except KeyboardInterrupt:
        pass
