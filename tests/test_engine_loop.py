"""train_one_epoch on its own: a linear model, batches in memory, explicit EpochOptions."""

import math

import pytest
import torch
from torch import nn

from sfvideo.engine.loop import EpochOptions, EpochStats, NonFiniteLossError, train_one_epoch


class _Schedule:
    def __init__(self):
        self.steps = 0

    def step(self):
        self.steps += 1


class _Writer:
    def __init__(self):
        self.scalars = []

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, step))


def _setup(num_batches=8, batch=2):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 2 * 4 * 4, 3))
    batches = [{"video": torch.randn(batch, 3, 2, 4, 4), "label": torch.randint(0, 3, (batch,)),
                "num_failed": [i % 2, 0]} for i in range(num_batches)]
    return model, torch.optim.SGD(model.parameters(), lr=0.1), _Schedule(), batches


def test_options_default_to_a_fresh_epoch():
    a, b = EpochOptions(num_steps=3), EpochOptions(num_steps=3)
    assert (a.start_step, a.global_step, a.accum_steps, a.amp, a.norm, a.mixup) == (0, 0, 1, "none", None, None)
    assert a.stats is not b.stats and a.stats == EpochStats() and a.should_stop() is False


def test_runs_the_remaining_steps_with_accumulation_and_reports():
    model, optimizer, schedule, batches = _setup()
    before = [p.detach().clone() for p in model.parameters()]
    writer = _Writer()
    options = EpochOptions(num_steps=4, start_step=1, global_step=5, accum_steps=2, log_period=2, writer=writer,
                           is_main=True)
    outcome = train_one_epoch(model, nn.functional.cross_entropy, optimizer, schedule, iter(batches),
                              torch.device("cpu"), 0, options)
    assert (outcome.next_step, outcome.stopped, outcome.global_step) == (4, False, 8)
    assert schedule.steps == 3 and options.stats.clips == 12 and options.stats.failed == 3  # 3 steps x 2 x 2 clips
    assert math.isfinite(options.stats.loss_sum) and outcome.clips_per_s > 0
    assert not any(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert writer.scalars == [("train/loss", 6), ("train/lr", 6), ("train/loss", 8), ("train/lr", 8)]  # steps 2 and 4


def test_a_stop_request_ends_the_epoch_after_the_current_step():
    model, optimizer, schedule, batches = _setup()
    options = EpochOptions(num_steps=5, should_stop=lambda: True)
    outcome = train_one_epoch(model, nn.functional.cross_entropy, optimizer, schedule, batches,
                              torch.device("cpu"), 0, options)
    assert (outcome.next_step, outcome.stopped, outcome.global_step, schedule.steps) == (1, True, 1, 1)


def test_a_non_finite_loss_raises_before_the_weights_change():
    model, optimizer, schedule, batches = _setup()
    batches[1]["video"][0, 0, 0, 0, 0] = float("nan")
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(NonFiniteLossError, match="epoch 3, step 1 of 2"):
        train_one_epoch(model, nn.functional.cross_entropy, optimizer, schedule, batches, torch.device("cpu"), 2,
                        EpochOptions(num_steps=2, accum_steps=2))
    assert schedule.steps == 0 and all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
