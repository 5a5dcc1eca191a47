"""The Gradio page of ``sfvideo app`` and its HTTP API.

The page: upload a video or pick an example; it shows the top-5 (``gr.Label``), for a video longer
than one clip the timeline picture and its table, and an animated GIF of the centre clip with every
token's RoI and sampling points at the layer the slider picks. The same analysis is the API
endpoint ``/classify`` (one video file in; the top-5, a status line, the RoI GIF, the timeline
picture and table out), so ``gradio_client`` can use the app as a small HTTP service.

Nothing leaves the machine: Gradio's analytics and version check and huggingface_hub's telemetry
are switched off before Gradio is imported (:data:`OFFLINE_ENVIRONMENT`), no share link is made,
and the page uses the fonts Gradio serves itself. Requests wait in a queue that runs
``concurrency`` analyses at a time; an upload above ``max_mb`` is refused by Gradio before it
lands, and one above ``max_seconds``, a file that is not a video or a corrupt one gets a sentence
in the page (:class:`~sfvideo.app.analysis.InputRejected`), never a traceback.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .analysis import TIMELINE_HEADERS, AppModel, InputRejected, analyse_video, render_layer, timeline_rows

logger = logging.getLogger("sfvideo.app")

# Set before gradio is imported (it reads them then): no analytics, no version check, no telemetry.
OFFLINE_ENVIRONMENT = {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_DISABLE_TELEMETRY": "1",
                       "GRADIO_SHARE": "False", "GRADIO_MCP_SERVER": "False", "GRADIO_SSR_MODE": "False"}
API_NAME = "classify"
WORK_MAX_AGE_S = 3600  # per-request picture folders older than this are removed
QUEUE_PER_WORKER = 16
VIDEO_HEIGHT = 320  # pixels of the upload's preview  # requests that may wait per concurrent analysis before the queue refuses more


@dataclass
class AppOptions:
    """How the app serves: address, examples, limits, concurrency."""

    host: str = "127.0.0.1"
    port: int = 7860
    examples: Sequence[Path] = ()
    concurrency: int = 1
    max_mb: float = 200.0
    max_seconds: float = 600.0


def import_gradio():
    """``gradio``, imported with :data:`OFFLINE_ENVIRONMENT` in force.

    Raises:
        ImportError: with the install command, when the ``app`` extra is missing.
    """
    for key, value in OFFLINE_ENVIRONMENT.items():
        os.environ[key] = value
    try:
        import gradio
    except ImportError as err:
        raise ImportError(f"sfvideo app needs Gradio: pip install \"sfvideo[app]\" ({err})") from None
    return gradio


class Handlers:
    """The page's callbacks, bound to one loaded model and a folder for the pictures."""

    def __init__(self, app: AppModel, options: AppOptions, work_dir: Path):
        self.app, self.options, self.work_dir = app, options, work_dir

    def classify(self, video: str | None, layer: float | None = None):
        """Outputs: top-5, status, RoI GIF, timeline picture, timeline table, state."""
        gr = import_gradio()
        request_dir = self._request_dir()
        try:
            result = analyse_video(self.app, video, request_dir, max_mb=self.options.max_mb,
                                   max_seconds=self.options.max_seconds)
        except InputRejected as err:
            return self._refused(gr, str(err))
        except Exception:  # a page gets a sentence, the server log the traceback
            logger.exception("analysing %s failed", video)
            return self._refused(gr, "The analysis failed on the server (its log has the details).")
        layer = result.num_layers if layer is None else int(layer)
        gif = render_layer(result, layer, request_dir / "rois.gif")
        has_timeline = result.timeline is not None
        return ({name: prob for name, prob in result.top}, f"**{Path(video).name}**: {result.summary}", str(gif),
                gr.update(value=str(result.timeline_png) if has_timeline else None, visible=has_timeline),
                gr.update(value=timeline_rows(result.timeline) if has_timeline else None, visible=has_timeline),
                result)

    @staticmethod
    def _refused(gr, message: str):
        return (None, f"**Not analysed:** {message}", None, gr.update(value=None, visible=False),
                gr.update(value=None, visible=False), None)

    def redraw(self, result, layer: float):
        """The RoI GIF of another layer, from the analysis held in the page's state."""
        if result is None:
            return None
        return str(render_layer(result, int(layer), self._request_dir() / "rois.gif"))

    def _request_dir(self) -> Path:
        """A fresh folder for one request's pictures; folders older than ``WORK_MAX_AGE_S`` go."""
        now = time.time()
        for old in self.work_dir.iterdir():
            if old.is_dir() and now - old.stat().st_mtime > WORK_MAX_AGE_S:
                shutil.rmtree(old, ignore_errors=True)
        path = self.work_dir / uuid.uuid4().hex
        path.mkdir()
        return path


