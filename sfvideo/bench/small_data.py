"""Does a recipe hold on a small data set with no option changed? The acceptance measurement of
``SOLVER.MIN_STEPS``.

:func:`run_small_data` makes a toy-style data set (``sfvideo.data.toy``: the eight motion-order
classes) with ``train_per_class`` training videos a class, trains the recipe as shipped (only
the data and output folders set), then the same recipe ``longer`` times as long (``longer`` x the
epochs the first run took, so ``longer`` x its optimiser steps, with its warm-up steps), and
tests each run's final weights on the held-out videos with the recipe's multi-view test. It does
so for each training seed (``RNG_SEED``; the data set stays the same): on 160 training clips one
run's top-1 moves by several points with the seed alone, so the comparison is between the two
runs' means over the seeds. One record per run and seed (epochs, steps, held-out top-1/top-5),
then one per run with the means. The runs resume when the command is run again with the same
folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence


class RunStopped(RuntimeError):
    """A run stopped before its last epoch (a signal): its checkpoint is kept and the same command
    resumes it. ``exit_status`` is the training's (128 + the signal number)."""

    def __init__(self, message: str, exit_status: int):
        super().__init__(message)
        self.exit_status = exit_status


@dataclass(frozen=True)
class SmallDataOptions:
    """What a measurement may change.

    Attributes:
        out: the folder for the data set (``data/``) and the runs (``recipe/``, ``longer/``).
        cfg_file: the recipe.
        train_per_class, val_per_class, video_size, data_seed: the toy data set (``None``: the
            toy generator's defaults: 25 held-out videos a class, 112-pixel frames).
        longer: how many times as long the reference run trains.
        seeds: the training seeds (``RNG_SEED``) each run is trained with.
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
    seeds: Sequence[int] = (0, 1, 2)
    opts: Sequence[str] = ()


def _train_and_test(options: SmallDataOptions, seed: int, name: str, folder: str,
                    extra: Sequence[str]) -> dict[str, Any]:
    """Train the recipe with training seed ``seed`` (resuming a run in ``out/folder``), then test
    its final weights."""
    from ..config import load_config
    from ..engine.evaluate import run_test
    from ..engine.train import train

    run_dir = options.out / folder
    opts = ["DATA.PATH_TO_DATA_DIR", str(options.out / "data"), "OUTPUT_DIR", str(run_dir), *options.opts, *extra,
            "RNG_SEED", str(seed)]
    result = train(load_config(options.cfg_file, opts))
    if result.status != "finished":
        raise RunStopped(f"{name} (seed {seed}): training {result.status} after {result.epoch} epochs, checkpoint kept "
                         f"in {run_dir}; run the same command to resume", result.exit_status or 1)
    test_cfg = load_config(options.cfg_file, opts + ["TEST.CHECKPOINT", str(run_dir / "checkpoints" / "last.pth")])
    metrics = run_test(test_cfg, config_name=options.cfg_file, progress=False)
    return {"run": name, "seed": seed, "recipe": options.cfg_file, "train_per_class": options.train_per_class,
            "train_clips": None, "epochs": result.epoch, "steps": result.step, "top1": metrics["top1"],
            "top5": metrics["top5"], "test_videos": metrics["num_videos"]}


def _seed_pair(options: SmallDataOptions, seed: int, log) -> list[dict[str, Any]]:
    """The recipe and the longer run with training seed ``seed``, in ``out/seed<seed>/``."""
    from ..config import load_config
    from ..engine.plan import planned_warmup_epochs

    folder = Path(f"seed{seed}")
    recipe = _train_and_test(options, seed, "recipe", str(folder / "recipe"), [])
    log(f"seed {seed}, recipe as shipped: {recipe['epochs']} epochs, {recipe['steps']} steps, "
        f"top-1 {recipe['top1']:.2f}")
    warmup = planned_warmup_epochs(load_config(options.cfg_file, list(options.opts)), recipe["epochs"])
    longer = _train_and_test(options, seed, f"{options.longer}x longer", str(folder / "longer"),
                             ["SOLVER.MAX_EPOCH", str(options.longer * recipe["epochs"]),
                              "SOLVER.WARMUP_EPOCHS", repr(warmup)])
    log(f"seed {seed}, {options.longer}x longer: {longer['epochs']} epochs, top-1 {longer['top1']:.2f}")
    return [recipe, longer]


def run_small_data(options: SmallDataOptions, log=print) -> list[dict[str, Any]]:
    """The recipe as shipped and ``longer`` times as long on the small set: one record per run and
    seed, then (for several seeds) one per run with the means (:func:`mean_records`)."""
    from ..data import toy

    ds = toy.make_toy_dataset(options.out / "data", seed=options.data_seed, train_per_class=options.train_per_class,
                              val_per_class=options.val_per_class, size=options.video_size)
    log(f"toy data set in {options.out / 'data'}: " + ", ".join(f"{k} {v}" for k, v in ds.num_videos.items()))
    records = [r for seed in options.seeds for r in _seed_pair(options, seed, log)]
    for r in records:
        r["train_clips"] = ds.num_videos.get("train")
    return records + (mean_records(records) if len(options.seeds) > 1 else [])


def _by_run(records: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The per-seed records (not the means) of each run, in order: recipe first."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        if isinstance(r.get("seed"), int):
            runs.setdefault(r["run"], []).append(r)
    return runs


def _mean(runs: Sequence[dict[str, Any]], key: str) -> float:
    return sum(r[key] for r in runs) / len(runs)


def mean_records(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per run: its per-seed records' top-1/top-5 averaged (``seed``: "mean of N")."""
    return [{**group[0], "seed": f"mean of {len(group)}", "top1": round(_mean(group, "top1"), 2),
             "top5": round(_mean(group, "top5"), 2)} for group in _by_run(records).values()]


def verdict(records: Sequence[dict[str, Any]], max_gap: float) -> tuple[bool, str]:
    """Whether the recipe's mean top-1 over the seeds is within ``max_gap`` points of the longer
    run's, and the line saying so (with each seed's figures)."""
    (recipe, recipe_runs), (longer, longer_runs) = list(_by_run(records).items())

    def told(name: str, runs: list[dict[str, Any]]) -> tuple[float, str]:
        mean = _mean(runs, "top1")
        seeds = ", ".join(f"{r['top1']:.2f}" for r in runs)
        return mean, (f"{name} top-1 {mean:.2f}" + (f" (mean of seeds {seeds})" if len(runs) > 1 else ""))

    (a, recipe_line), (b, longer_line) = told(recipe, recipe_runs), told(longer, longer_runs)
    gap = b - a
    ok = gap <= max_gap
    return ok, f"{recipe_line}, {longer_line}: {gap:+.2f} points ({'within' if ok else 'beyond'} the {max_gap:g} allowed)"
