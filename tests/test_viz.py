"""RoI drawing, training curves and the visualisation tools."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from sfvideo.viz import rois as viz
from sfvideo.viz.curves import plot_training_curves, read_metrics

GREY = 90


def _frames(t: int = 4, size: int = 32) -> np.ndarray:
    return np.full((t, size, size, 3), GREY, np.uint8)  # (T, H, W, 3): no token colour occurs by chance


def _color_pixels(img: Image.Image, color: np.ndarray) -> np.ndarray:
    """(K, 2) (y, x) of the pixels exactly equal to ``color``."""
    arr = np.asarray(img)
    return np.argwhere((arr == color).all(-1))


# ------------------------------------------------------------------------------------ pure helpers
def test_token_colors_distinct():
    c = viz.token_colors(50)
    assert c.shape == (50, 3) and c.dtype == np.uint8
    assert len({tuple(x) for x in c}) == 50
    assert not (c == GREY).all(-1).any()


def test_unnormalize_clip_inverts_normalisation():
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    frames = np.random.default_rng(0).integers(0, 256, size=(3, 8, 10, 3), dtype=np.uint8)  # (T, H, W, C)
    video = (torch.from_numpy(frames).permute(3, 0, 1, 2).float() / 255 - torch.tensor(mean).view(3, 1, 1, 1)) \
        / torch.tensor(std).view(3, 1, 1, 1)  # (C, T, H, W)
    np.testing.assert_array_equal(viz.unnormalize_clip(video, mean, std), frames)


def test_active_tokens_and_point_frames():
    rois = np.array([[0, 0, 0.0, 1, 1, 0.25], [0, 0, 0.5, 1, 1, 1.0], [0, 0, 0.3, 1, 1, 0.35]])
    got = np.stack([viz.active_tokens(rois, f, 4) for f in range(4)])  # (T, N)
    np.testing.assert_array_equal(got, [[1, 0, 0], [0, 0, 1], [0, 1, 0], [0, 1, 0]])  # touching: no
    assert viz.active_tokens(rois[:, [0, 1, 3, 4]], 3, 4).all()  # 2-D RoIs: always active
    pts = np.array([[[0.5, 0.5, 0.0], [0.5, 0.5, 0.49], [0.5, 0.5, 0.5], [0.5, 0.5, 1.0]]])
    np.testing.assert_array_equal(viz.point_frames(pts, 4), [[0, 1, 2, 3]])


# ------------------------------------------------------------------------------------ drawing
def test_token_colour_drawn_inside_its_box_only_on_its_frames():
    t, size, scale = 4, 32, 2
    rois = np.array([[0.25, 0.25, 0.0, 0.75, 0.5, 0.5],  # token 0: first half of the clip
                     [0.0, 0.6, 0.5, 0.4, 1.0, 1.0]])  # token 1: second half
    colors = viz.token_colors(2)
    images = viz.draw_clip(_frames(t, size), rois, None, colors, scale)
    assert len(images) == t and images[0].size == (size * scale, size * scale)
    for f, img in enumerate(images):
        for i in range(2):
            px = _color_pixels(img, colors[i])
            x0, y0, x1, y1 = rois[i, [0, 1, 3, 4]] * size * scale
            if viz.active_tokens(rois, f, t)[i]:
                assert len(px) > 0, f"token {i} not drawn on frame {f}"
                assert (px[:, 1] >= x0 - 1).all() and (px[:, 1] <= x1).all()
                assert (px[:, 0] >= y0 - 1).all() and (px[:, 0] <= y1).all()
                # the outline, not a filled box: the box centre keeps the frame colour
                cy, cx = int((y0 + y1) / 2), int((x0 + x1) / 2)
                assert (np.asarray(img)[cy, cx] == GREY).all()
            else:  # faint: blended with the frame, never the exact colour; but visible
                assert len(px) == 0, f"token {i} drawn solid on frame {f} outside its time slab"
                arr = np.asarray(img).astype(int)
                y, x = int(y0), int(x0)
                assert np.abs(arr[y : y + 2, x : x + 6] - GREY).sum() > 0


def test_points_drawn_on_their_frame():
    t, size = 4, 32
    rois = np.array([[0.0, 0.0, 0.0, 1.0, 1.0, 1.0]])
    points = np.array([[[0.25, 0.25, 0.1], [0.75, 0.75, 0.9]]])  # (N, P, 3): frames 0 and 3
    colors = np.array([[255, 0, 0]], np.uint8)
    images = viz.draw_clip(_frames(t, size), rois, points, colors, scale=4)
    for f, (px, py) in ((0, (32, 32)), (3, (96, 96))):
        assert (np.asarray(images[f])[py, px] == colors[0]).all()
    assert (np.asarray(images[1])[32, 32] == GREY).all() and (np.asarray(images[0])[96, 96] == GREY).all()


def _details(b: int = 1, n: int = 3, p: int = 4, steps: int = 2) -> dict:
    g = torch.Generator().manual_seed(0)
    lo = torch.rand(b, n, 3, generator=g) * 0.5
    rois = [torch.cat([lo, lo + 0.4], -1)]  # (B, N, 6)
    for _ in range(steps):
        rois.append((rois[-1] + 0.05).clamp(0, 1))
    points = [r[..., None, :3] + 0.2 * torch.rand(b, n, p, 3, generator=g) for r in rois[1:]]  # (B, N, P, 3)
    return {"logits": torch.randn(b, 5, generator=g), "rois": rois, "points": points}


def test_stages_from_details_pairs_points_with_adjusted_rois():
    d = _details(b=2, steps=3)
    ends = viz.stages_from_details(d, index=1)
    assert [s.name for s in ends] == ["initial RoIs", "step 3 (final)"]
    assert ends[0].points is None
    np.testing.assert_array_equal(ends[1].rois, d["rois"][3][1].numpy())
    np.testing.assert_array_equal(ends[1].points, d["points"][2][1].numpy())
    assert len(viz.stages_from_details(d, steps="all")) == 4
    assert [s.name for s in viz.stages_from_details(d, steps=[1, -1])] == ["step 1", "step 3 (final)"]


def test_save_roi_visualization_png_and_gif(tmp_path):
    t, size = 6, 32
    frames = np.random.default_rng(0).integers(0, 256, (t, size, size, 3), dtype=np.uint8)
    stages = viz.stages_from_details(_details(n=3), 0)
    paths = viz.save_roi_visualization(frames, stages, tmp_path, "clip", title="test", scale=2)
    gif = Image.open(paths["gif"])
    assert gif.n_frames == t
    w, h = gif.size
    assert w >= len(stages) * size * 2 and h >= size * 2  # stages side by side
    png = Image.open(paths["png"])
    assert png.mode == "RGB" and png.width >= t * size * 2 and png.height >= len(stages) * size * 2
    # every token's colour appears in the grid (solid boxes on the frames they see)
    arr = np.asarray(png)
    for c in viz.token_colors(3):
        assert (arr == c).all(-1).any()


class _FakeVideoModel(torch.nn.Module):
    """forward_details with the model contract: logits, L + 1 RoI lists, L point lists."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward_details(self, clip):
        assert clip.dim() == 5 and clip.shape[1] == 3  # (B, 3, T, H, W)
        d = _details(b=clip.shape[0], steps=2)
        d["logits"] = d["logits"] + self.w
        return d


