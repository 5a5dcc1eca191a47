"""Does a recipe hold on a small data set with no option changed? The acceptance measurement of
``SOLVER.MIN_STEPS``.

:func:`run_small_data` makes a toy-style data set (``sfvideo.data.toy``: the eight motion-order
classes) with ``train_per_class`` training videos a class, trains the recipe as shipped (only
the data and output folders set), then the same recipe ``longer`` times as long (``longer`` x the
epochs the first run took, so ``longer`` x its optimiser steps, with its warm-up steps), and
tests each run's final weights on the held-out videos with the recipe's multi-view test. One
record per run: epochs, steps, held-out top-1/top-5. The runs resume when the command is run
again with the same folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence


@dataclass(frozen=True)
class SmallDataOptions:
    """What a measurement may change.

    Attributes:
        out: the folder for the data set (``data/``) and the runs (``recipe/``, ``longer/``).
        cfg_file: the recipe.
        train_per_class, val_per_class, video_size, data_seed: the toy data set (``None``: the
            toy generator's defaults: 25 held-out videos a class, 112-pixel frames).
        longer: how many times as long the reference run trains.
        opts: ``KEY VALUE`` overrides for both runs (a smoke test's tiny model; the measurement
            itself has none).
    """

    out: Path
    cfg_file: str = "toy_tiny.yaml"
    train_per_class: int = 20
    val_per_class: int | None = None
    video_size: int | None = None
    data_seed: int = 0
    longer: int = 4
    opts: Sequence[str] = ()


def _train_and_test(options: SmallDataOptions, data_dir: Path, name: str, folder: str,
                    extra: Sequence[str]) -> dict[str, Any]:
    """Train the recipe (resuming a run in ``out/folder``), then test its final weights."""
    from ..config import load_config
    from ..engine.evaluate import run_test
    from ..engine.train import train

    run_dir = options.out / folder
    opts = ["DATA.PATH_TO_DATA_DIR", str(data_dir), "OUTPUT_DIR", str(run_dir), *options.opts, *extra]
    result = train(load_config(options.cfg_file, opts))
    if result.status != "finished":
        raise RuntimeError(f"{name}: training {result.status} after {result.epoch} epochs; run again to resume")
    test_cfg = load_config(options.cfg_file, opts + ["TEST.CHECKPOINT", str(run_dir / "checkpoints" / "last.pth")])
    metrics = run_test(test_cfg, config_name=options.cfg_file, progress=False)
    return {"run": name, "recipe": options.cfg_file, "train_per_class": options.train_per_class,
            "train_clips": None, "epochs": result.epoch, "steps": result.step, "top1": metrics["top1"],
            "top5": metrics["top5"], "test_videos": metrics["num_videos"]}


def run_small_data(options: SmallDataOptions, log=print) -> list[dict[str, Any]]:
    """The recipe as shipped and ``longer`` times as long on the small set; one record per run."""
    from ..config import load_config
    from ..data import toy
    from ..engine.plan import planned_warmup_epochs

    ds = toy.make_toy_dataset(options.out / "data", seed=options.data_seed, train_per_class=options.train_per_class,
                              val_per_class=options.val_per_class, size=options.video_size)
    log(f"toy data set in {options.out / 'data'}: " + ", ".join(f"{k} {v}" for k, v in ds.num_videos.items()))
    recipe = _train_and_test(options, options.out / "data", "recipe", "recipe", [])
    log(f"recipe as shipped: {recipe['epochs']} epochs, {recipe['steps']} steps, top-1 {recipe['top1']:.2f}")
    warmup = planned_warmup_epochs(load_config(options.cfg_file, list(options.opts)), recipe["epochs"])
    longer = _train_and_test(options, options.out / "data", f"{options.longer}x longer", "longer",
                             ["SOLVER.MAX_EPOCH", str(options.longer * recipe["epochs"]),
                              "SOLVER.WARMUP_EPOCHS", repr(warmup)])
    records = [recipe, longer]
    for r in records:
        r["train_clips"] = ds.num_videos.get("train")
    return records


def verdict(records: Sequence[dict[str, Any]], max_gap: float) -> tuple[bool, str]:
    """Whether the recipe's top-1 is within ``max_gap`` points of the longer run's, and the line saying so."""
    recipe, longer = records
    gap = longer["top1"] - recipe["top1"]
    ok = gap <= max_gap
    return ok, (f"recipe top-1 {recipe['top1']:.2f}, {longer['run']} {longer['top1']:.2f}: {gap:+.2f} points "
                f"({'within' if ok else 'beyond'} the {max_gap:g} allowed)")
