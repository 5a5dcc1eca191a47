"""Config: every YAML loads, overrides, validation, unknown keys with suggestions."""

from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from sfvideo.config import ConfigError, load_config
from sfvideo.models import build_model, list_models

CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


def test_there_are_configs():
    names = {p.name for p in CONFIGS}
    assert {"k400_tiny.yaml", "k400_small.yaml", "k400_base.yaml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_config_loads_and_names_a_model(path, tmp_path):
    opts = []
    raw = yaml.safe_load(path.read_text())
    if raw.get("MODEL", {}).get("NUM_CLASSES") == -1:
        # The class count comes from the classes.txt build_lists writes into the data dir.
        names = raw["DATA"]["CLASS_NAMES"]
        assert not Path(names).is_absolute()
        (tmp_path / names).write_text("first\nsecond\nthird\n")
        opts = ["DATA.PATH_TO_DATA_DIR", str(tmp_path)]
    cfg = load_config(path.name, opts)
    assert cfg.is_frozen()
    assert cfg.MODEL.ARCH in list_models()
    assert cfg.MODEL.NUM_CLASSES == (3 if opts else raw.get("MODEL", {}).get("NUM_CLASSES", 400))


@pytest.mark.parametrize("name,arch", [("k400_tiny", "video_tiny"),  # the larger models take seconds to build
                                       pytest.param("k400_small", "video_small", marks=pytest.mark.slow),
                                       pytest.param("k400_base", "video_base", marks=pytest.mark.slow)])
def test_k400_defaults(name, arch):
    cfg = load_config(f"{name}.yaml")
    assert cfg.MODEL.ARCH == arch and cfg.MODEL.NUM_CLASSES == 400
    assert (cfg.DATA.NUM_FRAMES, cfg.DATA.SAMPLING_RATE, cfg.DATA.TRAIN_CROP_SIZE, cfg.DATA.TEST_CROP_SIZE) == (32, 2, 224, 224)
    assert (cfg.TEST.NUM_ENSEMBLE_VIEWS, cfg.TEST.NUM_SPATIAL_CROPS) == (4, 3)
    model = build_model(cfg)
    assert model.temporal_replicates == 8 and model.num_classes == 400


def test_overrides_are_typed():
    cfg = load_config("k400_tiny.yaml", ["TRAIN.BATCH_SIZE", "3", "SOLVER.BASE_LR", "2e-4", "AUG.FLIP", "False",
                                         "DATA.TRAIN_JITTER_SCALES", "[240, 300]", "OUTPUT_DIR", "/tmp/x y"])
    assert cfg.TRAIN.BATCH_SIZE == 3 and cfg.SOLVER.BASE_LR == 2e-4 and cfg.AUG.FLIP is False
    assert cfg.DATA.TRAIN_JITTER_SCALES == [240, 300] and cfg.OUTPUT_DIR == "/tmp/x y"
    assert load_config("k400_tiny", ["SOLVER.BASE_LR", "1"]).SOLVER.BASE_LR == 1.0  # int -> float


def test_unknown_key_names_key_and_suggests():
    with pytest.raises(ConfigError, match=r"'DATA.NUM_FRAME'.*DATA.NUM_FRAMES"):
        load_config("k400_tiny.yaml", ["DATA.NUM_FRAME", "8"])
    with pytest.raises(ConfigError, match=r"TEST.NUM_ENSEMBLE_VIEWS"):
        load_config(None, ["TEST.NUM_ENSEMBLE_VIEW", "2"])


def test_unknown_key_in_yaml_names_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("SOLVER:\n  BASE_LRR: 0.1\n")
    with pytest.raises(ConfigError, match=r"SOLVER.BASE_LRR.*bad.yaml.*SOLVER.BASE_LR"):
        load_config(bad)


@pytest.mark.parametrize("opts,match", [
    (["TRAIN.BATCH_SIZE", "abc"], "TRAIN.BATCH_SIZE"),
    (["TRAIN.BATCH_SIZE", "0"], "TRAIN.BATCH_SIZE"),
    (["DATA.DECODER", "opencv"], "DATA.DECODER"),
    (["DATA.SAMPLING", "sparse"], "DATA.SAMPLING"),
    (["TEST.NUM_SPATIAL_CROPS", "2"], "NUM_SPATIAL_CROPS"),
    (["AUG.FLIP", "maybe"], "AUG.FLIP"),
    (["TRAIN.BATCH_SIZE"], "pairs"),
    (["DATA", "1"], "section"),
])
def test_bad_values_fail_clearly(opts, match):
    with pytest.raises(ConfigError, match=match):
        load_config("k400_tiny.yaml", opts)


def test_frozen_and_clone():
    cfg = load_config("k400_tiny.yaml")
    with pytest.raises(ConfigError):
        cfg.TRAIN.BATCH_SIZE = 2
    copy = cfg.clone()
    copy.TRAIN.BATCH_SIZE = 2
    assert cfg.TRAIN.BATCH_SIZE == 8 and copy.TRAIN.BATCH_SIZE == 2


def test_missing_config_file_lists_available():
    with pytest.raises(ConfigError, match="k400_tiny.yaml"):
        load_config("no_such_config.yaml")


def test_dump_round_trips(tmp_path):
    cfg = load_config("k400_tiny.yaml", ["TRAIN.BATCH_SIZE", "5"])
    out = tmp_path / "config.yaml"
    out.write_text(cfg.dump())
    assert load_config(out) == cfg


def test_every_default_key_is_commented():
    source = (ROOT / "sfvideo" / "config.py").read_text().splitlines()
    uncommented = []
    for i, line in enumerate(source):
        if line.startswith("_C.") and "CfgNode()" not in line:
            j = i - 1
            while j >= 0 and source[j].startswith("_C.") and "CfgNode()" not in source[j]:
                j -= 1  # a group of keys may share one comment
            if not source[j].lstrip().startswith("#"):
                uncommented.append(line.split("=")[0].strip())
    assert not uncommented, uncommented


def test_tool_parser_positionals_overrides_and_late_options(capsys):
    from sfvideo.cli.args import config_parser, parse_config

    parser = config_parser("test tool", positionals=[("video", "video file")])
    parser.add_argument("--topk", type=int, default=5)
    args, cfg = parse_config(parser, ["--cfg", "toy_tiny.yaml", "--topk", "3", "v.mp4", "DATA.NUM_FRAMES", "4"])
    assert (args.video, args.topk, cfg.DATA.NUM_FRAMES) == ("v.mp4", 3, 4)
    with pytest.raises(SystemExit) as exc:  # an option after VIDEO would be read as an override key
        parse_config(parser, ["--cfg", "toy_tiny.yaml", "v.mp4", "--topk", "3"])
    assert exc.value.code == 2 and "--topk comes after the positional arguments" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        parse_config(parser, ["--cfg", "toy_tiny.yaml", "v.mp4", "DATA.NUM_FRAME", "4"])
    assert exc.value.code == 2 and "DATA.NUM_FRAMES" in capsys.readouterr().err


@pytest.mark.parametrize("node, why", [("TEST", "the multi-view test runs"), ("TRAIN", "`sfvideo train` always trains")])
def test_retired_key_of_an_older_run_is_ignored_with_a_warning(tmp_path, node, why):
    old = tmp_path / "config.yaml"
    old.write_text(f"{node}:\n  ENABLE: true\n  BATCH_SIZE: 3\n")
    with pytest.warns(UserWarning, match=f"{node}.ENABLE .* no longer used and was ignored: {why}"):
        cfg = load_config(str(old), [f"{node}.ENABLE", "false"])
    assert cfg[node].BATCH_SIZE == 3 and "ENABLE" not in cfg[node]
    with pytest.raises(ConfigError, match="TEST.ENABLED"):
        load_config(None, ["TEST.ENABLED", "true"])


def test_decoder_keys_validated():
    from sfvideo.config import ConfigError, load_config

    cfg = load_config(None, [])
    assert cfg.DATA.DECODER == "auto" and cfg.DATA.SEEK_MODE == "exact" and cfg.DATA.CLIPS_PER_DECODE == 1
    for opts, match in ((["DATA.DECODER", "opencv"], "DATA.DECODER"), (["DATA.SEEK_MODE", "fast"], "DATA.SEEK_MODE"),
                        (["DATA.CLIPS_PER_DECODE", "0"], "CLIPS_PER_DECODE"),
                        (["DATA.DECODE_DEVICE", "cuda", "DATA.DECODER", "pyav", "DATA.NUM_WORKERS", "0"], "torchcodec"),
                        (["DATA.DECODE_DEVICE", "cuda"], "NUM_WORKERS 0")):
        with pytest.raises(ConfigError, match=match):
            load_config(None, opts)
    assert load_config(None, ["DATA.DECODE_DEVICE", "cuda", "DATA.NUM_WORKERS", "0"]).DATA.DECODE_DEVICE == "cuda"


# ------------------------------------------------------------------ every numeric key has a range
def _numeric(value) -> bool:
    number = (int, float)
    if isinstance(value, bool):
        return False
    if isinstance(value, number):
        return True
    return isinstance(value, list) and bool(value) and all(isinstance(v, number) and not isinstance(v, bool)
                                                           for v in value)


def _leaves(node, prefix=""):
    for key, value in node.items():
        if isinstance(value, dict):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def test_every_numeric_key_has_a_range():
    from sfvideo.config import NUMERIC_RANGES, get_cfg

    numeric = {k for k, v in _leaves(get_cfg()) if _numeric(v)}
    assert numeric - set(NUMERIC_RANGES) == set(), "numeric keys without a range in NUMERIC_RANGES"
    assert set(NUMERIC_RANGES) - numeric == set(), "ranges for keys that are not numeric keys of the tree"


def _outside(rng) -> list:
    """Values just outside ``rng`` (below its low end, above its high end)."""
    import math

    values = []
    if rng.low > -math.inf:
        values.append(rng.low if rng.low_open else rng.low - (1 if rng.integer else 0.5))
    if rng.high < math.inf:
        values.append(rng.high if rng.high_open else rng.high + (1 if rng.integer else 0.5))
    return [v for v in values if v not in rng.also]


def _cases():
    from sfvideo.config import NUMERIC_RANGES, get_cfg

    defaults = dict(_leaves(get_cfg()))
    for key, rng in NUMERIC_RANGES.items():
        for bad in _outside(rng):
            default = defaults[key]
            value = [bad] * len(default) if isinstance(default, list) else bad
            yield key, str(value)


@pytest.mark.parametrize("key,value", list(_cases()))
def test_a_value_outside_its_range_is_refused_naming_the_key(key, value):
    with pytest.raises(ConfigError) as err:
        load_config(None, [key, value])
    message = str(err.value)
    assert key in message and "\n" not in message and "expected" in message


@pytest.mark.parametrize("key,value", [
    ("AUG.MIXUP_ALPHA", "-1"), ("AUG.RE_PROB", "5"), ("SOLVER.MIN_LR", "-1"), ("SOLVER.BASE_LR", "-0.01"),
    ("SOLVER.BASE_LR", "0"), ("SOLVER.BETAS", "[0.9, 1.5]"), ("SOLVER.BETAS", "[0.9, 1.0]"),
    ("MODEL.DROP_PATH_RATE", "2"), ("DATA.TRAIN_JITTER_SCALES", "[256.5, 320]"), ("NUM_THREADS", "100000"),
    ("DATA.NUM_WORKERS", "100000"), ("DATA.MEAN", "[123.7, 116.3, 103.5]"), ("DATA.STD", "[58.4, 57.1, 57.4]"),
    ("AUG.MIX_PROB", "1.5"), ("AUG.LABEL_SMOOTHING", "1"), ("SOLVER.LAYER_DECAY", "0"),
    ("DATA.TRAIN_JITTER_AREA", "[0.08, 2.0]"), ("DATA.TRAIN_JITTER_ASPECT", "[0, 1.3]"),
    ("MODEL.TEMPORAL_REPLICATES", "0"), ("MODEL.NUM_CLASSES", "-2"), ("RNG_SEED", "-1"),
])
def test_values_that_used_to_train_wrongly_or_crash_later_are_refused(key, value):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config("k400_tiny.yaml", [key, value])


@pytest.mark.parametrize("key,value", [
    ("MODEL.DROP_PATH_RATE", "-1"), ("MODEL.TEMPORAL_REPLICATES", "-1"), ("MODEL.DROP_PATH_RATE", "0"),
    ("AUG.RE_PROB", "1"), ("SOLVER.BETAS", "[0, 0.5]"), ("TEST.MAX_VIEWS_PER_BATCH", "0"), ("NUM_THREADS", "0"),
])
def test_values_inside_their_range_load(key, value):
    load_config("k400_tiny.yaml", [key, value])


def test_a_yaml_float_for_an_integer_list_is_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("DATA:\n  TRAIN_JITTER_SCALES: [256.0, 320]\n")
    with pytest.raises(ConfigError, match=r"DATA\.TRAIN_JITTER_SCALES.*whole numbers"):
        load_config(bad)
