"""How long a training run is: optimiser steps per epoch, and the epochs ``SOLVER.MIN_STEPS``
asks for. Plain arithmetic on the config (no torch), so ``build-lists`` can say it too.

A recipe's learning rate, warm-up and length are set for a number of optimiser steps; counted in
epochs, a small data set gives it a fraction of them. ``SOLVER.MIN_STEPS`` is the recipe's floor:
when ``SOLVER.MAX_EPOCH`` epochs of the data give fewer steps, the run takes the fewest whole
epochs that reach it, and its warm-up the same share of them (so the recipe's warm-up steps). An
epoch capped by ``TRAIN.MAX_STEPS_PER_EPOCH`` (a smoke test) is left as asked.
"""

from __future__ import annotations


def epoch_steps(cfg, num_clips: int, world_size: int = 1) -> int:
    """Optimiser steps in one epoch of ``num_clips`` training clips: each process's share
    (rounded up, as ``DistributedSampler`` pads it) in whole batches of ``TRAIN.BATCH_SIZE`` x
    ``TRAIN.ACCUM_STEPS``, at most ``TRAIN.MAX_STEPS_PER_EPOCH`` (when set)."""
    share = -(-num_clips // world_size)
    steps = share // cfg.TRAIN.BATCH_SIZE // cfg.TRAIN.ACCUM_STEPS
    cap = cfg.TRAIN.MAX_STEPS_PER_EPOCH
    return min(steps, cap) if cap > 0 else steps


def planned_epochs(cfg, steps_per_epoch: int) -> int:
    """``SOLVER.MAX_EPOCH``, raised to the fewest epochs of ``steps_per_epoch`` that reach
    ``SOLVER.MIN_STEPS`` (0: no minimum; not applied to epochs capped by ``TRAIN.MAX_STEPS_PER_EPOCH``)."""
    epochs, floor = cfg.SOLVER.MAX_EPOCH, cfg.SOLVER.MIN_STEPS
    if floor <= 0 or steps_per_epoch <= 0 or cfg.TRAIN.MAX_STEPS_PER_EPOCH > 0:
        return epochs
    return max(epochs, -(-floor // steps_per_epoch))


def planned_warmup_epochs(cfg, epochs: int) -> float:
    """``SOLVER.WARMUP_EPOCHS`` for a run of ``epochs`` epochs: scaled by ``epochs /
    SOLVER.MAX_EPOCH``, so a run raised to ``SOLVER.MIN_STEPS`` warms up for the same share of its
    steps as the recipe (0.25 of 7 epochs raised to 84: 3 epochs, 60 steps either way)."""
    return cfg.SOLVER.WARMUP_EPOCHS * epochs / cfg.SOLVER.MAX_EPOCH


def steps_line(cfg, steps_per_epoch: int) -> str:
    """``"84 epochs x 20 optimiser steps = 1680 steps (SOLVER.MAX_EPOCH 7 raised to reach
    SOLVER.MIN_STEPS 1680)"``: what a run of ``steps_per_epoch`` steps an epoch takes."""
    epochs = planned_epochs(cfg, steps_per_epoch)
    line = f"{epochs} epochs x {steps_per_epoch} optimiser steps = {epochs * steps_per_epoch} steps"
    if epochs != cfg.SOLVER.MAX_EPOCH:
        line += f" (SOLVER.MAX_EPOCH {cfg.SOLVER.MAX_EPOCH} raised to reach SOLVER.MIN_STEPS {cfg.SOLVER.MIN_STEPS})"
    return line