def test_visualize_model_rois(tmp_path):
    clip = torch.randn(3, 4, 32, 32)  # (C, T, H, W)
    out = viz.visualize_model_rois(_FakeVideoModel(), clip, (0.5,) * 3, (0.25,) * 3, tmp_path, "v",
                                   class_names=list("abcde"))
    assert out["png"].is_file() and out["gif"].is_file() and out["png_all"].is_file()
    assert 0 <= out["pred"] < 5 and 0 < out["prob"] <= 1
    assert Image.open(out["gif"]).n_frames == 4
    assert Image.open(out["png_all"]).height > Image.open(out["png"]).height  # 3 stages vs 2


# ------------------------------------------------------------------------------------ curves
def test_plot_training_curves(tmp_path):
    log = tmp_path / "metrics.jsonl"
    rows = [{"epoch": e, "train_loss": 2.0 / (e + 1), "val_top1": 10.0 * e, "lr": 1e-3 * (0.9**e)} for e in range(5)]
    rows[2].pop("val_top1")  # missing keys are fine
    rows.append({"epoch": 4, "train_loss": 0.3, "val_loss": 0.5, "val_top1": 45.0})  # resumed: last wins
    log.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n{not json\n")
    records = read_metrics(log)
    assert [r["epoch"] for r in records] == [0, 1, 2, 3, 4] and records[-1]["val_top1"] == 45.0
    out = plot_training_curves(log, tmp_path / "sub" / "curves.png")
    img = Image.open(out)
    assert img.format == "PNG" and img.width > 600 and img.height > 200
    assert len(np.unique(np.asarray(img.convert("RGB")).reshape(-1, 3), axis=0)) > 10  # something drawn

    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(ValueError, match="no JSON records"):
        plot_training_curves(empty, tmp_path / "e.png")


# ------------------------------------------------------------------------------------ tools
def test_plot_curves_tool(tmp_path):
    from sfvideo.cli import plot_curves

    log = tmp_path / "m.jsonl"
    log.write_text(json.dumps({"epoch": 1, "train_loss": 1.0}) + "\n")
    assert plot_curves.main([str(log), "--out", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_visualize_rois_argument_order():
    from sfvideo.cli import visualize as tool

    a = tool.parse_args(["--cfg", "toy_tiny.yaml", "v.mp4", "--out", "o", "DATA.DECODER", "pyav", "--steps", "all"])
    assert (a.video, a.out, a.steps, a.opts) == ("v.mp4", "o", "all", ["DATA.DECODER", "pyav"])
    b = tool.parse_args(["--cfg", "c", "--checkpoint", "w.pth", "v.mp4", "RNG_SEED", "-1"])
    assert (b.checkpoint, b.out, b.steps, b.opts) == ("w.pth", "", "ends", ["RNG_SEED", "-1"])
