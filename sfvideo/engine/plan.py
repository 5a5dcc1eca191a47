"""How long a training run is: optimiser steps per epoch, and the epochs ``SOLVER.MIN_STEPS``
asks for. Plain arithmetic on the config (no torch), so ``build-lists`` can say it too.

A recipe's learning rate, warm-up and length are set for a number of optimiser steps; counted in
epochs, a small data set gives it a fraction of them. ``SOLVER.MIN_STEPS`` is the recipe's floor:
when ``SOLVER.MAX_EPOCH`` epochs of the data give fewer steps, the run takes the fewest whole
epochs that reach it, and its warm-up the same share of them. A set smaller than the one the floor
was set for (``SOLVER.MIN_STEPS_CLIPS``) needs more steps still, not only more epochs: its floor
grows by ``SOLVER.MIN_STEPS`` for every ten times fewer clips. An epoch capped by
``TRAIN.MAX_STEPS_PER_EPOCH`` (a smoke test) is left as asked.
"""

from __future__ import annotations

import math


def epoch_steps(cfg, num_clips: int, world_size: int = 1) -> int:
    """Optimiser steps in one epoch of ``num_clips`` training clips: each process's share
    (rounded up, as ``DistributedSampler`` pads it) in whole batches of ``TRAIN.BATCH_SIZE`` x
    ``TRAIN.ACCUM_STEPS``, at most ``TRAIN.MAX_STEPS_PER_EPOCH`` (when set)."""
    share = -(-num_clips // world_size)
    steps = share // cfg.TRAIN.BATCH_SIZE // cfg.TRAIN.ACCUM_STEPS
    cap = cfg.TRAIN.MAX_STEPS_PER_EPOCH
    return min(steps, cap) if cap > 0 else steps


def min_steps(cfg, num_clips: int) -> int:
    """The recipe's floor for a training set of ``num_clips`` clips: ``SOLVER.MIN_STEPS``, times
    ``1 + log10(SOLVER.MIN_STEPS_CLIPS / num_clips)`` when the set is smaller than
    ``SOLVER.MIN_STEPS_CLIPS`` (toy recipe: 1680 steps for 1920 clips, 3494 for 160, 5174 for 16)."""
    floor, ref = cfg.SOLVER.MIN_STEPS, cfg.SOLVER.MIN_STEPS_CLIPS
    if floor <= 0 or ref <= 0 or not 0 < num_clips < ref:
        return floor
    return math.ceil(floor * (1 + math.log10(ref / num_clips)))


def planned_epochs(cfg, steps_per_epoch: int, num_clips: int) -> int:
    """``SOLVER.MAX_EPOCH``, raised to the fewest epochs of ``steps_per_epoch`` that reach the
    floor of a ``num_clips``-clip set (:func:`min_steps`; none when ``TRAIN.MAX_STEPS_PER_EPOCH``
    caps the epochs)."""
    epochs, floor = cfg.SOLVER.MAX_EPOCH, min_steps(cfg, num_clips)
    if floor <= 0 or steps_per_epoch <= 0 or cfg.TRAIN.MAX_STEPS_PER_EPOCH > 0:
        return epochs
    return max(epochs, -(-floor // steps_per_epoch))


def planned_warmup_epochs(cfg, epochs: int) -> float:
    """``SOLVER.WARMUP_EPOCHS`` for a run of ``epochs`` epochs: scaled by ``epochs /
    SOLVER.MAX_EPOCH``, so a run raised to its floor warms up for the same share of its steps as
    the recipe (0.25 of 7 epochs raised to 175: 6.25)."""
    return cfg.SOLVER.WARMUP_EPOCHS * epochs / cfg.SOLVER.MAX_EPOCH


def raise_reason(cfg, num_clips: int) -> str:
    """``"SOLVER.MIN_STEPS 1680, raised to 3494 for 160 clips (SOLVER.MIN_STEPS_CLIPS 1920)"``,
    or ``"SOLVER.MIN_STEPS 1680"`` when the set is not smaller than the one the floor was set for."""
    floor = min_steps(cfg, num_clips)
    if floor == cfg.SOLVER.MIN_STEPS:
        return f"SOLVER.MIN_STEPS {floor}"
    return (f"SOLVER.MIN_STEPS {cfg.SOLVER.MIN_STEPS}, raised to {floor} for {num_clips} clips "
            f"(SOLVER.MIN_STEPS_CLIPS {cfg.SOLVER.MIN_STEPS_CLIPS})")


def steps_line(cfg, steps_per_epoch: int, num_clips: int) -> str:
    """``"175 epochs x 20 optimiser steps = 3500 steps (SOLVER.MAX_EPOCH 7 raised to reach
    SOLVER.MIN_STEPS 1680, raised to 3494 for 160 clips (SOLVER.MIN_STEPS_CLIPS 1920))"``: what a
    run on ``num_clips`` clips of ``steps_per_epoch`` steps an epoch takes."""
    epochs = planned_epochs(cfg, steps_per_epoch, num_clips)
    line = f"{epochs} epochs x {steps_per_epoch} optimiser steps = {epochs * steps_per_epoch} steps"
    if epochs != cfg.SOLVER.MAX_EPOCH:
        line += f" (SOLVER.MAX_EPOCH {cfg.SOLVER.MAX_EPOCH} raised to reach {raise_reason(cfg, num_clips)})"
    return line
