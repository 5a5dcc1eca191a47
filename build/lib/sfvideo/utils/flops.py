"""FLOPs and parameter counts with ``torch.utils.flop_counter`` (no extra dependency).

GFLOPs are reported as multiply-adds (one fused multiply-add = 1 FLOP), the convention of the
SparseFormer paper and of fvcore: ``FlopCounterMode`` counts 2 per multiply-add, so its total
is halved. Only matmuls, convolutions and attention are counted (as fvcore does); elementwise
ops, grid sampling and normalisation are not.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_gflops(model: nn.Module, inputs: torch.Tensor) -> float:
    """Multiply-add GFLOPs of one forward pass on ``inputs`` (divide by batch for per-view)."""
    was_training = model.training
    model.eval()
    # Counted with autograd on: FlopCounterMode's module tracker rejects no_grad views of parameters.
    with FlopCounterMode(display=False) as counter:
        model(inputs)
    model.train(was_training)
    return counter.get_total_flops() / 2 / 1e9


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def flops_table(arches: list[str], frames: list[int], size: int = 224, num_classes: int = 400) -> list[dict]:
    """GFLOPs per view and parameters of each variant at each frame count (images ignore frames)."""
    from ..models import create_model

    rows = []
    for arch in arches:
        model = create_model(arch, num_classes=num_classes)
        params = count_params(model)
        for t in frames if model.geometry_dims == 3 else [1]:
            shape = (1, 3, t, size, size) if model.geometry_dims == 3 else (1, 3, size, size)
            gflops = count_gflops(model, torch.zeros(shape))
            rows.append({"model": arch, "frames": t, "size": size, "gflops": gflops, "params_m": params / 1e6})
    return rows


def format_table(rows: list[dict]) -> str:
    lines = ["| model | input (T x H x W) | GFLOPs / view | params (M) |", "|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['frames']} x {r['size']} x {r['size']} | {r['gflops']:.2f} | {r['params_m']:.2f} |")
    return "\n".join(lines)
