"""Model directories in the Hub's layout: `sfvideo export --format hub` writes safetensors, config and
card and no pickle; a directory, a .safetensors file and an `hf-hub:` name (from a pre-filled Hub
cache, offline) load everywhere a checkpoint is taken, under the same strict rules as a .pth."""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import subprocess
import sys

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from engine_helpers import CLASS_NAMES, ROOT, make_video_dataset, tiny_opts
from sfvideo.checkpoint import (
    CheckpointError,
    atomic_save,
    checkpoint_meta,
    config_from_checkpoint,
    from_pretrained,
    load_pretrained,
    load_test_weights,
    safe_load,
    save_pretrained,
)
from sfvideo.checkpoint.hub import parse_hub_name
from sfvideo.config import load_config
from sfvideo.models import build_model
from sfvideo.models.protocol import InputProtocol

FILES = {"model.safetensors", "config.json", "README.md"}
RESULTS = {"top1": 62.5, "top5": 100.0, "mean_class_accuracy": 58.25, "num_videos": 8, "views_per_video": 2,
           "split": "test", "failed_videos": ["val/bad.mp4"], "clip_top1": 50.0}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A training checkpoint of video_test (4 classes) as `sfvideo train` writes it, its config and data."""
    tmp = tmp_path_factory.mktemp("hub")
    data = make_video_dataset(tmp / "videos", num_train=1, num_val=2, frames=24)
    cfg = load_config("toy_tiny.yaml", tiny_opts(data, tmp / "out"))
    torch.manual_seed(3)
    model = build_model(cfg)
    ckpt = tmp / "best.pth"
    atomic_save({"model": model.state_dict(), "optimizer": {}, "epoch": 2, "best_top1": 50.0, "cfg": cfg.to_dict(),
                 "meta": checkpoint_meta(cfg, CLASS_NAMES)}, ckpt)
    results = tmp / "test_results.json"
    results.write_text(json.dumps(RESULTS))
    return {"tmp": tmp, "data": data, "cfg": cfg, "ckpt": ckpt, "results": results, "model": model.eval()}


@pytest.fixture(scope="module")
def model_dir(run):
    from sfvideo.cli import export

    out = run["tmp"] / "sf-video-test"
    export.main(["--checkpoint", str(run["ckpt"]), "--format", "hub", "--out", str(out),
                 "--test-results", str(run["results"]), "--dataset", "sfvideo-toy"])
    return out


def _clip(cfg, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, 3, cfg.DATA.NUM_FRAMES, cfg.DATA.TEST_CROP_SIZE, cfg.DATA.TEST_CROP_SIZE, generator=g)


def _is_pickle(path) -> bool:
    head = path.read_bytes()[:4]
    return head[:1] == b"\x80" or head == b"PK\x03\x04"  # a raw pickle, or torch.save's zip of one


def test_export_writes_safetensors_config_and_card_and_no_pickle(run, model_dir):
    assert {p.name for p in model_dir.iterdir()} == FILES
    assert not any(_is_pickle(p) for p in model_dir.iterdir())
    weights = load_file(model_dir / "model.safetensors")
    expected = torch.load(run["ckpt"], weights_only=True)["model"]
    assert set(weights) == set(expected)  # the keys of a .pth's model state dict
    assert all(torch.equal(weights[k], expected[k]) for k in expected)
    config = json.loads((model_dir / "config.json").read_text())
    cfg = run["cfg"]
    assert config["library_name"] == "sfvideo" and config["architecture"] == "video_test"
    assert config["num_classes"] == 4 and config["class_names"] == CLASS_NAMES
    assert config["model"] == {"ARCH": "video_test", "NUM_CLASSES": 4, "TEMPORAL_REPLICATES": -1, "PADDING_MODE": "zeros"}
    assert config["protocol"] == json.loads(json.dumps(InputProtocol.from_config(cfg).to_dict()))
    assert config["sfvideo_version"] == __import__("sfvideo").__version__
    assert config["training"]["base_config"] == "toy_tiny.yaml" and config["training"]["epochs"] == 2


def test_model_card_has_front_matter_training_evaluation_compute_and_no_placeholder(model_dir):
    card = (model_dir / "README.md").read_text()
    _, front, body = card.split("---\n", 2)
    meta = yaml.safe_load(front)
    assert meta["library_name"] == "sfvideo" and meta["pipeline_tag"] == "video-classification"
    assert meta["license"] == "mit" and "action-recognition" in meta["tags"]
    assert meta["datasets"] == ["sfvideo-toy"] and meta["metrics"] == ["accuracy"]
    assert body.startswith("\n# sf-video-test\n")
    for section in ("## Classes", "## Input", "## Training", "## Evaluation", "## Compute", "## How to use",
                    "## Limitations"):
        assert section in body, section
    assert "`configs/toy_tiny.yaml` with these changes" in body and "synthetic toy dataset" in body
    assert '| `MODEL.ARCH` | `"video_test"` |' in body and "| `SOLVER.BASE_LR` | `0.5` |" in body
    assert "OUTPUT_DIR" not in body and "PATH_TO_DATA_DIR" not in body  # the run's environment is left out
    assert "| test | 8 | 2 | 62.50% | 100.00% | 58.25% |" in body and "1 listed video could not be decoded and is not counted" in body
    assert "GFLOPs per view" in body and "parameters" in body
    assert "`left`, `right`, `up`, `down`" in body
    assert "sfvideo predict --checkpoint sf-video-test video.mp4" in body
    assert "More information needed" not in body and "TODO" not in body and "[" not in body.split("## Limitations")[1]


@pytest.mark.parametrize("cfg_file,opts,base,changes,datasets", [
    ("k400_tiny.yaml", ["SOLVER.BASE_LR", "0.002"], "k400_tiny.yaml", {"SOLVER.BASE_LR": 0.002}, ["kinetics-400"]),
    ("k400_tiny.yaml", ["MODEL.ARCH", "video_small"], "k400_small.yaml", {}, ["kinetics-400"]),
    ("k600_tiny.yaml", ["MODEL.NUM_CLASSES", "600"], "k600_tiny.yaml", {"MODEL.NUM_CLASSES": 600}, ["kinetics-600"]),
    (None, ["DATA.NUM_FRAMES", "8"], "sfvideo's defaults", {"DATA.NUM_FRAMES": 8}, []),
])
def test_training_record_names_the_closest_shipped_config(cfg_file, opts, base, changes, datasets):
    from sfvideo.checkpoint.card import CardFacts, card_datasets
    from sfvideo.checkpoint.training import closest_base

    cfg = load_config(cfg_file, opts + ["OUTPUT_DIR", "/elsewhere", "DATA.NUM_WORKERS", "3"])
    assert closest_base(cfg.to_dict()) == (base, changes)
    assert card_datasets(CardFacts("x", training={"base_config": base})) == datasets


def test_directory_and_safetensors_file_give_the_logits_of_the_pth(run, model_dir, tmp_path):
    clip = _clip(run["cfg"])
    with torch.no_grad():
        want = run["model"](clip)
        assert torch.equal(from_pretrained(model_dir)(clip), want)
        lone = tmp_path / "weights.safetensors"  # the meta travels in the header without config.json
        shutil.copy(model_dir / "model.safetensors", lone)
        model = from_pretrained(lone)
        assert torch.equal(model(clip), want) and model.class_names == CLASS_NAMES


def test_loading_a_model_directory_never_unpickles(run, model_dir, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("unpickling while loading a model directory")

    class RefusingUnpickler(pickle.Unpickler):
        load = refuse

    for name in ("load", "loads"):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(pickle, "Unpickler", RefusingUnpickler)
    monkeypatch.setattr(torch, "load", refuse)
    with pytest.raises(CheckpointError, match="unpickling while loading"):  # the guard works: a .pth unpickles
        safe_load(run["ckpt"])
    cfg, names = config_from_checkpoint(model_dir)
    model = build_model(cfg)
    load_test_weights(model, model_dir, log=None)
    assert names == CLASS_NAMES and torch.equal(model.eval()(_clip(cfg)), run["model"](_clip(cfg)))


def test_loading_is_as_strict_as_for_a_pth(run, model_dir, tmp_path):
    other = build_model(load_config("k400_tiny.yaml", tiny_opts(run["data"], tmp_path, **{"MODEL.NUM_CLASSES": 5})))
    with pytest.raises(CheckpointError, match="checkpoint has 4 classes, the model 5"):
        load_test_weights(other, model_dir, log=None)
    report = load_pretrained(other, model_dir, log=None, allow_new_classifier=True)  # TRAIN.CHECKPOINT: fine-tuning
    assert report.new_classifier and len(report.loaded) == len(other.state_dict()) - 2
    partial = tmp_path / "partial"
    shutil.copytree(model_dir, partial)
    weights = load_file(partial / "model.safetensors")
    del weights["initial_roi.weight"]
    save_file(weights, partial / "model.safetensors")
    with pytest.raises(CheckpointError, match="would keep their fresh initialisation: initial_roi.weight"):
        load_test_weights(build_model(run["cfg"]), partial, log=None)


def test_unusable_directories_and_files_are_named(run, model_dir, tmp_path):
    empty = tmp_path / "checkpoints"
    empty.mkdir()
    shutil.copy(run["ckpt"], empty / "best.pth")
    with pytest.raises(CheckpointError, match="no model.safetensors; it holds best.pth: pass that file"):
        safe_load(empty)
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    data = (broken / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="no readable safetensors file"):
        safe_load(broken)
    (broken / "model.safetensors").write_bytes(data)
    (broken / "config.json").write_text(json.dumps({"library_name": "timm", "architecture": "vit"}))
    with pytest.raises(CheckpointError, match="not an sfvideo model's"):
        safe_load(broken)


def test_save_pretrained_refuses_a_file_or_a_directory_holding_a_pickle(run, tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(CheckpointError, match="is a file"):
        save_pretrained(run["model"], tmp_path / "file", run["cfg"])
    held = tmp_path / "held"
    held.mkdir()
    (held / "pytorch_model.bin").write_bytes(b"\x80\x04")
    with pytest.raises(CheckpointError, match="holds pytorch_model.bin: a model directory holds no pickle"):
        save_pretrained(run["model"], held, run["cfg"])
    with pytest.raises(CheckpointError, match="3 class names for a model of 4 classes"):
        save_pretrained(run["model"], tmp_path / "names", run["cfg"], class_names=["a", "b", "c"])


def test_exporting_a_model_directory_again_keeps_its_training_record(run, model_dir, tmp_path):
    from sfvideo.cli import export

    again = tmp_path / "again"
    export.main(["--checkpoint", str(model_dir), "--format", "hub", "--out", str(again), "--repo-id", "org/again"])
    config = json.loads((again / "config.json").read_text())
    assert config["training"] == json.loads((model_dir / "config.json").read_text())["training"]
    card = (again / "README.md").read_text()
    assert "sfvideo predict --checkpoint hf-hub:org/again video.mp4" in card and "## Evaluation" not in card


def _top5_lines(text: str) -> list[str]:
    """predict's ranked lines ("  1. name  12.34%  (class k)"), whatever else was printed."""
    return [line for line in text.splitlines() if re.match(r"^\s+\d+\. \S+\s+[\d.]+%", line)]


