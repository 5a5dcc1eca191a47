"""Mixed precision: one place that turns ``TRAIN.AMP`` (none | bf16 | fp16) into an autocast context."""

from __future__ import annotations

import contextlib
import functools
import logging

import torch


@functools.lru_cache(maxsize=None)
def cpu_has_native_bf16() -> bool:
    """True where the CPU computes bf16 natively (AVX512-BF16 or AMX). Without it, PyTorch's bf16
    matrix kernels run several times slower than fp32, convolutions most of all."""
    cpu = getattr(torch._C, "_cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return bool(cpu) and any(getattr(cpu, name, lambda: False)() for name in checks)


def autocast_context(device: torch.device, amp: str):
    """``torch.autocast`` for ``amp`` in {none, bf16, fp16}; a null context for ``none``.

    The model keeps its own fp32 islands (RoI geometry, sampling coordinates, the feature volume).
    """
    if amp == "none":
        return contextlib.nullcontext()
    if device.type != "cuda" and amp == "fp16":
        raise ValueError("TRAIN.AMP fp16 needs CUDA; use bf16 or none on the CPU")
    if device.type == "cpu" and amp == "bf16" and not cpu_has_native_bf16():
        _warn_slow_bf16()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


@functools.lru_cache(maxsize=None)
def _warn_slow_bf16() -> None:
    logging.getLogger("sfvideo").warning(
        "bf16 autocast on a CPU without native bf16 (no AVX512-BF16/AMX): expect it to be slower than fp32")
