"""SparseFormer models: image and video variants in the official state-dict layout."""

from .registry import build_model, create_model, list_models, variant_kwargs
from .sparseformer import SparseFormer, VideoSparseFormer

__all__ = ["SparseFormer", "VideoSparseFormer", "build_model", "create_model", "list_models", "variant_kwargs"]
