"""The one place ``sfvideo.deploy`` turns clips into model input: uint8 (0-255), as the data
pipeline returns them, or already-normalised float.

numpy arrays are normalised here in numpy, so the onnxruntime path needs no torch; torch tensors
go through the data pipeline's own :func:`sfvideo.data.transforms.normalize_clip` (the same
float32 operations, so both give the same numbers).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def torch_available() -> bool:
    """Whether torch can be imported here; where it cannot, the deployment path uses its numpy twins."""
    import importlib.util

    try:
        return importlib.util.find_spec("torch") is not None
    except ValueError:  # sys.modules["torch"] = None: torch made unimportable
        return False


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

    from ..data.transforms import normalize_clip

    return normalize_clip(clips, mean, std) if clips.dtype == torch.uint8 else clips.float()
