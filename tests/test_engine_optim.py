"""Optimiser parameter groups, LR scaling and the warmup + cosine schedule."""

import math

import pytest
import torch

from sfvideo.config import load_config
from sfvideo.engine.optim import (
    WarmupCosineSchedule,
    build_optimizer,
    build_schedule,
    param_groups,
    scaled_lr,
    total_batch_size,
)
from sfvideo.models import build_model


@pytest.fixture(scope="module")
def model():
    cfg = load_config("k400_tiny.yaml", ["MODEL.ARCH", "video_test", "MODEL.NUM_CLASSES", "4"])
    return build_model(cfg)


def test_no_decay_on_norms_biases_rois_embeddings(model):
    groups = param_groups(model, weight_decay=0.05)
    decayed = {n for g in groups if g["weight_decay"] > 0 for n in g["param_names"]}
    plain = {n for g in groups if g["weight_decay"] == 0 for n in g["param_names"]}
    params = dict(model.named_parameters())
    assert decayed | plain == set(params) and not decayed & plain
    for name in model.no_weight_decay():
        assert name in plain, name
    for name, p in params.items():
        if p.ndim <= 1 or name.endswith(".bias"):
            assert name in plain, name
    assert "initial_roi.weight" in plain and "initial_embedding.weight" in plain
    assert decayed and all(params[n].ndim >= 2 for n in decayed)


def test_layer_decay_scales(model):
    groups = param_groups(model, weight_decay=0.05, layer_decay=0.5)
    scale = {n: g["lr_scale"] for g in groups for n in g["param_names"]}
    top = model.num_layers
    assert scale["proj.weight"] == 1.0
    assert scale["initial_roi.weight"] == pytest.approx(0.5 ** top)
    first_unit = next(n for n in scale if n.startswith("layers.0."))
    assert scale[first_unit] == pytest.approx(0.5 ** (top - 1))
    opt = build_optimizer(model, lr=1.0, weight_decay=0.05, layer_decay=0.5)
    for g in opt.param_groups:
        assert g["lr"] == pytest.approx(g["lr_scale"])


def test_lr_scaling_rule():
    assert total_batch_size(8, 4, 2) == 64
    assert scaled_lr(1e-3, 64, 512) == pytest.approx(1.25e-4)
    assert scaled_lr(1e-3, 512, 512) == pytest.approx(1e-3)


def test_schedule_values():
    p = torch.nn.Parameter(torch.zeros(2, 2))
    opt = torch.optim.AdamW([{"params": [p], "lr_scale": 0.5}], lr=1.0)
    s = WarmupCosineSchedule(opt, peak_lr=1.0, total_steps=100, warmup_steps=10, start_lr=0.0, min_lr=0.01)
    assert s.lr_at(0) == 0.0
    assert s.lr_at(5) == pytest.approx(0.5)
    assert s.lr_at(10) == pytest.approx(1.0)  # warmup end: the peak
    assert s.lr_at(55) == pytest.approx(0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert s.lr_at(100) == pytest.approx(0.01)  # end: the minimum
    assert s.lr_at(1000) == pytest.approx(0.01)
    assert opt.param_groups[0]["lr"] == 0.0
    for _ in range(10):
        s.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5)  # peak x lr_scale
    s2 = WarmupCosineSchedule(opt, 1.0, 100, 10, 0.0, 0.01)
    s2.load_state_dict(s.state_dict())
    assert s2.get_lr() == s.get_lr()


def test_schedule_from_config_uses_epochs():
    cfg = load_config("k400_tiny.yaml", ["SOLVER.MAX_EPOCH", "4", "SOLVER.WARMUP_EPOCHS", "1.5",
                                         "SOLVER.MIN_LR", "0.0", "SOLVER.WARMUP_START_LR", "0.0"])
    s = build_schedule(cfg, None, steps_per_epoch=10, peak_lr=2.0)
    assert (s.warmup_steps, s.total_steps) == (15, 40)
    assert s.lr_at(15) == pytest.approx(2.0) and s.lr_at(40) == pytest.approx(0.0)
