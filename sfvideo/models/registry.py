"""The model registry and ``build_model(cfg)``, the one bridge from config to model.

A named variant is one registered :class:`ModelVariant`: its class, its constructor arguments
and the input protocol it is set up for (timm's ``@register_model`` function and its
``default_cfgs`` entry in one). The entries are the ``@register_model`` functions of
:mod:`sfvideo.models.variants`, beside the model classes; ``sfvideo/models/__init__.py`` imports
that module, so importing ``sfvideo.models`` or any module in it registers every variant.
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Mapping

from torch import nn

from .protocol import InputProtocol


@dataclass(frozen=True)
class ModelVariant:
    """One named variant.

    Attributes:
        cls: the model class (``SparseFormer`` or ``VideoSparseFormer``).
        kwargs: its constructor arguments (read-only; :func:`variant_kwargs` returns a copy).
        protocol: the input protocol its weights expect (``model.protocol``, checkpoints' ``meta``).
        name, description: the registered function's name and docstring, set by :func:`register_model`.
    """

    cls: type[nn.Module]
    kwargs: Mapping[str, Any]
    protocol: InputProtocol
    name: str = ""
    description: str = ""


_REGISTRY: dict[str, ModelVariant] = {}


def register_model(fn: Callable[[], ModelVariant]) -> Callable[[], ModelVariant]:
    """Decorator: register the variant ``fn()`` under ``fn.__name__``, described by ``fn``'s docstring.

    Raises:
        ValueError: a variant of that name is registered already, or ``fn`` returns no ``ModelVariant``.
    """
    name = fn.__name__
    if name in _REGISTRY:
        raise ValueError(f"model variant {name!r} is registered twice ({fn.__module__}); names must be unique")
    variant = fn()
    if not isinstance(variant, ModelVariant):
        raise ValueError(f"@register_model {name}() returned {type(variant).__name__}, not a ModelVariant")
    _REGISTRY[name] = dataclasses.replace(variant, kwargs=MappingProxyType(dict(variant.kwargs)), name=name,
                                          description=inspect.getdoc(fn) or "")
    return fn


def get_variant(name: str) -> ModelVariant:
    """The registered entry of ``name``.

    Raises:
        KeyError: no variant of that name (the message lists the registered ones).
    """
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; available: {list_models()}")
    return _REGISTRY[name]


def list_models() -> list[str]:
    """The registered variant names, sorted."""
    return sorted(_REGISTRY)


def variant_kwargs(name: str) -> dict[str, Any]:
    """A copy of the constructor arguments of variant ``name``."""
    return dict(get_variant(name).kwargs)


def create_model(name: str, protocol: InputProtocol | None = None, **overrides: Any) -> nn.Module:
    """Build a named variant; keyword arguments override the variant's own.

    The model's ``protocol`` attribute is the input protocol it expects (``protocol``, else the
    variant's default), as timm's ``pretrained_cfg``: checkpoints record it, predict and export use it.
    """
    variant = get_variant(name)
    model = variant.cls(**{**variant.kwargs, **overrides})
    model.protocol = protocol if protocol is not None else variant.protocol
    return model


def build_model(cfg) -> nn.Module:
    """The model a config describes (``MODEL.*``), freshly initialised."""
    overrides: dict[str, Any] = {"num_classes": cfg.MODEL.NUM_CLASSES, "padding_mode": cfg.MODEL.PADDING_MODE}
    if cfg.MODEL.TEMPORAL_REPLICATES > 0:
        overrides["temporal_replicates"] = cfg.MODEL.TEMPORAL_REPLICATES
    if cfg.MODEL.DROP_PATH_RATE >= 0:
        overrides["drop_path_rate"] = cfg.MODEL.DROP_PATH_RATE
    return create_model(cfg.MODEL.ARCH, protocol=InputProtocol.from_config(cfg), **overrides)