def test_predict_on_the_directory_gives_the_top5_of_the_pth(run, model_dir, capsys):
    from sfvideo.cli import predict

    video = str(run["data"] / "val" / "v01.mp4")
    predict.main(["--checkpoint", str(run["ckpt"]), video])
    want = _top5_lines(capsys.readouterr().out)
    predict.main(["--checkpoint", str(model_dir), video])
    got = _top5_lines(capsys.readouterr().out)
    assert len(want) == 4 and got == want


def test_test_and_extract_features_take_the_directory_as_they_take_the_pth(run, model_dir, tmp_path):
    import numpy as np

    from sfvideo.cli import extract_features, test

    data = run["data"]
    results, features = {}, {}
    for name, ckpt in (("pth", run["ckpt"]), ("dir", model_dir)):
        out = tmp_path / name
        test.main(["--cfg", "toy_tiny.yaml", *tiny_opts(data, out), "TEST.CHECKPOINT", str(ckpt)])
        results[name] = json.loads((out / "test_results.json").read_text())
        extract_features.main(["--checkpoint", str(ckpt), "--out", str(out / "feats"), "--list",
                               str(data / "val.txt"), "DATA.PATH_TO_DATA_DIR", str(data)])
        features[name] = np.load(out / "feats" / "features.npy")
    assert results["dir"]["num_videos"] == 2 and results["dir"]["checkpoint"] == str(model_dir)
    assert {k: results["dir"][k] for k in ("top1", "top5", "mean_class_accuracy")} == \
        {k: results["pth"][k] for k in ("top1", "top5", "mean_class_accuracy")}
    assert features["dir"].shape == (2, 64) and np.array_equal(features["dir"], features["pth"])


