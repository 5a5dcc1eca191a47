"""Drawing the tokens' spatiotemporal RoIs and sampling points over a clip (Pillow only).

Each token has one colour across all frames and all stages. On frame ``f`` of a clip of ``T``
frames (frame ``f`` covers the time interval ``[f / T, (f + 1) / T]``, the same convention as the
model's trilinear sampling with ``align_corners=False``), a token's box is drawn

* solid, when its time slab ``[t0, t1]`` overlaps the frame's interval (more than at an end);
* faint and dashed otherwise (the token exists but does not look at this frame).

A sampling point ``(x, y, t)`` is drawn as a dot on the frame whose interval contains ``t``.

A *stage* is one snapshot of the geometry: the initial RoIs, or the RoIs after an adjustment
step with the points sampled in them. ``save_roi_visualization`` writes a PNG grid (one block of
frames per stage, a legend of token colours and a title) and an animated GIF (stages side by side,
one GIF frame per clip frame), so the initial and final RoIs can be compared.

Geometry comes from ``model.forward_details(clip)``: ``rois`` is a list of (B, N, 2S) tensors
(the initial RoIs, then the RoIs after each adjustment) and ``points`` a list of (B, N, P, S)
tensors, one per sampling step, sampled in the RoIs of the same step (``rois[k + 1]``);
coordinates are (x0, y0, t0, x1, y1, t1) and (x, y, t) in [0, 1]. S = 2 (image RoIs) is drawn as
boxes present on every frame.
"""

from __future__ import annotations

import colorsys
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

FAINT_ALPHA = 110  # opacity (of 255) of the dashed box of a token that does not see the frame
BACKGROUND = (24, 24, 24)  # canvas colour around the frames
TEXT = (235, 235, 235)


# ---------------------------------------------------------------------------------------------
# Conversions
# ---------------------------------------------------------------------------------------------
def to_numpy(x: Any) -> np.ndarray:
    """A tensor (any device, with or without grad) or array-like as a numpy array."""
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x)


def unnormalize_clip(video: Any, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """A normalised clip (C, T, H, W) back to uint8 frames (T, H, W, C) for drawing.

    Args:
        video: float tensor or array (C, T, H, W), normalised as ``(x / 255 - mean) / std``.
        mean, std: per-channel values on the [0, 1] scale (``cfg.DATA.MEAN``, ``cfg.DATA.STD``).
    """
    v = to_numpy(video).astype(np.float32)  # (C, T, H, W)
    if v.ndim != 4:
        raise ValueError(f"expected a clip (C, T, H, W), got shape {v.shape}")
    m = np.asarray(mean, np.float32).reshape(-1, 1, 1, 1)  # (C, 1, 1, 1)
    s = np.asarray(std, np.float32).reshape(-1, 1, 1, 1)
    frames = (v * s + m) * 255.0  # (C, T, H, W)
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8).transpose(1, 2, 3, 0)  # (T, H, W, C)


def token_colors(num_tokens: int) -> np.ndarray:
    """Distinct, saturated colours (N, 3) uint8: golden-ratio hues, alternating brightness."""
    colors = []
    for i in range(num_tokens):
        hue = (i * 0.618033988749895) % 1.0
        sat, val = (0.85, 1.0) if i % 2 == 0 else (0.65, 0.85)
        colors.append([round(255 * c) for c in colorsys.hsv_to_rgb(hue, sat, val)])
    return np.asarray(colors, dtype=np.uint8).reshape(num_tokens, 3)