def _intro(app: AppModel, options: AppOptions) -> str:
    p, cfg = app.runner.protocol, app.cfg
    names = app.class_names or []
    return (f"## sfvideo: what the tokens look at\n\n`{cfg.MODEL.ARCH}` from `{app.checkpoint}`: {cfg.MODEL.NUM_CLASSES} "
            f"classes{(' (' + ', '.join(names[:8]) + (', ...' if len(names) > 8 else '') + ')') if names else ''}; "
            f"clips of {p['num_frames']} frames every {p['sampling_rate']} at {p['crop_size']} pixels, "
            f"{p['num_clips'] * p['num_crops']} views per video; {app.runner.runtime}. Upload a video (up to "
            f"{options.max_mb:g} MB and {options.max_seconds:g} s) or pick an example. Each token of the model reads "
            "the video only inside its own spatiotemporal box, at its sampling points (the dots): the animation shows "
            "them on the clip the model saw, layer by layer.")


def build_app(app: AppModel, options: AppOptions, num_layers: int, work_dir: Path):
    """The ``gr.Blocks`` page (not launched)."""
    gr = import_gradio()
    handlers = Handlers(app, options, work_dir)
    with gr.Blocks(title="sfvideo app", analytics_enabled=False, delete_cache=(WORK_MAX_AGE_S, WORK_MAX_AGE_S)) as page:
        gr.Markdown(_intro(app, options))
        with gr.Row():
            with gr.Column():
                video = gr.Video(label="video", sources=["upload"], height=VIDEO_HEIGHT, elem_id="video")
                run = gr.Button("Classify", variant="primary", elem_id="classify")
                if options.examples:
                    gr.Examples([[str(p)] for p in options.examples], inputs=[video], label="examples")
            with gr.Column():
                status = gr.Markdown(elem_id="status")
                label = gr.Label(num_top_classes=5, label="top-5", elem_id="top5")
        with gr.Row():
            rois = gr.Image(label="token RoIs (boxes) and sampling points (dots) on the centre clip", type="filepath",
                            elem_id="rois")
            layer = gr.Slider(0, num_layers, value=num_layers, step=1, elem_id="layer",
                              label=f"layer (0: initial RoIs, {num_layers}: final)")
        with gr.Row():
            timeline_png = gr.Image(label="timeline", type="filepath", visible=False, elem_id="timeline")
            timeline_table = gr.Dataframe(headers=TIMELINE_HEADERS, label="windows", visible=False, elem_id="windows")
        state = gr.State()
        outputs = [label, status, rois, timeline_png, timeline_table, state]
        # one concurrency group: an upload's analysis and a click's share the --concurrency limit
        run.click(handlers.classify, [video, layer], outputs, api_name=API_NAME, concurrency_id="analysis")
        video.change(handlers.classify, [video, layer], outputs, api_visibility="private", concurrency_id="analysis")
        layer.release(handlers.redraw, [state, layer], [rois], api_visibility="private")
    return page.queue(default_concurrency_limit=options.concurrency, max_size=QUEUE_PER_WORKER * options.concurrency)


def count_layers(app: AppModel) -> int:
    """Adjustment steps of the model (the slider's range), from one forward pass on a blank clip."""
    import torch

    p = app.runner.protocol
    param = next(app.model.parameters())
    clip = torch.zeros(1, 3, p["num_frames"], p["crop_size"], p["crop_size"], device=param.device)  # (B, C, T, H, W)
    with torch.inference_mode():
        return len(app.model.forward_details(clip)["rois"]) - 1


def launch_app(app: AppModel, options: AppOptions, block: bool = True, quiet: bool = False) -> Any:
    """Serve the page on ``options.host:options.port``; returns the launched ``gr.Blocks`` (after
    it is closed, with ``block``)."""
    work_dir = Path(tempfile.mkdtemp(prefix="sfvideo-app-"))
    page = build_app(app, options, count_layers(app), work_dir)
    allowed = sorted({str(Path(p).resolve().parent) for p in options.examples} | {str(work_dir)})
    if options.host not in ("127.0.0.1", "localhost", "::1") and not quiet:
        print(f"warning: serving on {options.host}: anyone who reaches this address can use the app (no login)")
    try:
        page.launch(server_name=options.host, server_port=options.port, share=False, inbrowser=False,
                    max_file_size=f"{options.max_mb:g}mb", allowed_paths=allowed, prevent_thread_lock=not block,
                    quiet=quiet, show_error=False)
    finally:
        if block:
            shutil.rmtree(work_dir, ignore_errors=True)
    return page
