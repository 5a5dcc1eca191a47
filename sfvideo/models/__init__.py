"""SparseFormer models: image and video variants in the official state-dict layout.

``variants`` holds the named variants; importing it here registers them (``@register_model``)
before anything in the package is used.
"""

from . import variants  # noqa: F401  (registers the named variants)
from .registry import ModelVariant, build_model, create_model, get_variant, list_models, register_model, variant_kwargs
from .sparseformer import SparseFormer, VideoSparseFormer

__all__ = ["ModelVariant", "SparseFormer", "VideoSparseFormer", "build_model", "create_model", "get_variant",
           "list_models", "register_model", "variant_kwargs"]