# ---------------------------------------------------------------------------------------------
# Time
# ---------------------------------------------------------------------------------------------
def split_roi(rois: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(N, 2S) RoIs -> lo (N, S), hi (N, S), t0 (N,), t1 (N,); S = 2 RoIs span all time."""
    rois = np.asarray(rois, dtype=np.float64)
    s = rois.shape[-1] // 2
    if rois.ndim != 2 or s not in (2, 3) or rois.shape[-1] != 2 * s:
        raise ValueError(f"rois must be (N, 4) or (N, 6), got shape {rois.shape}")
    lo, hi = rois[:, :s], rois[:, s:]  # (N, S) each
    if s == 2:
        return lo, hi, np.zeros(len(rois)), np.ones(len(rois))
    return lo, hi, lo[:, 2], hi[:, 2]


def active_tokens(rois: np.ndarray, frame: int, num_frames: int) -> np.ndarray:
    """Which tokens' time slabs overlap frame ``frame`` of ``num_frames`` -> bool (N,).

    Overlap is strict: a slab that only touches the frame's interval at an end does not count.
    """
    _, _, t0, t1 = split_roi(rois)
    f_lo, f_hi = frame / num_frames, (frame + 1) / num_frames
    lo, hi = np.minimum(t0, t1), np.maximum(t0, t1)
    return (lo < f_hi) & (hi > f_lo)


def point_frames(points: np.ndarray, num_frames: int) -> np.ndarray:
    """Frame index whose time interval holds each point: (N, P, 3) -> (N, P) int (clamped)."""
    t = np.asarray(points, dtype=np.float64)[..., 2]  # (N, P)
    return np.clip(np.floor(t * num_frames), 0, num_frames - 1).astype(int)


# ---------------------------------------------------------------------------------------------
# Drawing one frame
# ---------------------------------------------------------------------------------------------
def _font(size: int = 12) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


def _dashed_rectangle(draw: ImageDraw.ImageDraw, box: tuple[float, float, float, float],
                      fill: tuple[int, ...], width: int, dash: int) -> None:
    x0, y0, x1, y1 = box
    for (ax, ay), (bx, by) in (((x0, y0), (x1, y0)), ((x1, y0), (x1, y1)), ((x1, y1), (x0, y1)), ((x0, y1), (x0, y0))):
        length = math.hypot(bx - ax, by - ay)
        steps = max(1, int(length // (2 * dash)) + 1)
        for k in range(steps):
            s, e = 2 * k * dash / max(length, 1e-9), min((2 * k + 1) * dash / max(length, 1e-9), 1.0)
            if s >= 1.0:
                break
            draw.line([(ax + s * (bx - ax), ay + s * (by - ay)), (ax + e * (bx - ax), ay + e * (by - ay))],
                      fill=fill, width=width)


def _pixel_box(lo: np.ndarray, hi: np.ndarray, width: int, height: int) -> tuple[float, float, float, float] | None:
    """[0, 1] corners -> pixel box clipped to the image (None when entirely outside)."""
    x0, x1 = sorted((lo[0] * width, hi[0] * width))
    y0, y1 = sorted((lo[1] * height, hi[1] * height))
    x0, y0 = max(x0, 0.0), max(y0, 0.0)
    x1, y1 = min(x1, width) - 1, min(y1, height) - 1
    if x1 < x0 or y1 < y0:
        return None
    return x0, y0, x1, y1


def draw_frame(
    frame: np.ndarray,
    frame_index: int,
    num_frames: int,
    rois: np.ndarray,
    points: np.ndarray | None = None,
    colors: np.ndarray | None = None,
    scale: int = 1,
    line_width: int | None = None,
) -> Image.Image:
    """One frame with every token's RoI (solid if it sees the frame, faint dashed otherwise).

    Args:
        frame: uint8 (H, W, 3).
        frame_index: index ``f`` of this frame in the clip.
        num_frames: frames T of the clip the RoIs' time coordinates refer to.
        rois: (N, 6) (x0, y0, t0, x1, y1, t1) or (N, 4) in [0, 1].
        points: optional (N, P, 3) (x, y, t) or (N, P, 2) in [0, 1].
        colors: (N, 3) uint8 token colours (default ``token_colors(N)``).
        scale: integer upscaling of the frame before drawing (nearest neighbour).
        line_width: box outline width in pixels (default: ``scale``, at least 1).

    Returns:
        RGB image (H * scale, W * scale).
    """
    rois = to_numpy(rois)
    n = rois.shape[0]
    colors = token_colors(n) if colors is None else np.asarray(colors, np.uint8)
    img = Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8)).convert("RGB")
    if scale != 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    w, h = img.size
    lw = max(1, scale) if line_width is None else line_width
    lo, hi, _, _ = split_roi(rois)
    active = active_tokens(rois, frame_index, num_frames)  # (N,)

    faint = Image.new("RGBA", img.size, (0, 0, 0, 0))
    faint_draw = ImageDraw.Draw(faint)
    for i in np.flatnonzero(~active):
        box = _pixel_box(lo[i], hi[i], w, h)
        if box is not None:
            _dashed_rectangle(faint_draw, box, (*colors[i].tolist(), FAINT_ALPHA), lw, dash=max(3, 2 * lw))
    img = Image.alpha_composite(img.convert("RGBA"), faint).convert("RGB")

    draw = ImageDraw.Draw(img)
    for i in np.flatnonzero(active):
        box = _pixel_box(lo[i], hi[i], w, h)
        if box is not None:
            draw.rectangle(box, outline=tuple(colors[i].tolist()), width=lw)
    if points is not None:
        pts = to_numpy(points).astype(np.float64)  # (N, P, S)
        on_frame = point_frames(pts, num_frames) == frame_index if pts.shape[-1] == 3 else np.ones(pts.shape[:2], bool)
        r = max(1.0, 0.75 * scale)
        for i, j in zip(*np.nonzero(on_frame)):
            x, y = pts[i, j, 0] * w, pts[i, j, 1] * h
            if 0 <= x < w and 0 <= y < h:
                draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(colors[i].tolist()))
    return img


def draw_clip(
    frames: np.ndarray,
    rois: np.ndarray,
    points: np.ndarray | None = None,
    colors: np.ndarray | None = None,
    scale: int = 1,
) -> list[Image.Image]:
    """``draw_frame`` for every frame of a clip (T, H, W, 3) -> T images."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3), got shape {frames.shape}")
    t = frames.shape[0]
    return [draw_frame(frames[f], f, t, rois, points, colors, scale) for f in range(t)]


