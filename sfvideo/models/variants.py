"""The named model variants: one registered entry each, with its class, arguments and input protocol.

The video variants are the official ImageNet SparseFormer-T/S/B (v1 settings) with
spatiotemporal geometry and 8 temporal replicates, so an ImageNet checkpoint of the same size
inflates into them. ``*_test`` are tiny variants of the same structure for tests; ``video_toy``
trains on the CPU on the toy dataset (``configs/toy_tiny.yaml``).

Each function returns its :class:`~sfvideo.models.registry.ModelVariant`; ``@register_model``
registers it under the function's name (``sfvideo/models/__init__.py`` imports this module).
"""

from __future__ import annotations

from .protocol import InputProtocol
from .registry import ModelVariant, register_model
from .sparseformer import SparseFormer, VideoSparseFormer

# Official v1 SparseFormer sizes (sparseformer/config.py: sparseformer_v1_{tiny,small,base}).
_SF_T = dict(conv_dim=96, num_tokens=49, num_points=36, widths=(256,) + (512,) * 8, repeats=(4,) + (1,) * 8)
_SF_S = dict(conv_dim=96, num_tokens=64, num_points=36, widths=(320,) + (640,) * 8, repeats=(4,) + (1,) * 8)
_SF_B = dict(conv_dim=96, num_tokens=81, num_points=36, widths=(384,) + (768,) * 10, repeats=(4,) + (1,) * 10)
_TEST = dict(conv_dim=16, num_tokens=9, num_points=9, widths=(32, 64, 64), repeats=(2, 1, 1), num_heads=8)

# Input protocols. Kinetics-400: 32 frames at stride 2, 224^2 crops, 4 clips x 3 crops per video.
K400_PROTOCOL = InputProtocol()
IMAGE_PROTOCOL = InputProtocol(num_frames=1, sampling_rate=1, num_clips=1, num_crops=1)
# The toy recipe: 8 frames at stride 2 of 112-pixel videos, 96-pixel crops, 2 clips.
TOY_PROTOCOL = InputProtocol(num_frames=8, sampling_rate=2, crop_size=96, num_clips=2, num_crops=1)
TEST_PROTOCOL = InputProtocol(num_frames=4, sampling_rate=2, crop_size=32, num_clips=2, num_crops=1)


# ------------------------------------------------------------------------------------ images
@register_model
def image_tiny() -> ModelVariant:
    """SparseFormer-T on images (49 tokens, 36 points)."""
    return ModelVariant(SparseFormer, dict(_SF_T, drop_path_rate=0.2), IMAGE_PROTOCOL)


@register_model
def image_small() -> ModelVariant:
    """SparseFormer-S on images (64 tokens, 36 points)."""
    return ModelVariant(SparseFormer, dict(_SF_S, drop_path_rate=0.3), IMAGE_PROTOCOL)


@register_model
def image_base() -> ModelVariant:
    """SparseFormer-B on images (81 tokens, 36 points)."""
    return ModelVariant(SparseFormer, dict(_SF_B, drop_path_rate=0.4), IMAGE_PROTOCOL)


@register_model
def image_test() -> ModelVariant:
    """A tiny image model for tests."""
    return ModelVariant(SparseFormer, dict(_TEST), IMAGE_PROTOCOL)


# ------------------------------------------------------------------------------------ video
@register_model
def video_tiny() -> ModelVariant:
    """SparseFormer-T on video: 49 tokens x 8 temporal replicates; Kinetics-400 32 x 2 at 224^2."""
    return ModelVariant(VideoSparseFormer, dict(_SF_T, temporal_replicates=8, drop_path_rate=0.2), K400_PROTOCOL)


@register_model
def video_small() -> ModelVariant:
    """SparseFormer-S on video: 64 tokens x 8 temporal replicates; Kinetics-400 32 x 2 at 224^2."""
    return ModelVariant(VideoSparseFormer, dict(_SF_S, temporal_replicates=8, drop_path_rate=0.3), K400_PROTOCOL)


@register_model
def video_base() -> ModelVariant:
    """SparseFormer-B on video: 81 tokens x 8 temporal replicates; Kinetics-400 32 x 2 at 224^2."""
    return ModelVariant(VideoSparseFormer, dict(_SF_B, temporal_replicates=8, drop_path_rate=0.4), K400_PROTOCOL)


@register_model
def video_test() -> ModelVariant:
    """A tiny video model for tests: 9 tokens x 2 temporal replicates, 4 frames of 32^2."""
    return ModelVariant(VideoSparseFormer, dict(_TEST, temporal_replicates=2), TEST_PROTOCOL)


@register_model
def video_toy() -> ModelVariant:
    """CPU-trainable on the toy dataset: 16 tokens, one replicate, 64 points; 8 frames of 96^2.

    With one replicate every token's RoI spans the whole clip. 64 points are a 4 x 4 spatial
    grid read at 4 times ("tubes", see ``VideoSparseFormer._spread_time_offsets``), so adaptive
    mixing sees each place move: on the toy motion classes this learns much faster than 32
    points (4 x 4 at 2 times) or 36 (3 x 3 at 4 times).
    """
    return ModelVariant(VideoSparseFormer, dict(conv_dim=32, num_tokens=16, num_points=64, widths=(96, 192, 192),
                                                repeats=(2, 1, 1), num_heads=8, temporal_replicates=1), TOY_PROTOCOL)
