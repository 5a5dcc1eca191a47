"""The models the model benchmark compares: sfvideo's video variants and pytorchvideo's model-zoo
architectures (built without weights), each with the clip it takes."""

from __future__ import annotations

import dataclasses
from typing import Callable

import torch
from torch import nn

SFVIDEO_MODELS = ("video_tiny", "video_small", "video_base")
ZOO_MODELS = ("x3d_m", "slowfast_r50", "mvit_b_16x4", "slow_r50")
# sfvideo's own clip (configs/k400_*.yaml: DATA.NUM_FRAMES 32, TEST_CROP_SIZE 224).
SFVIDEO_FRAMES, SFVIDEO_SIZE = 32, 224
# --quick: the sfvideo models see a small clip (the zoo models keep theirs: MViT's positional
# embeddings and X3D's pooling are built for one input size).
QUICK_FRAMES, QUICK_SIZE = 4, 64


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A benchmarked model: how to build it (randomly initialised) and its clip ``(C, T, H, W)``."""

    name: str
    build: Callable[[], nn.Module]
    frames: int
    size: int
    source: str  # "sfvideo" or "pytorchvideo"
    note: str = ""  # how the input differs from a plain (B, 3, T, H, W) clip, if it does

    @property
    def input_desc(self) -> str:
        return self.note or f"{self.frames} x {self.size}^2"

    @property
    def key(self) -> str:
        """Unique per model and input: an sfvideo model may run at several frame counts."""
        return f"{self.name}@{self.frames}" if self.source == "sfvideo" else self.name


class _PackedSlowFast(nn.Module):
    """SlowFast taking the fast-pathway clip ``(B, 3, alpha*T, H, W)`` and deriving the slow
    one (every alpha-th frame; pytorchvideo's ``PackPathway`` picks T evenly spaced frames,
    the same amount of work), so that every model here takes one tensor. The strided view
    costs nothing next to the network."""

    def __init__(self, net: nn.Module, alpha: int = 4):
        super().__init__()
        self.net, self.alpha = net, alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 3, alpha*T, H, W)
        return self.net([x[:, :, :: self.alpha], x])


def _zoo_builder(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pytorchvideo.models import hub
        if name == "x3d_m":
            return hub.x3d_m(pretrained=False)
        if name == "slowfast_r50":
            return _PackedSlowFast(hub.slowfast_r50(pretrained=False), alpha=4)
        if name == "mvit_b_16x4":
            return hub.mvit_base_16x4(pretrained=False)
        if name == "slow_r50":
            return hub.slow_r50(pretrained=False)
        raise KeyError(name)

    return build


def model_spec(name: str, frames: int | None = None, size: int | None = None, quick: bool = False,
               num_classes: int = 400) -> ModelSpec:
    """The spec of a benchmarkable model: an sfvideo variant (``video_*``, at ``frames`` x
    ``size``^2, default 32 x 224^2) or a pytorchvideo model-zoo architecture at its standard
    input: ``x3d_m`` (16 x 224^2), ``slowfast_r50`` (8x8: slow 8 + fast 32 frames, 224^2),
    ``mvit_b_16x4`` (16 x 224^2), ``slow_r50`` (8 x 224^2)."""
    from ..models import create_model, list_models

    if name in ZOO_MODELS:
        if name == "slowfast_r50":
            return ModelSpec(name, _zoo_builder(name), 32, 224, "pytorchvideo", "8 (slow) + 32 (fast) x 224^2")
        return ModelSpec(name, _zoo_builder(name), 8 if name == "slow_r50" else 16, 224, "pytorchvideo")
    if name.startswith("video_") and name in list_models():
        t = frames or (QUICK_FRAMES if quick else SFVIDEO_FRAMES)
        s = size or (QUICK_SIZE if quick else SFVIDEO_SIZE)
        return ModelSpec(name, lambda: create_model(name, num_classes=num_classes), t, s, "sfvideo")
    raise KeyError(f"unknown model {name!r}; available: {benchmark_model_names()}")


def benchmark_model_names() -> list[str]:
    """Every name ``model_spec`` takes: the registered video variants, then the zoo models."""
    from ..models import list_models

    return [n for n in list_models() if n.startswith("video_")] + list(ZOO_MODELS)


def model_specs(names: list[str], frames: int | list[int] | None, size: int | None, quick: bool) -> list[ModelSpec]:
    """One spec per zoo model, one per (sfvideo model, frame count)."""
    counts = frames if isinstance(frames, (list, tuple)) else [frames]
    specs = []
    for n in names:
        specs += [model_spec(n, t, size, quick) for t in counts] if n not in ZOO_MODELS else [model_spec(n, quick=quick)]
    return specs


def make_clip(spec: ModelSpec, batch: int, device: torch.device) -> torch.Tensor:
    """A random clip of the spec's input, (B, C, T, H, W)."""
    return torch.randn(batch, 3, spec.frames, spec.size, spec.size, device=device)  # (B, C, T, H, W)