# ------------------------------------------------------------------------------------ the Hub cache
def fill_hub_cache(cache, repo_id: str, model_dir, revision: str = "main", commit: str = "a" * 40):
    """The layout huggingface_hub's cache has after `hf download ORG/NAME`: refs/<revision> names the
    commit, snapshots/<commit>/ holds the files."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / revision).write_text(commit)
    shutil.copytree(model_dir, repo / "snapshots" / commit, dirs_exist_ok=True)
    return repo


@pytest.mark.parametrize("spec,want", [
    ("hf-hub:org/name", ("org/name", None)),
    ("hf-hub:org/name@v1.0", ("org/name", "v1.0")),
    ("hf-hub:org/name@refs/pr/1", ("org/name", "refs/pr/1")),
])
def test_hub_names_parse(spec, want):
    assert parse_hub_name(spec) == want


@pytest.mark.parametrize("spec", ["hf-hub:name", "hf-hub:org/name@", "hf-hub:a/b/c", "hf-hub:org/name@../../x",
                                  "hf-hub:../x", "hf-hub:org/.."])
def test_bad_hub_names_are_refused(spec):
    with pytest.raises(CheckpointError, match="hf-hub:ORG/NAME"):
        parse_hub_name(spec)


def test_hub_name_loads_from_the_cache_offline(run, model_dir, tmp_path, monkeypatch):
    from huggingface_hub import constants

    from sfvideo.checkpoint.hub import hub_snapshot

    fill_hub_cache(tmp_path / "hub", "org/tiny", model_dir)
    fill_hub_cache(tmp_path / "hub", "org/tiny", model_dir, revision="v1", commit="b" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # what HF_HUB_OFFLINE=1 sets at import
    hub_snapshot.cache_clear()
    clip = _clip(run["cfg"])
    with torch.no_grad():
        assert torch.equal(from_pretrained("hf-hub:org/tiny")(clip), run["model"](clip))
        assert torch.equal(from_pretrained("hf-hub:org/tiny@v1")(clip), run["model"](clip))
    with pytest.raises(CheckpointError) as err:
        safe_load("hf-hub:org/absent")
    message = str(err.value)
    assert "\n" not in message and "HF_HUB_OFFLINE is set" in message and "hf download org/absent" in message
    hub_snapshot.cache_clear()


@pytest.mark.slow
def test_predict_by_hub_name_offline_in_a_fresh_process(run, model_dir, tmp_path):
    """The user's path: HF_HUB_OFFLINE=1 and HF_HOME in the environment, `sfvideo predict
    --checkpoint hf-hub:ORG/NAME`; the same top-5 as the .pth, and one line when it is not cached."""
    fill_hub_cache(tmp_path / "home" / "hub", "org/tiny", model_dir)
    env = {**os.environ, "HF_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    env.pop("HF_HUB_CACHE", None)
    video = str(run["data"] / "val" / "v01.mp4")
    cmd = [sys.executable, str(ROOT / "tools" / "predict.py"), "--checkpoint"]
    hub = subprocess.run(cmd + ["hf-hub:org/tiny", video], env=env, capture_output=True, text=True, timeout=300)
    pth = subprocess.run(cmd + [str(run["ckpt"]), video], env=env, capture_output=True, text=True, timeout=300)
    assert hub.returncode == 0, hub.stderr
    assert _top5_lines(hub.stdout) == _top5_lines(pth.stdout) and len(_top5_lines(hub.stdout)) == 4
    missing = subprocess.run(cmd + ["hf-hub:org/absent", video], env=env, capture_output=True, text=True, timeout=300)
    assert missing.returncode == 1 and len(missing.stderr.strip().splitlines()) == 1, missing.stderr
    assert "hf download org/absent" in missing.stderr and str(tmp_path / "home" / "hub") in missing.stderr


def test_the_cached_onnx_export_keys_on_the_weights_of_a_directory_or_hub_name(run, model_dir, tmp_path,
                                                                               monkeypatch):
    """`predict --runtime auto` exports a model directory or Hub snapshot once, and again when its
    model.safetensors changes."""
    from huggingface_hub import constants

    from sfvideo.checkpoint.hub import hub_snapshot
    from sfvideo.deploy import export
    from sfvideo.deploy import run as deploy_run

    exported: list[str] = []

    def fake_export(cfg, out, **kwargs):
        exported.append(cfg.TEST.CHECKPOINT)
        open(out, "wb").close()

    monkeypatch.setattr(export, "run_export", fake_export)
    monkeypatch.setenv("SFVIDEO_CACHE", str(tmp_path / "cache"))
    local = tmp_path / "local"
    shutil.copytree(model_dir, local)
    cfg, _ = config_from_checkpoint(local)
    first = deploy_run.cached_onnx_export(cfg, log=lambda s: None)
    assert deploy_run.cached_onnx_export(cfg, log=lambda s: None) == first and exported == [str(local)]
    stamp = (local / "model.safetensors").stat().st_mtime_ns
    os.utime(local / "model.safetensors", ns=(stamp, stamp + 10**9))  # new weights in the directory
    assert deploy_run.cached_onnx_export(cfg, log=lambda s: None) != first and len(exported) == 2
    fill_hub_cache(tmp_path / "hub", "org/tiny", model_dir)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    hub_snapshot.cache_clear()
    cfg, _ = config_from_checkpoint("hf-hub:org/tiny")
    assert deploy_run.cached_onnx_export(cfg, log=lambda s: None).is_file() and exported[-1] == "hf-hub:org/tiny"
    hub_snapshot.cache_clear()
