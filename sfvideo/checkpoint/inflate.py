"""Image -> video inflation of SparseFormer weights (2-D geometry -> 3-D), tensor by tensor.

Inflated weights compute on a clip of identical frames what the image model computes on one
frame: the stem's (1, 7, 7) kernel runs frame by frame, token RoIs are replicated over time
slabs, and every per-point or per-box row gains a time coordinate that starts at zero.
"""

from __future__ import annotations

import re

import torch
from torch import Tensor

from ..models.ops import inflate_rois


def inflate_conv_weight(weight: Tensor) -> Tensor:
    """(C, 3, 7, 7) -> (C, 3, 1, 7, 7): the (1, 7, 7) kernel applied frame by frame."""
    return weight.unsqueeze(2)


def inflate_roi_weight(rois: Tensor, replicates: int) -> Tensor:
    """(N, 4) image RoIs -> (R*N, 6): replicate k covers the k-th of R time slabs."""
    return inflate_rois(rois, replicates)


def inflate_token_embedding(embedding: Tensor, replicates: int) -> Tensor:
    """(N, D) -> (R*N, D), replicate-major like the RoIs."""
    return embedding.repeat(replicates, 1)


def inflate_point_rows(tensor: Tensor) -> Tensor:
    """Per-point (x, y) rows -> (x, y, t) rows with t = 0: (P*2[, D]) -> (P*3[, D])."""
    pairs = tensor.reshape(-1, 2, *tensor.shape[1:])  # (P, 2[, D])
    zeros = torch.zeros_like(pairs[:, :1])
    return torch.cat([pairs, zeros], dim=1).reshape(-1, *tensor.shape[1:])


def inflate_roi_adjust_weight(weight: Tensor) -> Tensor:
    """(4, D) rows (dx, dy, dw, dh) -> (6, D) rows (dx, dy, 0, dw, dh, 0): time is kept as is."""
    shift, scale = weight[:2], weight[2:]
    zero = torch.zeros_like(weight[:1])
    return torch.cat([shift, zero, scale, zero], dim=0)


# Library-layout key pattern -> inflation of that tensor (``replicates``: temporal replicates R).
_INFLATERS = [
    (r"^feat_extractor\.conv1\.weight$", lambda t, r: inflate_conv_weight(t)),
    (r"^initial_roi\.weight$", inflate_roi_weight),
    (r"^initial_embedding\.weight$", inflate_token_embedding),
    (r"\.roi_offset_bias$", lambda t, r: inflate_point_rows(t)),
    (r"\.roi_offset_module\.1\.weight$", lambda t, r: inflate_point_rows(t)),
    (r"\.roi_adjust_module\.1\.weight$", lambda t, r: inflate_roi_adjust_weight(t)),
]


def inflate_tensor(key: str, value: Tensor, replicates: int) -> Tensor | None:
    """The video counterpart of image tensor ``key``, or None for a tensor that has no 2-D geometry."""
    for pattern, fn in _INFLATERS:
        if re.search(pattern, key):
            return fn(value, replicates)
    return None
