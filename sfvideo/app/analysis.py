"""What the browser app computes for one video, without Gradio: checks on the upload, the top-5,
a timeline for videos longer than one clip, and the tokens' RoIs and sampling points at every
layer of the model on the centre clip.

A rejected upload (too large, too long, not a video, corrupt) raises :class:`InputRejected`
with the sentence the page shows.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger("sfvideo.app")


class InputRejected(ValueError):
    """An upload the app does not analyse; the message is meant for the page."""


@dataclass
class AppModel:
    """The loaded checkpoint: ``runner`` gives the top-5 (the fastest CPU runtime) and ``model``
    (PyTorch, with ``forward_details``) the RoIs; ``cfg`` is the config rebuilt from the checkpoint."""

    runner: Any  # sfvideo.deploy.run.Runner
    model: Any  # torch.nn.Module
    cfg: Any
    checkpoint: str

    @property
    def class_names(self) -> list[str] | None:
        return self.runner.class_names

    @property
    def clip_seconds(self) -> float:
        from ..deploy.timeline import default_window

        return default_window(self.runner.protocol)


@dataclass
class Analysis:
    """The results of one video.

    Attributes:
        top: ``[(class name, probability)]``, best first.
        timeline: ``run_timeline``'s result (None for a video no longer than one clip).
        timeline_png: its picture.
        frames: the centre clip's frames (T, H, W, 3) uint8, as the model saw them.
        rois, points: per layer (0: the initial RoIs), (N, 6) and (N, P, 3) or None, in [0, 1].
        summary: one line for the page.
    """

    top: list[tuple[str, float]]
    frames: np.ndarray
    rois: list[np.ndarray]
    points: list[np.ndarray | None]
    summary: str
    timeline: dict[str, Any] | None = None
    timeline_png: Path | None = None

    @property
    def num_layers(self) -> int:
        """Adjustment steps: layers 0 (initial RoIs) to ``num_layers`` can be drawn."""
        return len(self.rois) - 1


def load_app_model(cfg, class_names: list[str] | None, runtime: str = "auto", threads: int | None = None,
                   log=print) -> AppModel:
    """The checkpoint of ``cfg`` (``TEST.CHECKPOINT``) for the app: its fastest runner, and the
    PyTorch model for the RoIs (the runner's own when it runs eager)."""
    from ..deploy.run import checkpoint_runner, torch_runner

    runner = checkpoint_runner(cfg, class_names, runtime, threads, log=log)
    model = runner.model if runner.model is not None else torch_runner(cfg, class_names, threads).model
    return AppModel(runner, model.eval(), cfg, str(cfg.TEST.CHECKPOINT))


VIDEO_SUFFIXES = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v")
MAX_EXAMPLES = 24


def example_videos(directory: str | os.PathLike | None = None, log=print) -> list[Path]:
    """The example videos of the page: the videos in ``directory`` (sorted, at most
    ``MAX_EXAMPLES``), else one held-out clip per class of the toy dataset (made once into
    sfvideo's cache).

    Raises:
        FileNotFoundError: ``directory`` does not exist or holds no video.
    """
    if directory is not None:
        found = sorted(p for p in Path(directory).rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
        if not found:
            raise FileNotFoundError(f"--examples {directory}: no video files ({', '.join(VIDEO_SUFFIXES)}) there")
        return found[:MAX_EXAMPLES]
    from ..data.toy import make_toy_dataset
    from ..deploy.run import cache_dir

    toy = make_toy_dataset(cache_dir() / "app-examples", train_per_class=0, val_per_class=1, workers=1)
    if toy.generated:
        log(f"wrote the toy dataset's held-out examples into {toy.root}")
    lines = toy.lists["val"].read_text().split("\n")
    return [toy.root / line.rsplit(" ", 1)[0] for line in lines if line.strip()]


def check_upload(path: str | os.PathLike | None, max_mb: float, max_seconds: float) -> tuple[int, float]:
    """``(frames, fps)`` of an upload the app takes.

    Raises:
        InputRejected: no file, larger than ``max_mb``, longer than ``max_seconds``, or not a
            readable video (the sentence names which).
    """
    from ..data.pyav_reader import DecodeError, probe

    if path is None or not os.path.isfile(path):
        raise InputRejected("Upload a video, or pick one of the examples.")
    size_mb = os.path.getsize(path) / 2**20
    if size_mb > max_mb:
        raise InputRejected(f"The file is {size_mb:.1f} MB; this app takes videos up to {max_mb:g} MB.")
    name = Path(path).name
    try:
        frames, fps = probe(path)
    except DecodeError as err:
        reason = _reason(err, path)
        raise InputRejected(f"{name} is not a video this app can read ({reason}). Upload an mp4, webm, "
                            "mkv, avi or mov file.") from None
    seconds = frames / fps
    if seconds > max_seconds:
        raise InputRejected(f"{name} lasts {seconds:.1f} s; this app takes videos up to {max_seconds:g} s.")
    return frames, fps


def analyse_video(app: AppModel, path: str | os.PathLike | None, work_dir: str | os.PathLike, *, topk: int = 5,
                  max_mb: float = float("inf"), max_seconds: float = float("inf")) -> Analysis:
    """Top-``topk``, the timeline (for a video longer than one clip) and the RoIs of ``path``,
    whose pictures go into ``work_dir``.

    Raises:
        InputRejected: the upload is refused (:func:`check_upload`) or cannot be decoded.
    """
    from ..data.pyav_reader import DecodeError
    from ..deploy.run import top_classes

    frames, fps = check_upload(path, max_mb, max_seconds)
    seconds = frames / fps
    try:
        top = [(name, prob) for _, name, prob in top_classes(app.runner, str(path), topk)]
        details = _details(app, path)
        tl, png = _timeline(app, path, Path(work_dir)) if seconds > app.clip_seconds else (None, None)
    except DecodeError as err:
        logger.warning("%s: %s", path, err)
        raise InputRejected(f"{Path(path).name} could not be decoded ({_reason(err, path)}).") from None
    p = app.runner.protocol
    summary = (f"{seconds:.1f} s at {fps:.3g} fps; {p['num_clips'] * p['num_crops']} test views of "
               f"{p['num_frames']} frames ({app.clip_seconds:.2f} s each); {app.runner.runtime}"
               + (f"; timeline of {len(tl['windows'])} windows" if tl else ""))
    return Analysis(top, summary=summary, timeline=tl, timeline_png=png, **details)


def _reason(err: Exception, path: str | os.PathLike) -> str:
    """A decoder's message without the server's file path (the page names the file) or errno codes."""
    text = re.sub(r"\[Errno -?\d+\] ", "", str(err)).replace(f": '{path}'", "").replace(str(path), "")
    return text.strip(" :") or type(err).__name__


def _details(app: AppModel, path: str | os.PathLike) -> dict[str, Any]:
    """The centre clip's frames and every layer's RoIs and points (``model.forward_details``)."""
    import torch

    from ..viz.rois import load_clip, to_numpy, unnormalize_clip

    clip = load_clip(path, app.cfg)  # (C, T, S, S), normalised
    device = next(app.model.parameters()).device
    with torch.inference_mode():
        details = app.model.forward_details(clip.unsqueeze(0).to(device))  # batch of one
    rois = [to_numpy(r[0]) for r in details["rois"]]  # L + 1 of (N, 6)
    points = [None] + [to_numpy(p[0]) for p in details["points"]]  # step k samples in rois[k]
    frames = unnormalize_clip(clip, app.cfg.DATA.MEAN, app.cfg.DATA.STD)  # (T, H, W, 3)
    return {"frames": frames, "rois": rois, "points": points}


def _timeline(app: AppModel, path: str | os.PathLike, work_dir: Path) -> tuple[dict[str, Any], Path]:
    from ..deploy.run import timeline

    result = timeline(app.runner, str(path), str(work_dir / "timeline"), window_s=None, stride_s=None,
                      progress=False)
    return result, work_dir / "timeline" / "timeline.png"


def timeline_rows(result: dict[str, Any]) -> list[list[Any]]:
    """The timeline as table rows: start, end (s), top-1 class, its probability (%)."""
    return [[w["start_s"], w["end_s"], w["top1"], round(100 * w["top1_prob"], 1)] for w in result["windows"]]


TIMELINE_HEADERS = ["start (s)", "end (s)", "top-1", "probability (%)"]


def layer_name(layer: int, num_layers: int) -> str:
    """How the page names layer ``layer`` of the RoI picture."""
    if layer == 0:
        return "initial RoIs"
    return f"layer {layer}" + (" (final)" if layer == num_layers else "")


def render_layer(analysis: Analysis, layer: int, out: str | os.PathLike, fps: float = 4.0) -> Path:
    """An animated GIF of the centre clip with every token's RoI (and the points it sampled there)
    at ``layer`` (0: the initial RoIs; clamped into range)."""
    from ..viz.rois import RoiStage, render_gif_frames, save_gif

    layer = int(min(max(layer, 0), analysis.num_layers))
    stage = RoiStage(layer_name(layer, analysis.num_layers), analysis.rois[layer], analysis.points[layer])
    return save_gif(render_gif_frames(analysis.frames, [stage]), out, fps)
