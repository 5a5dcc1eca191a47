"""The FLOPs table of ``sfvideo flops``: every named variant at a few frame counts (printed and
written by ``sfvideo.bench.results``' ``flops`` table)."""

from __future__ import annotations

import torch

from ..models import create_model
from ..utils.flops import count_gflops, count_params


def flops_table(arches: list[str], frames: list[int], size: int = 224, num_classes: int = 400) -> list[dict]:
    """GFLOPs per view and parameters of each variant at each frame count (images ignore frames)."""
    rows = []
    for arch in arches:
        model = create_model(arch, num_classes=num_classes)
        params = count_params(model)
        for t in frames if model.geometry_dims == 3 else [1]:
            shape = (1, 3, t, size, size) if model.geometry_dims == 3 else (1, 3, size, size)
            gflops = count_gflops(model, torch.zeros(shape))
            rows.append({"model": arch, "frames": t, "size": size, "gflops": gflops, "params_m": params / 1e6})
    return rows
