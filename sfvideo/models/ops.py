"""Pure geometry and sampling functions shared by the image (2-D) and video (3-D) models.

Letters: B batch, N tokens, P sampling points, C channels, D token width, T time, H, W space,
S the number of geometric axes (2 for images: x, y; 3 for video: x, y, t).

A RoI is ``(lo_1..lo_S, hi_1..hi_S)`` in [0, 1] coordinates, e.g. ``(x0, y0, t0, x1, y1, t1)``.
These functions always run in fp32 (autocast is disabled inside), since sub-pixel geometry in
bf16 loses whole feature cells.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor


def _fp32(x: Tensor) -> Tensor:
    return x.float() if x.dtype != torch.float32 else x


def roi_adjust(roi: Tensor, adjust: Tensor) -> Tensor:
    """Shift each RoI's centre by ``adjust[:S] * size`` and scale its size by ``exp(adjust[S:])``.

    Args:
        roi: (..., 2S) corners.
        adjust: (..., 2S) predicted deltas.

    Returns:
        (..., 2S) new corners, fp32.
    """
    with torch.autocast(roi.device.type, enabled=False):
        roi, adjust = _fp32(roi), _fp32(adjust)
        s = roi.shape[-1] // 2
        lo, hi = roi[..., :s], roi[..., s:]
        centre = (lo + hi) * 0.5  # (..., S)
        size = (hi - lo).abs()  # (..., S)
        centre = centre + adjust[..., :s] * size
        size = size * adjust[..., s:].exp()
        return torch.cat([centre - 0.5 * size, centre + 0.5 * size], dim=-1)


def sampling_points(roi: Tensor, offset: Tensor, eps: float = 1e-5) -> Tensor:
    """Absolute sampling points from per-token offsets, normalised then scaled by the RoI.

    Offsets of each token are standardised over its P points, per axis,
    ``(o - mean) / (3 * (std + eps))`` (unbiased std), so about 99.7% of a Gaussian cloud
    lands inside the RoI whatever the offsets' raw scale; then multiplied by the RoI's extent
    and added to its centre.

    Args:
        roi: (B, N, 2S) corners.
        offset: (B, N, P*S) raw offsets, interleaved per point (x, y[, t]).
        eps: added to the std (1e-5 in the library layout; 1e-7 in the v1 code).

    Returns:
        (B, N, P, S) absolute points in [0, 1] coordinates (may leave [0, 1]), fp32.
    """
    with torch.autocast(roi.device.type, enabled=False):
        roi, offset = _fp32(roi), _fp32(offset)
        b, n, two_s = roi.shape
        s = two_s // 2
        offset = offset.view(b, n, -1, s)  # (B, N, P, S)
        std, mean = torch.std_mean(offset, dim=2, keepdim=True)  # (B, N, 1, S)
        offset = (offset - mean) / (3.0 * (std + eps))
        lo, hi = roi[..., :s], roi[..., s:]
        centre = ((lo + hi) * 0.5).unsqueeze(2)  # (B, N, 1, S)
        extent = (hi - lo).unsqueeze(2)  # (B, N, 1, S), signed as in the official code
        return centre + offset * extent


def sample_features(points: Tensor, feat: Tensor, padding_mode: str = "zeros") -> Tensor:
    """Read features at continuous points by bilinear (2-D) or trilinear (3-D) interpolation.

    ``align_corners=False``: coordinate 0 is the outer edge of the first cell, 1 the outer edge
    of the last, so [0, 1] covers the whole image or frame stack.

    Args:
        points: (B, N, P, S) with S = 2 (x, y) for feat (B, C, H, W) or S = 3 (x, y, t) for
            feat (B, C, T, H, W); or (1, N, P, S), the same points for every map of the batch.
        feat: the feature map or volume.
        padding_mode: "zeros" (official v1) or "border".

    Returns:
        (B, N, P, C) sampled features, in feat's dtype.
    """
    s = points.shape[-1]
    mode = volume_sampling_mode(points, feat) if s == 3 else "trilinear"
    if mode == "gather":  # broadcasts batch-shared points itself
        return sample_features_gather(points, feat, padding_mode)
    points = points.expand(feat.shape[0], *points.shape[1:])  # grid_sample needs one grid per map
    if mode == "frame_pairs":
        return sample_features_frame_pairs(points, feat, padding_mode)
    b, n, p, _ = points.shape
    with torch.autocast(points.device.type, enabled=False):
        grid = _fp32(points) * 2.0 - 1.0  # (B, N, P, S) in grid_sample's [-1, 1]
        if s == 3:
            grid = grid.unsqueeze(1)  # (B, 1, N, P, 3): a 1 x N x P "output volume"
        elif s != 2:
            raise ValueError(f"points must have 2 or 3 coordinates, got {s}")
        if feat.dtype != grid.dtype:
            grid = grid.to(feat.dtype)
        out = F.grid_sample(feat, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)
    # out: (B, C, N, P) for 2-D, (B, C, 1, N, P) for 3-D
    return out.reshape(b, -1, n, p).permute(0, 2, 3, 1)  # (B, N, P, C)


# How ``sample_features`` reads a feature volume: "trilinear" (one 5-D grid_sample),
# "frame_pairs" (two 4-D grid_samples blended along time; see ``sample_features_frame_pairs``) or
# "gather" (eight corner rows gathered and weighted; see ``sample_features_gather``). None:
# chosen per call by ``volume_sampling_mode``.
VOLUME_SAMPLING = ("trilinear", "frame_pairs", "gather")
_SAMPLING: dict[str, str | None] = {"volume": None}


def volume_sampling_mode(points: Tensor, feat: Tensor) -> str:
    """The mode ``sample_features`` reads a volume with: the one set by ``volume_sampling``, else
    gather on CPU when no gradient is needed (faster than trilinear for inference, slower for
    forward + backward), trilinear otherwise."""
    mode = _SAMPLING["volume"]
    if mode is not None:
        return mode
    needs_grad = torch.is_grad_enabled() and (points.requires_grad or feat.requires_grad)
    return "gather" if feat.device.type == "cpu" and not needs_grad else "trilinear"


@contextlib.contextmanager
def volume_sampling(mode: str) -> Iterator[None]:
    """Within the block, 3-D ``sample_features`` uses ``mode`` (one of ``VOLUME_SAMPLING``).

    ``frame_pairs`` is for exporting to runtimes whose GridSample is 4-D only (ONNX opset < 20,
    TensorRT, OpenVINO); ``gather`` needs no GridSample at all (ONNX Gather and arithmetic). All
    three are the same function to float rounding.
    """
    if mode not in VOLUME_SAMPLING:
        raise ValueError(f"unknown volume sampling {mode!r}; expected one of {VOLUME_SAMPLING}")
    before = _SAMPLING["volume"]
    _SAMPLING["volume"] = mode
    try:
        yield
    finally:
        _SAMPLING["volume"] = before


def sample_features_frame_pairs(points: Tensor, feat: Tensor, padding_mode: str = "zeros") -> Tensor:
    """Trilinear reads of a volume as two 4-D bilinear reads of neighbouring frames, blended in time.

    The T frames are stacked along H into one tall image with a zero row above and below each
    frame (so a bilinear read near a frame's edge meets zeros, as ``grid_sample``'s zero padding
    does, never the next frame); each point reads its frame ``floor(t)`` and the next one, and the
    two are blended by the fractional part of ``t``. Frames outside [0, T) weigh zero ("zeros")
    or the coordinate is clamped first ("border"). Same contract as :func:`sample_features`.
    """
    b, n, p, _ = points.shape
    t, h = feat.shape[2], feat.shape[3]
    with torch.autocast(points.device.type, enabled=False):
        pts = _fp32(points)
        x, y, tc = pts[..., 0], pts[..., 1], pts[..., 2]  # each (B, N, P), [0, 1] coordinates
        tp = tc * t - 0.5  # (B, N, P) continuous frame index (align_corners=False)
        yp = y * h - 0.5  # (B, N, P) continuous row within a frame
        if padding_mode == "border":
            tp = tp.clamp(0.0, t - 1.0)
            yp = yp.clamp(0.0, h - 1.0)
        else:
            yp = yp.clamp(-1.0, float(h))  # beyond one row out, a read sees only the zero rows
        t0 = tp.floor()
        frac = tp - t0  # (B, N, P)
        zero = feat.new_zeros(b, feat.shape[1], t, 1, feat.shape[4])  # (B, C, T, 1, W); not F.pad: ONNX Pad
        tall = torch.cat([zero, feat, zero], dim=3)  # changed at opset 18 and cannot be converted down to 17
        tall = tall.reshape(b, feat.shape[1], t * (h + 2), feat.shape[4])  # (B, C, T(H+2), W)
        gx = x * 2.0 - 1.0
        out = 0.0
        for k, weight in ((0, 1.0 - frac), (1, frac)):
            frame = t0 + k  # (B, N, P)
            inside = ((frame >= 0) & (frame <= t - 1)).to(weight.dtype)
            row = frame.clamp(0, t - 1) * (h + 2) + 1.0 + yp  # (B, N, P) row of the tall image
            gy = (row + 0.5) / (t * (h + 2)) * 2.0 - 1.0
            grid = torch.stack([gx, gy], dim=-1).to(feat.dtype)  # (B, N, P, 2)
            read = F.grid_sample(tall, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)
            out = out + read * (weight * inside).unsqueeze(1).to(read.dtype)  # (B, C, N, P)
    return out.permute(0, 2, 3, 1)  # (B, N, P, C)


def _axis_corners(coord: Tensor, size: int, padding_mode: str) -> list[tuple[Tensor, Tensor]]:
    """The two neighbouring cells of continuous points along one axis, and their linear weights.

    Args:
        coord: (...) points in [0, 1] coordinates (``align_corners=False``).
        size: cells along the axis.

    Returns:
        ``[(index, weight), (index + 1, weight)]``, each index (...) int64 clamped into
        [0, size), each weight (...) in coord's dtype; a cell outside the axis weighs zero
        ("zeros"), or the coordinate is clamped into the axis first ("border"), as in
        ``grid_sample``.
    """
    pos = coord * size - 0.5  # (...) continuous cell index
    # beyond one cell out, both neighbours lie outside: clamping keeps the int64 cast finite
    pos = pos.clamp(0.0, size - 1.0) if padding_mode == "border" else pos.clamp(-1.0, float(size))
    low = pos.floor()
    frac = pos - low  # (...)
    low = low.long()
    corners = []
    for k, weight in ((0, 1.0 - frac), (1, frac)):
        index = low + k  # (...)
        if padding_mode != "border":
            weight = weight * ((index >= 0) & (index < size)).to(weight.dtype)
        corners.append((index.clamp(0, size - 1), weight))
    return corners


def sample_features_gather(points: Tensor, feat: Tensor, padding_mode: str = "zeros") -> Tensor:
    """Trilinear reads of a volume as eight weighted corner reads, each a gather of C-long rows.

    The volume is seen as (B*T*H*W, C) rows, a free view when it is channels-last in memory as
    ``EarlyConvolution`` makes it, so each corner read of a point is one contiguous row. For each
    of the eight corners the rows of all points are gathered, weighted and accumulated, so that
    at most one corner's (B*N*P, C) reads exist at a time. Same contract as
    :func:`sample_features`, without any ``grid_sample``; batch-shared points (1, N, P, 3)
    broadcast over the volumes, so their corners and weights are computed once.
    """
    n, p = points.shape[1:3]
    b, c, t, h, w = feat.shape
    with torch.autocast(points.device.type, enabled=False):
        pts = _fp32(points)
        rows = feat.permute(0, 2, 3, 4, 1).reshape(b * t * h * w, c)  # (BTHW, C)
        xs = _axis_corners(pts[..., 0], w, padding_mode)  # 2 x ((B|1, N, P) index, (B|1, N, P) weight)
        ys = _axis_corners(pts[..., 1], h, padding_mode)
        ts = _axis_corners(pts[..., 2], t, padding_mode)
        first = (torch.arange(b, device=points.device) * t).view(b, 1, 1)  # (B, 1, 1) first frame of each clip
        out = None
        for ti, wt in ts:
            for yi, wy in ys:
                line = ((first + ti) * h + yi) * w  # (B, N, P) row of the line's first cell
                wty = wt * wy  # (B|1, N, P)
                for xi, wx in xs:
                    read = rows.index_select(0, (line + xi).reshape(-1))  # (BNP, C)
                    weight = (wty * wx).expand(b, n, p).reshape(-1, 1)  # (BNP, 1)
                    term = read * weight.to(read.dtype)  # (BNP, C)
                    out = term if out is None else out + term
    return out.view(b, n, p, c)  # (B, N, P, C)


def channel_layer_norm(x: Tensor, unbiased: bool = False, eps: float = 1e-5, dim: int = 1) -> Tensor:
    """Normalise over channels (``dim``) with no affine parameters.

    The library layout uses the biased variance with eps 1e-5; the v1 code the unbiased
    variance with eps 1e-7.
    """
    with torch.autocast(x.device.type, enabled=False):
        x = _fp32(x)
        var, mean = torch.var_mean(x, dim=dim, unbiased=unbiased, keepdim=True)
        return (x - mean) * torch.rsqrt(var + eps)


def grid_rois(num_tokens: int, unit: float = 0.5) -> Tensor:
    """Initial 2-D RoIs tiling the image: a sqrt(N) x sqrt(N) grid of unit x unit boxes.

    Box (i, j) has its top-left corner at ``(i, j) / (root - 1) * (1 - unit)``; i runs along x
    slower than j runs along y (the official token order). Tokens beyond root^2 cover the whole
    image.

    Returns:
        (N, 4) corners (x0, y0, x1, y1).
    """
    rois = torch.zeros(num_tokens, 4)
    rois[:, 2:] = 1.0
    root = int(num_tokens**0.5)
    if root >= 2:
        step = torch.arange(root, dtype=torch.float32) / (root - 1) * (1.0 - unit)
        gx = step.view(root, 1).expand(root, root)  # (root, root): x varies along the first axis
        gy = step.view(1, root).expand(root, root)
        corner = torch.stack([gx, gy], dim=-1).reshape(-1, 2)  # (root^2, 2)
        rois[: root * root, :2] = corner
        rois[: root * root, 2:] = corner + unit
    return rois


def inflate_rois(rois_2d: Tensor, replicates: int) -> Tensor:
    """2-D RoIs (N, 4) to spatiotemporal RoIs (R*N, 6) over R equal time slabs.

    Replicate k of every token covers time [k/R, (k+1)/R]; tokens are ordered replicate-major
    (token index k*N + n), the official MediaSparseFormer order.
    """
    n = rois_2d.shape[0]
    k = torch.arange(replicates, dtype=rois_2d.dtype, device=rois_2d.device)
    t0 = (k / replicates).view(replicates, 1, 1).expand(replicates, n, 1)  # (R, N, 1)
    t1 = ((k + 1) / replicates).view(replicates, 1, 1).expand(replicates, n, 1)
    xy = rois_2d.unsqueeze(0).expand(replicates, n, 4)  # (R, N, 4)
    out = torch.cat([xy[..., :2], t0, xy[..., 2:], t1], dim=-1)  # (R, N, 6)
    return out.reshape(replicates * n, 6)


def grid_offsets(num_points: int, dims: int = 2) -> Tensor:
    """Initial sampling offsets: a sqrt(P) x sqrt(P) grid in [-0.5, 0.5] (x fastest); time 0.

    Returns:
        (P * dims,) interleaved offsets (x, y[, t]) per point; uniform random if P is no square.
    """
    root = int(round(num_points**0.5))
    if root * root != num_points:
        xy = torch.rand(num_points, 2) - 0.5
    else:
        lin = torch.linspace(0.5 / root, 1 - 0.5 / root, root) - 0.5
        x = lin.view(1, root).expand(root, root)
        y = lin.view(root, 1).expand(root, root)
        xy = torch.stack([x, y], dim=-1).reshape(num_points, 2)
    if dims == 3:
        xy = torch.cat([xy, torch.zeros(num_points, 1)], dim=-1)
    return xy.reshape(-1)
