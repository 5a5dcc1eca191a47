"""How a set of weights was trained, as a model card tells it: the shipped config a run started
from and what it changed.

A training checkpoint carries its whole config (``cfg``). The *base config* is the shipped config
(``configs/*.yaml``, or the defaults alone) from which that config differs in the fewest keys
that shape the weights; keys of the run's environment (paths, workers, decoders, periods of
logging and checkpointing, the test settings, which the input protocol records) are left out.
"""

from __future__ import annotations

import fnmatch
import functools
import json
from typing import Any, Mapping

import yaml

from ..config import ConfigError, flatten, get_cfg, merge_dict
from ..resources import configs_dir

# Keys that do not change the weights a run produces: where the data sits, how it is read, how
# often the run logs, evaluates and saves, the test settings (the input protocol records those).
RUN_ONLY_KEYS = (
    "OUTPUT_DIR", "DEVICE", "NUM_THREADS", "DATA.PATH_TO_DATA_DIR", "DATA.*_LIST", "DATA.*_SHARDS", "DATA.FORMAT",
    "DATA.S3_ENDPOINT", "DATA.CLASS_NAMES", "DATA.DECODE*", "DATA.SEEK_MODE", "DATA.CLIPS_PER_DECODE",
    "DATA.NUM_WORKERS", "DATA.PIN_MEMORY", "DATA.MAX_FAILURE_FRACTION", "DATA.MISSING_REPORT", "TRAIN.AUTO_RESUME",
    "TRAIN.*_PERIOD", "TRAIN.CHECKPOINT_MINUTES", "TRAIN.FIND_UNUSED_PARAMETERS", "TEST.*",
)
DEFAULTS = "sfvideo's defaults"  # the base when no shipped config is closer


def _plain(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Values as JSON has them (tuples as lists), so a stored config compares equal to a fresh one."""
    return {k: json.loads(json.dumps(v, default=str)) for k, v in flat.items()}


def is_weight_key(key: str) -> bool:
    """False for the keys of ``RUN_ONLY_KEYS``."""
    return not any(fnmatch.fnmatchcase(key, pattern) for pattern in RUN_ONLY_KEYS)


@functools.lru_cache(maxsize=1)
def base_configs() -> dict[str, dict[str, Any]]:
    """Every key of the defaults (``DEFAULTS``) and of each shipped config, by file name."""
    out = {DEFAULTS: _plain(flatten(get_cfg().to_dict()))}
    for path in sorted(configs_dir().glob("*.yaml")):
        cfg = get_cfg()
        try:
            merge_dict(cfg, yaml.safe_load(path.read_text(encoding="utf-8")) or {}, str(path))
        except (ConfigError, yaml.YAMLError):
            continue
        out[path.name] = _plain(flatten(cfg.to_dict()))
    return out


def closest_base(config: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The base config of a run's config (nested, as checkpoints store it) and the weight keys it
    changes (``KEY: new value``; a key the base lacks counts as changed).

    The base changes the fewest weight keys; among equals, the fewest keys of any kind (the data
    paths tell Kinetics-400 from -600), then a shipped config before the defaults,
    then by name."""
    flat = _plain(flatten(dict(config)))
    scored = []
    for name, base in base_configs().items():
        changed = {k: v for k, v in flat.items() if base.get(k, object()) != v}
        weights = {k: v for k, v in changed.items() if is_weight_key(k)}
        scored.append(((len(weights), len(changed), name == DEFAULTS, name), name, weights))
    _, name, changes = min(scored, key=lambda item: item[0])
    return name, dict(sorted(changes.items()))


def training_record(ckpt: Mapping[str, Any]) -> dict[str, Any] | None:
    """What a model card says about training, from a loaded checkpoint: a training checkpoint's
    config (base config, changes, epochs), or the record a model directory carries; None when the
    checkpoint records neither."""
    if isinstance(ckpt.get("training"), Mapping):
        return dict(ckpt["training"])
    config = ckpt.get("cfg")
    if not isinstance(config, Mapping) or not isinstance(config.get("MODEL"), Mapping):
        return None
    base, changes = closest_base(config)
    record: dict[str, Any] = {"base_config": base, "changes": changes}
    solver = config.get("SOLVER") if isinstance(config.get("SOLVER"), Mapping) else {}
    if isinstance(ckpt.get("epoch"), int):
        record["epochs"] = ckpt["epoch"]
        record["max_epochs"] = solver.get("MAX_EPOCH")
    if isinstance(ckpt.get("best_top1"), (int, float)):
        record["best_val_top1"] = float(ckpt["best_top1"])
    return record
