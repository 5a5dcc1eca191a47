"""The one place clips become model input: uint8 (0-255) or already-normalised float.

The data pipeline hands clips over as float (normalised) today and as uint8 once normalisation
moves to the device; everything in ``sfvideo.deploy`` calls :func:`model_input` so it works
either way. numpy only, so the onnxruntime path shares it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def normalise_uint8(clips: np.ndarray, mean: Sequence[float], std: Sequence[float], channel_axis: int = 1) -> np.ndarray:
    """``(x / 255 - mean) / std`` per channel, float32; ``clips`` (V, C, T, H, W) by default."""
    shape = [1] * clips.ndim
    shape[channel_axis] = len(mean)
    m = np.asarray(mean, dtype=np.float32).reshape(shape) * 255.0
    inv = 1.0 / (np.asarray(std, dtype=np.float32).reshape(shape) * 255.0)
    return (clips.astype(np.float32) - m) * inv


def model_input(clips, mean: Sequence[float], std: Sequence[float]):
    """Clips (V, C, T, H, W) as the model takes them: uint8 is normalised with ``mean``/``std``,
    floats are taken as already normalised. Accepts numpy arrays or torch tensors (returned as
    the same kind)."""
    if isinstance(clips, np.ndarray):
        return normalise_uint8(clips, mean, std) if clips.dtype == np.uint8 else clips.astype(np.float32, copy=False)
    import torch

    if clips.dtype == torch.uint8:
        return torch.from_numpy(normalise_uint8(clips.numpy(), mean, std))
    return clips.float()
