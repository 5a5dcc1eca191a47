"""The input protocol a set of weights expects: what timm calls ``pretrained_cfg`` and
torchvision's video weights keep in ``meta`` / ``transforms()``.

A clip for a model is ``num_frames`` frames taken every ``sampling_rate`` frames of a
``target_fps`` video, the short side resized to ``crop_size`` and centre-cropped (test),
scaled to [0, 1] and normalised with ``mean``/``std``. At test time ``num_clips`` clips x
``num_crops`` crops per video are placed by ``clip_placement`` and their scores combined by
``ensemble``. Each registered variant has a default protocol (``default_protocol``), each
config describes one (``InputProtocol.from_config``), and each checkpoint sfvideo writes
records the one it was trained with (``sfvideo.checkpoint.checkpoint_meta``), so a checkpoint
can be run without its config (``sfvideo.checkpoint.config_from_checkpoint``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from ..utils.constants import IMAGENET_MEAN, IMAGENET_STD

# What a model takes and returns, for readers of exported files (ONNX metadata, a model directory's config.json).
INPUT_CONTRACT = ("clip: float32 (B, 3, T, H, W), RGB scaled to [0, 1] then normalised with the protocol's "
                  "mean/std; logits: (B, num_classes)")


@dataclass(frozen=True)
class InputProtocol:
    num_frames: int = 32
    sampling_rate: int = 2
    target_fps: int = 30  # DATA.TARGET_FPS, a whole number
    crop_size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    num_clips: int = 4
    num_crops: int = 3
    clip_placement: str = "uniform"
    ensemble: str = "softmax_mean"

    # Config key of each field (the config is the one place where a user sets them).
    CONFIG_KEYS = {
        "num_frames": "DATA.NUM_FRAMES", "sampling_rate": "DATA.SAMPLING_RATE", "target_fps": "DATA.TARGET_FPS",
        "crop_size": "DATA.TEST_CROP_SIZE", "mean": "DATA.MEAN", "std": "DATA.STD",
        "num_clips": "TEST.NUM_ENSEMBLE_VIEWS", "num_crops": "TEST.NUM_SPATIAL_CROPS",
        "clip_placement": "TEST.CLIP_PLACEMENT", "ensemble": "TEST.ENSEMBLE_METHOD",
    }

    @property
    def views_per_video(self) -> int:
        return self.num_clips * self.num_crops

    def to_dict(self) -> dict[str, Any]:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "protocol") -> "InputProtocol":
        """The inverse of ``to_dict``; unknown fields are an error naming ``source``."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"{source}: unknown input-protocol fields {unknown} (known: {sorted(names)})")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    @classmethod
    def from_config(cls, cfg) -> "InputProtocol":
        values = {}
        for name, key in cls.CONFIG_KEYS.items():
            section, leaf = key.split(".")
            value = cfg[section][leaf]
            values[name] = tuple(value) if isinstance(value, list) else value
        return cls(**values)

    def config_overrides(self) -> list[str]:
        """``["KEY", "VALUE", ...]`` that make a config follow this protocol (for ``load_config``)."""
        opts: list[str] = []
        for name, key in self.CONFIG_KEYS.items():
            value = getattr(self, name)
            opts += [key, repr(list(value)) if isinstance(value, tuple) else str(value)]
        return opts


def default_protocol(arch: str) -> InputProtocol:
    """The protocol the registered variant ``arch`` is set up for (its entry in ``sfvideo.models.variants``).

    Raises:
        KeyError: ``arch`` is no registered variant.
    """
    from .registry import get_variant  # imported here: the registry imports this module for InputProtocol

    return get_variant(arch).protocol
