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
    """Number of parameters (trainable or not)."""
    return sum(p.numel() for p in model.parameters())
