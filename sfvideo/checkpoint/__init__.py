"""Checkpoints: reading and writing files, official layouts, image -> video inflation, strict loading, meta.

One module per job:

* :mod:`~sfvideo.checkpoint.io` - the file format: :func:`safe_load` (no pickled code runs) and
  :func:`atomic_save` (temporary file, then rename); every reader in sfvideo goes through it;
* :mod:`~sfvideo.checkpoint.layouts` - where the weights sit in a loaded file, v1 key names;
* :mod:`~sfvideo.checkpoint.inflate` - image (2-D) -> video (3-D) weights, tensor by tensor;
* :mod:`~sfvideo.checkpoint.load` - weights into a model: :func:`adapt_state_dict` and its
  :class:`LoadReport`, :func:`load_pretrained`, :func:`load_test_weights`, :func:`inflate_checkpoint`;
* :mod:`~sfvideo.checkpoint.meta` - the model, input protocol and class names a checkpoint
  records (:func:`checkpoint_meta`) and the config rebuilt from them (:func:`config_from_checkpoint`).

What a training run's ``last.pth`` holds and how a run resumes from it is the engine's job
(:mod:`sfvideo.engine.train_state`).
"""

from .errors import CheckpointError
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
    load_test_weights,
    load_weights,
)
from .meta import MODEL_KEYS, checkpoint_meta, config_from_checkpoint, model_record, read_meta

__all__ = [
    "MODEL_KEYS", "CheckpointError", "InertConfig", "LoadReport", "adapt_state_dict", "atomic_save",
    "check_claimed_sizes", "checkpoint_meta", "config_from_checkpoint", "convert_v1_to_library",
    "extract_state_dict", "inflate_checkpoint", "inflate_conv_weight", "inflate_point_rows",
    "inflate_roi_adjust_weight", "inflate_roi_weight", "inflate_tensor", "inflate_token_embedding",
    "is_training_checkpoint", "is_v1_layout", "load_pretrained", "load_test_weights", "load_weights",
    "model_record", "read_meta", "safe_load",
]
