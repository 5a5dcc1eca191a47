"""Checkpoints: reading and writing files, official layouts, image -> video inflation, strict loading, meta.

One module per job:

* :mod:`~sfvideo.checkpoint.io` - the file format: :func:`safe_load` (no pickled code runs) and
  :func:`atomic_save` (temporary file, then rename); every reader in sfvideo goes through it;
* :mod:`~sfvideo.checkpoint.layouts` - where the weights sit in a loaded file, v1 key names;
* :mod:`~sfvideo.checkpoint.inflate` - image (2-D) -> video (3-D) weights, tensor by tensor;
* :mod:`~sfvideo.checkpoint.load` - weights into a model: :func:`adapt_state_dict` and its
  :class:`LoadReport`, :func:`load_pretrained`, :func:`load_test_weights`, :func:`inflate_checkpoint`;
* :mod:`~sfvideo.checkpoint.meta` - the model, input protocol and class names a checkpoint
  records (:func:`checkpoint_meta`) and the config rebuilt from them (:func:`config_from_checkpoint`);
* :mod:`~sfvideo.checkpoint.hub` - model directories in the Hugging Face Hub's layout
  (``model.safetensors``, ``config.json``, ``README.md``) and ``hf-hub:ORG/NAME[@REVISION]`` names,
  which :func:`safe_load` reads like any checkpoint;
* :mod:`~sfvideo.checkpoint.pretrained` - :func:`save_pretrained`, :func:`export_pretrained` and
  :func:`from_pretrained`; :mod:`~sfvideo.checkpoint.card` (the model card) and
  :mod:`~sfvideo.checkpoint.training` (how the weights were trained) serve them.

What a training run's ``last.pth`` holds and how a run resumes from it is the engine's job
(:mod:`sfvideo.engine.train_state`).
"""

from .errors import CheckpointError
from .hub import HUB_PREFIX, is_hub_name, resolve_checkpoint
from .inflate import (
    inflate_conv_weight,
    inflate_point_rows,
    inflate_roi_adjust_weight,
    inflate_roi_weight,
    inflate_tensor,
    inflate_token_embedding,
)
from .io import InertConfig, atomic_save, safe_load
from .layouts import convert_v1_to_library, extract_state_dict, is_v1_layout
from .load import (
    LoadReport,
    adapt_state_dict,
    check_claimed_sizes,
    inflate_checkpoint,
    is_training_checkpoint,
    load_pretrained,
    load_test_state,
    load_test_weights,
    load_weights,
)
from .meta import MODEL_KEYS, checkpoint_meta, config_from_checkpoint, config_from_state, model_record, read_meta
from .pretrained import export_pretrained, from_pretrained, save_pretrained

__all__ = [
    "HUB_PREFIX", "MODEL_KEYS", "CheckpointError", "InertConfig", "LoadReport", "adapt_state_dict", "atomic_save",
    "check_claimed_sizes", "checkpoint_meta", "config_from_checkpoint", "config_from_state", "convert_v1_to_library",
    "export_pretrained", "extract_state_dict", "from_pretrained", "inflate_checkpoint", "inflate_conv_weight",
    "inflate_point_rows", "inflate_roi_adjust_weight", "inflate_roi_weight", "inflate_tensor",
    "inflate_token_embedding", "is_hub_name", "is_training_checkpoint", "is_v1_layout", "load_pretrained",
    "load_test_state", "load_test_weights", "load_weights", "model_record", "read_meta", "resolve_checkpoint",
    "safe_load", "save_pretrained",
]