# ---------------------------------------------------------------------------------------------
# Stages (initial vs adjusted RoIs) from the model's details
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RoiStage:
    """One snapshot of the geometry of one clip.

    Attributes:
        name: label drawn next to it (e.g. "initial RoIs", "step 6 (final)").
        rois: (N, 2S) array.
        points: (N, P, S) array of the points sampled in these RoIs, or None.
    """

    name: str
    rois: np.ndarray
    points: np.ndarray | None = None


def stages_from_details(details: Mapping[str, Any], index: int = 0, steps: str | Sequence[int] = "ends") -> list[RoiStage]:
    """Stages of sample ``index`` from ``model.forward_details(clip)``.

    Args:
        details: dict with ``rois`` (list of L + 1 tensors (B, N, 2S): initial, then after each
            adjustment) and optionally ``points`` (list of L tensors (B, N, P, S), step k sampled
            in ``rois[k + 1]``; a list of L + 1 is paired index by index).
        index: which sample of the batch.
        steps: "ends" (initial and final), "all", or explicit indices into ``rois``
            (negative indices count from the end).

    Returns:
        One ``RoiStage`` per selected entry of ``rois``.
    """
    rois = list(details["rois"])
    points = list(details.get("points") or [])
    if not rois:
        raise ValueError("details['rois'] is empty")
    last = len(rois) - 1
    if steps == "ends":
        chosen = [0, last] if last > 0 else [0]
    elif steps == "all":
        chosen = list(range(len(rois)))
    else:
        chosen = [k % len(rois) for k in steps]
    stages = []
    for k in chosen:
        if len(points) == len(rois):
            pts = points[k]
        elif len(points) == last and k > 0:
            pts = points[k - 1]
        else:
            pts = None
        name = "initial RoIs" if k == 0 else f"step {k}" + (" (final)" if k == last else "")
        stages.append(RoiStage(name, to_numpy(rois[k][index]), None if pts is None else to_numpy(pts[index])))
    return stages


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------
def default_scale(frame_size: int, target: int = 224) -> int:
    """Integer upscaling so that a frame is drawn at least ``target`` pixels wide."""
    return max(1, math.ceil(target / max(1, frame_size)))


def _drawing_defaults(frames: np.ndarray, stages: Sequence[RoiStage], colors: np.ndarray | None,
                      scale: int | None) -> tuple[np.ndarray, int, np.ndarray]:
    """Frames as an array (T, H, W, 3), the upscaling (default ``default_scale``) and the token
    colours (default ``token_colors(N)``) shared by the grid and the GIF renderers."""
    frames = np.asarray(frames)
    scale = default_scale(frames.shape[2]) if scale is None else scale
    colors = token_colors(len(stages[0].rois)) if colors is None else colors
    return frames, scale, colors


