"""Named model variants and ``build_model(cfg)``, the one bridge from config to model.

Each variant is a dict of constructor arguments. The video variants are the official
ImageNet SparseFormer-T/S/B (v1 settings) with spatiotemporal geometry and 8 temporal
replicates, so an ImageNet checkpoint of the same size inflates into them.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from .protocol import InputProtocol, default_protocol
from .sparseformer import SparseFormer, VideoSparseFormer

# Official v1 SparseFormer sizes (sparseformer/config.py: sparseformer_v1_{tiny,small,base}).
_SF_T = dict(conv_dim=96, num_tokens=49, num_points=36, widths=(256,) + (512,) * 8, repeats=(4,) + (1,) * 8)
_SF_S = dict(conv_dim=96, num_tokens=64, num_points=36, widths=(320,) + (640,) * 8, repeats=(4,) + (1,) * 8)
_SF_B = dict(conv_dim=96, num_tokens=81, num_points=36, widths=(384,) + (768,) * 10, repeats=(4,) + (1,) * 10)
# A few-millisecond variant for tests: same structure, tiny sizes.
_TEST = dict(conv_dim=16, num_tokens=9, num_points=9, widths=(32, 64, 64), repeats=(2, 1, 1), num_heads=8)

VARIANTS: dict[str, tuple[type[SparseFormer], dict[str, Any]]] = {
    "image_tiny": (SparseFormer, dict(_SF_T, drop_path_rate=0.2)),
    "image_small": (SparseFormer, dict(_SF_S, drop_path_rate=0.3)),
    "image_base": (SparseFormer, dict(_SF_B, drop_path_rate=0.4)),
    "image_test": (SparseFormer, dict(_TEST)),
    "video_tiny": (VideoSparseFormer, dict(_SF_T, temporal_replicates=8, drop_path_rate=0.2)),
    "video_small": (VideoSparseFormer, dict(_SF_S, temporal_replicates=8, drop_path_rate=0.3)),
    "video_base": (VideoSparseFormer, dict(_SF_B, temporal_replicates=8, drop_path_rate=0.4)),
    "video_test": (VideoSparseFormer, dict(_TEST, temporal_replicates=2)),
    # CPU-trainable on the toy dataset (configs/toy_tiny.yaml). One replicate: every token's RoI
    # spans the whole clip. 64 points = a 4 x 4 spatial grid read at 4 times ("tubes", see
    # VideoSparseFormer._spread_time_offsets), so adaptive mixing sees each place move; on the
    # toy motion classes this learnt much faster than 32 points (4 x 4 at 2 times) or 36 (3 x 3
    # at 4 times).
    "video_toy": (VideoSparseFormer, dict(conv_dim=32, num_tokens=16, num_points=64, widths=(96, 192, 192),
                                           repeats=(2, 1, 1), num_heads=8, temporal_replicates=1)),
}

def list_models() -> list[str]:
    return sorted(VARIANTS)


def variant_kwargs(name: str) -> dict[str, Any]:
    if name not in VARIANTS:
        raise KeyError(f"unknown model {name!r}; available: {list_models()}")
    return dict(VARIANTS[name][1])


def create_model(name: str, protocol: InputProtocol | None = None, **overrides: Any) -> SparseFormer:
    """Build a named variant; keyword arguments override the variant's own.

    The model's ``protocol`` attribute is the input protocol it expects (``protocol``, else the
    variant's default), as timm's ``pretrained_cfg``: checkpoints record it, predict and export use it.
    """
    cls = VARIANTS[name][0] if name in VARIANTS else None
    kwargs = variant_kwargs(name)
    kwargs.update(overrides)
    model = cls(**kwargs)
    model.protocol = protocol if protocol is not None else default_protocol(name)
    return model


def build_model(cfg) -> nn.Module:
    """The model a config describes (``MODEL.*``), freshly initialised."""
    overrides: dict[str, Any] = {"num_classes": cfg.MODEL.NUM_CLASSES, "padding_mode": cfg.MODEL.PADDING_MODE}
    if cfg.MODEL.TEMPORAL_REPLICATES > 0:
        overrides["temporal_replicates"] = cfg.MODEL.TEMPORAL_REPLICATES
    if cfg.MODEL.DROP_PATH_RATE >= 0:
        overrides["drop_path_rate"] = cfg.MODEL.DROP_PATH_RATE
    return create_model(cfg.MODEL.ARCH, protocol=InputProtocol.from_config(cfg), **overrides)
