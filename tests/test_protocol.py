"""Weights that carry their preprocessing: variant defaults, configs, checkpoint records."""

import pytest
import torch

from sfvideo.checkpoint import CheckpointError, atomic_save, checkpoint_meta, config_from_checkpoint
from sfvideo.config import load_config
from sfvideo.models import build_model, create_model, list_models
from sfvideo.models.protocol import InputProtocol, default_protocol


@pytest.mark.parametrize("arch", list_models())
def test_every_variant_knows_its_protocol(arch):
    """(Its models carry it: test_models.py's variant-registry test.)"""
    protocol = default_protocol(arch)
    assert protocol.num_frames >= 1 and protocol.crop_size > 0 and len(protocol.mean) == len(protocol.std) == 3


def test_k400_variants_follow_the_k400_recipe():
    p = default_protocol("video_tiny")
    assert (p.num_frames, p.sampling_rate, p.crop_size, p.num_clips, p.num_crops) == (32, 2, 224, 4, 3)
    assert default_protocol("video_toy").crop_size == 96


def test_protocol_round_trips_through_dict_and_config():
    cfg = load_config("toy_tiny.yaml", ["DATA.MEAN", "[0.5, 0.5, 0.5]", "TEST.NUM_ENSEMBLE_VIEWS", "3"])
    protocol = InputProtocol.from_config(cfg)
    assert (protocol.num_frames, protocol.crop_size, protocol.num_clips, protocol.mean) == (8, 96, 3, (0.5, 0.5, 0.5))
    assert InputProtocol.from_dict(protocol.to_dict()) == protocol
    assert InputProtocol.from_config(load_config(None, protocol.config_overrides())) == protocol
    assert build_model(cfg).protocol == protocol
    with pytest.raises(ValueError, match="unknown input-protocol fields.*'frames'"):
        InputProtocol.from_dict({"frames": 8}, source="x.pth")


def _toy_checkpoint(tmp_path, extra):
    cfg = load_config("toy_tiny.yaml", ["MODEL.ARCH", "video_test", "MODEL.NUM_CLASSES", "3",
                                        "DATA.NUM_FRAMES", "4", "TEST.CLIP_PLACEMENT", "slowfast"])
    model = build_model(cfg)
    path = tmp_path / "run.pth"
    atomic_save({"model": model.state_dict(), **extra(cfg)}, path)
    return cfg, path


def test_checkpoint_runs_without_its_config(tmp_path):
    cfg, path = _toy_checkpoint(tmp_path, extra=lambda c: {"meta": checkpoint_meta(c, ["a", "b", "c"])})
    loaded, names = config_from_checkpoint(path, ["TEST.BATCH_SIZE", "2"])
    assert names == ["a", "b", "c"]
    assert (loaded.MODEL.ARCH, loaded.MODEL.NUM_CLASSES, loaded.TEST.CHECKPOINT) == ("video_test", 3, str(path))
    assert InputProtocol.from_config(loaded) == InputProtocol.from_config(cfg)
    assert loaded.TEST.BATCH_SIZE == 2
    model = build_model(loaded)  # the recorded model is rebuilt and its weights fit
    model.load_state_dict(torch.load(path, weights_only=True)["model"])


def test_earlier_training_checkpoints_use_their_saved_config(tmp_path):
    cfg, path = _toy_checkpoint(tmp_path, extra=lambda c: {"cfg": c.to_dict()})
    loaded, names = config_from_checkpoint(path)
    assert names is None and loaded.MODEL.ARCH == "video_test" and loaded.DATA.NUM_FRAMES == 4


def test_a_plain_state_dict_asks_for_a_config(tmp_path):
    path = tmp_path / "plain.pth"
    torch.save(create_model("video_test").state_dict(), path)
    with pytest.raises(CheckpointError, match=r"plain\.pth.*--cfg"):
        config_from_checkpoint(path)


def test_inflated_checkpoint_records_the_protocol(tmp_path):
    from sfvideo.checkpoint import inflate_checkpoint

    image = tmp_path / "image.pth"
    torch.save({"model": create_model("image_test", num_classes=5).state_dict()}, image)
    cfg = load_config(None, ["MODEL.ARCH", "video_test", "MODEL.NUM_CLASSES", "5", "DATA.NUM_FRAMES", "4"])
    out = tmp_path / "video.pth"
    inflate_checkpoint(image, build_model(cfg), out, log=None, cfg=cfg)
    loaded, _ = config_from_checkpoint(out)
    assert (loaded.MODEL.ARCH, loaded.DATA.NUM_FRAMES) == ("video_test", 4)


def test_training_checkpoints_record_model_protocol_and_class_names(tmp_path):
    from engine_helpers import CLASS_NAMES, make_video_dataset, tiny_opts
    from sfvideo.engine.train import train

    data = make_video_dataset(tmp_path / "videos", num_train=4, num_val=2)
    cfg = load_config("k400_tiny.yaml", tiny_opts(data, tmp_path / "run", **{"SOLVER.MAX_EPOCH": 1}))
    train(cfg)
    loaded, names = config_from_checkpoint(tmp_path / "run" / "checkpoints" / "last.pth")
    assert names == CLASS_NAMES
    assert InputProtocol.from_config(loaded) == InputProtocol.from_config(cfg)
    assert (loaded.MODEL.ARCH, loaded.MODEL.NUM_CLASSES) == (cfg.MODEL.ARCH, cfg.MODEL.NUM_CLASSES)


def test_the_default_protocol_makes_a_config_that_loads():
    """A protocol with the dataclass defaults (official weights, hand-built ONNX metadata) turns
    into config overrides that load: its frame rate is a whole number, as DATA.TARGET_FPS is."""
    cfg = load_config(None, InputProtocol().config_overrides())
    assert InputProtocol.from_config(cfg) == InputProtocol()