def _legend(colors: np.ndarray, width: int, font: ImageFont.ImageFont) -> Image.Image:
    """Swatches "i" in each token's colour, wrapped to ``width``."""
    cell_w, cell_h, sw = 40, 16, 10
    per_row = max(1, (width - 8) // cell_w)
    rows = math.ceil(len(colors) / per_row) if len(colors) else 0
    img = Image.new("RGB", (width, 20 + rows * cell_h), BACKGROUND)
    draw = ImageDraw.Draw(img)
    draw.text((4, 2), "tokens (solid: sees this frame; dashed: does not; dots: sampling points)", fill=TEXT, font=font)
    for i, c in enumerate(colors):
        x, y = 4 + (i % per_row) * cell_w, 20 + (i // per_row) * cell_h
        draw.rectangle((x, y + 2, x + sw, y + 2 + sw), fill=tuple(c.tolist()))
        draw.text((x + sw + 3, y), str(i), fill=TEXT, font=font)
    return img


def render_grid(
    frames: np.ndarray,
    stages: Sequence[RoiStage],
    colors: np.ndarray | None = None,
    scale: int | None = None,
    max_columns: int = 8,
    title: str = "",
    legend: bool = True,
) -> Image.Image:
    """A PNG-ready grid: for each stage, its frames (wrapped at ``max_columns``), then a legend.

    Args:
        frames: uint8 (T, H, W, 3), the clip the model saw.
        stages: snapshots to draw, e.g. from ``stages_from_details``.
        colors: (N, 3) token colours (default ``token_colors(N)``), shared by all stages.
        scale: frame upscaling (default: at least 224 pixels wide).
        max_columns: frames per grid row.
        title: text at the top.
        legend: draw the token colour legend.
    """
    frames, scale, colors = _drawing_defaults(frames, stages, colors, scale)
    t, h, w, _ = frames.shape
    font = _font(12)
    cols = min(t, max_columns)
    rows_per_stage = math.ceil(t / cols)
    pad, label_h, title_h = 4, 18, 22 if title else 0
    cell_w, cell_h = w * scale, h * scale
    width = pad + cols * (cell_w + pad)
    stage_h = label_h + rows_per_stage * (cell_h + pad)
    legend_img = _legend(colors, width, font) if legend else None
    height = title_h + len(stages) * stage_h + pad + (legend_img.height if legend_img else 0)
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((pad, 4), title, fill=TEXT, font=_font(14))
    for s, stage in enumerate(stages):
        top = title_h + s * stage_h
        draw.text((pad, top + 3), stage.name, fill=TEXT, font=font)
        for f, img in enumerate(draw_clip(frames, stage.rois, stage.points, colors, scale)):
            r, c = divmod(f, cols)
            x, y = pad + c * (cell_w + pad), top + label_h + r * (cell_h + pad)
            canvas.paste(img, (x, y))
            draw.text((x + 2, y + 1), f"t={f}", fill=TEXT, font=font)
    if legend_img is not None:
        canvas.paste(legend_img, (0, height - legend_img.height))
    return canvas


def render_gif_frames(
    frames: np.ndarray,
    stages: Sequence[RoiStage],
    colors: np.ndarray | None = None,
    scale: int | None = None,
    title: str = "",
) -> list[Image.Image]:
    """One image per clip frame with the stages side by side (labelled), for an animated GIF."""
    frames, scale, colors = _drawing_defaults(frames, stages, colors, scale)
    t, h, w, _ = frames.shape
    font = _font(12)
    pad, label_h = 4, 18
    cell_w, cell_h = w * scale, h * scale
    width = pad + len(stages) * (cell_w + pad)
    height = label_h * (2 if title else 1) + cell_h + pad
    drawn = [draw_clip(frames, st.rois, st.points, colors, scale) for st in stages]  # stages x T
    out = []
    for f in range(t):
        canvas = Image.new("RGB", (width, height), BACKGROUND)
        draw = ImageDraw.Draw(canvas)
        top = 0
        if title:
            draw.text((pad, 3), title, fill=TEXT, font=font)
            top = label_h
        for s, stage in enumerate(stages):
            x = pad + s * (cell_w + pad)
            draw.text((x, top + 3), f"{stage.name}  t={f}/{t - 1}", fill=TEXT, font=font)
            canvas.paste(drawn[s][f], (x, top + label_h))
        out.append(canvas)
    return out


def save_gif(images: Sequence[Image.Image], path: str | os.PathLike, fps: float = 4.0) -> Path:
    """Write an animated GIF that loops forever."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=list(images[1:]), duration=max(20, int(1000 / fps)),
                   loop=0, optimize=False)
    return path


def save_roi_visualization(
    frames: np.ndarray,
    stages: Sequence[RoiStage],
    out_dir: str | os.PathLike,
    name: str = "rois",
    title: str = "",
    fps: float = 4.0,
    scale: int | None = None,
) -> dict[str, Path]:
    """Write ``out_dir/{name}.png`` (grid) and ``out_dir/{name}.gif`` (animation).

    Returns:
        ``{"png": path, "gif": path}``.
    """
    if not stages:
        raise ValueError("nothing to draw: no stages")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    colors = token_colors(len(stages[0].rois))
    png = out / f"{name}.png"
    render_grid(frames, stages, colors, scale, title=title).save(png)
    gif = save_gif(render_gif_frames(frames, stages, colors, scale, title=title), out / f"{name}.gif", fps)
    return {"png": png, "gif": gif}


# ---------------------------------------------------------------------------------------------
# Model + video glue (used by tools/visualize_rois.py)
# ---------------------------------------------------------------------------------------------
def load_clip(path: str | os.PathLike, cfg) -> "torch.Tensor":  # noqa: F821
    """The centre clip and centre crop of a video, prepared exactly as validation prepares it
    (``build_test_views(cfg, path, "val")``, decoder fallback included), normalised with
    ``DATA.MEAN``/``DATA.STD``: (C, T, S, S) float."""
    from sfvideo.data.build import build_test_views
    from sfvideo.data.transforms import normalize_clip

    return normalize_clip(build_test_views(cfg, path, "val")[0], cfg.DATA.MEAN, cfg.DATA.STD)  # (C, T, S, S)


def visualize_model_rois(
    model: "torch.nn.Module",  # noqa: F821
    clip: "torch.Tensor",  # noqa: F821
    mean: Sequence[float],
    std: Sequence[float],
    out_dir: str | os.PathLike,
    name: str = "rois",
    class_names: Sequence[str] | None = None,
    steps: str | Sequence[int] = "ends",
) -> dict[str, Any]:
    """Run ``model.forward_details`` on one clip and draw its RoIs.

    Args:
        model: a video SparseFormer with ``forward_details``.
        clip: normalised (C, T, H, W).
        mean, std: normalisation used for ``clip`` (to get the pixels back).
        out_dir, name: where ``{name}.png`` / ``{name}.gif`` (initial vs final stages) and
            ``{name}_all.png`` (every stage) go.
        class_names: for the title's prediction.
        steps: stages of the main figures (see ``stages_from_details``).

    Returns:
        ``{"png", "gif", "png_all": paths, "pred": int, "prob": float}``.
    """
    import torch

    if not hasattr(model, "forward_details"):
        raise TypeError(f"{type(model).__name__} has no forward_details(clip); cannot draw its RoIs")
    model.eval()
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    with torch.no_grad():
        details = model.forward_details(clip.unsqueeze(0).to(device))  # batch of one
    probs = torch.softmax(details["logits"][0].float(), dim=-1)  # (K,)
    pred = int(probs.argmax())
    label = class_names[pred] if class_names and pred < len(class_names) else str(pred)
    title = f"{name}: predicted {label} ({100 * float(probs[pred]):.1f}%)"
    frames = unnormalize_clip(clip, mean, std)  # (T, H, W, 3)
    paths = save_roi_visualization(frames, stages_from_details(details, 0, steps), out_dir, name, title)
    all_stages = stages_from_details(details, 0, "all")
    png_all = Path(out_dir) / f"{name}_all.png"
    render_grid(frames, all_stages, title=title + " - every step").save(png_all)
    return {**paths, "png_all": png_all, "pred": pred, "prob": float(probs[pred])}
