"""The numpy twin of the data pipeline's short-side resize, for the deployment path where torch
is absent (``stream.frame_preparer`` uses the pipeline's own resize wherever torch imports).

Separable antialiased linear resampling (a triangle filter widened by the scale factor when
shrinking, the same family as torch's ``antialias=True`` bilinear), in float32 then rounded; it
lands within a few grey levels of the data pipeline's resize (tested: at most 3).
"""

from __future__ import annotations

import numpy as np


def _weights(in_size: int, out_size: int) -> np.ndarray:
    """(out, in) resampling matrix, rows summing to 1."""
    scale = in_size / out_size
    support = max(scale, 1.0)
    centres = (np.arange(out_size) + 0.5) * scale  # (out,)
    src = np.arange(in_size) + 0.5  # (in,)
    w = np.clip(1.0 - np.abs(src[None, :] - centres[:, None]) / support, 0.0, None)  # (out, in)
    return (w / w.sum(axis=1, keepdims=True)).astype(np.float32)


def resize(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H, W, C) uint8 -> (height, width, C) uint8."""
    wy, wx = _weights(frame.shape[0], height), _weights(frame.shape[1], width)
    x = np.einsum("oh,hwc->owc", wy, frame.astype(np.float32))
    x = np.einsum("pw,owc->opc", wx, x)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def resize_short_side_np(frame: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (3, h, w) uint8 with the short side ``size`` (the pipeline's rounding)."""
    h, w = frame.shape[:2]
    nh, nw = (size, max(size, round(w * size / h))) if h <= w else (max(size, round(h * size / w)), size)
    out = frame if (nh, nw) == (h, w) else resize(frame, nh, nw)
    return np.ascontiguousarray(out.transpose(2, 0, 1))
