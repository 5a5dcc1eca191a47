"""The first-run demo behind ``make demo``: toy data -> train -> multi-view test -> predict -> RoIs -> curves.

Entry point: :func:`run_demo` with a :class:`DemoOptions` (``sfvideo demo`` / ``tools/demo.py``:
``sfvideo/cli/demo.py`` parses the command line and calls it).

Every step prints a header and what it wrote; the last step prints a per-class accuracy table
and checks it against the demo's acceptance bar (video top-1 >= 90%, every class >= 85%).

With ``frames=1`` the same recipe is trained on one frame per clip: the toy classes differ only
in the direction of motion (``sfvideo/data/toy.py``), so each motion pair should fall to about
50% -- the control showing that the spatiotemporal sampling, not appearance, does the work.
:func:`run_ablation` runs both and prints them side by side.

Layout under ``out_dir``::

    toy_data/                    the generated dataset (kept and reused when identical)
    run/ (run_1frame/)           config.yaml, train.log, metrics.jsonl, checkpoints/{last,best}.pth,
                                 test_results.json, predictions.csv, curves.png,
                                 rois/<video>.png|.gif|_all.png, demo_summary.json
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

# The demo's acceptance bar (percent).
MIN_TOP1 = 90.0
MIN_CLASS_ACC = 85.0
# Results records (demo_records) hold each class's accuracy under this prefix + the class name.
CLASS_ACCURACY_PREFIX = "acc:"
# Final RoIs closer than this (mean |delta| in [0, 1] coordinates) to the initial ones count as "not moved".
MIN_ROI_DISPLACEMENT = 1e-3


@dataclass
class DemoResult:
    """What one demo run produced.

    Attributes:
        run_dir: the run's output folder.
        num_frames: frames per clip (``DATA.NUM_FRAMES``).
        seed: the training seed (``RNG_SEED``).
        top1: video-level test top-1 (percent); ``top5`` and ``mean_class_accuracy`` likewise.
        per_class: class name -> accuracy (percent), in label order.
        roi_displacement: mean |final - initial| RoI coordinate (fraction of the clip's extent)
            of the drawn clip, from ``forward_details``; ``roi_init_drift``: mean |learned initial -
            grid initialisation|.
        passed: the acceptance bar was met (``None`` for a 1-frame run, which is not held to it).
        timings: step name -> seconds.
        files: label -> path of each output.
    """

    run_dir: Path
    num_frames: int
    seed: int
    top1: float
    top5: float
    mean_class_accuracy: float
    per_class: dict[str, float]
    roi_displacement: float
    roi_init_drift: float
    passed: bool | None
    timings: dict[str, float] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["run_dir"] = str(self.run_dir)
        return d


def _header(log: Callable[[str], None], index: int, total: int, title: str) -> None:
    log("")
    log("=" * 78)
    log(f"[{index}/{total}] {title}")
    log("=" * 78)


def _jitter_scales(crop: int) -> list[int]:
    """Short-side scale jitter for a crop: [crop, crop * 7/6] (96 -> [96, 112], as the toy config)."""
    return [crop, crop + crop // 6]


@dataclass(frozen=True)
class DemoOptions:
    """What a demo run may change. ``None`` keeps the config's value (or the toy generator's default).

    Attributes:
        cfg_file: the config (a path or a name in ``configs/``).
        frames: ``DATA.NUM_FRAMES`` (1 gives the appearance-only control).
        epochs, arch, seed: ``SOLVER.MAX_EPOCH``, ``MODEL.ARCH``, ``RNG_SEED``.
        crop_size: the train/test crop (and its scale jitter).
        batch_size, num_workers: the train and test batch size; ``DATA.NUM_WORKERS``.
        data_seed, train_per_class, val_per_class, video_size: toy generator options (defaults:
            seed 0, 240 and 25 videos per class, 112-pixel frames).
        run_name: the run folder's name (default ``run``, or ``run_1frame`` when ``frames == 1``).
        opts: further ``KEY VALUE`` config overrides (applied last).
    """

    cfg_file: str = "toy_tiny.yaml"
    frames: int | None = None
    epochs: int | None = None
    arch: str | None = None
    crop_size: int | None = None
    seed: int | None = None
    batch_size: int | None = None
    num_workers: int | None = None
    data_seed: int = 0
    train_per_class: int | None = None
    val_per_class: int | None = None
    video_size: int | None = None
    run_name: str | None = None
    opts: Sequence[str] = ()

    def config_overrides(self) -> list[str]:
        """The ``KEY VALUE`` overrides the options stand for, ``opts`` last."""
        crop = self.crop_size
        pairs = [("DATA.NUM_FRAMES", self.frames), ("SOLVER.MAX_EPOCH", self.epochs), ("MODEL.ARCH", self.arch),
                 ("DATA.TRAIN_CROP_SIZE", crop), ("DATA.TEST_CROP_SIZE", crop),
                 ("DATA.TRAIN_JITTER_SCALES", None if crop is None else _jitter_scales(crop)),
                 ("RNG_SEED", self.seed), ("TRAIN.BATCH_SIZE", self.batch_size), ("TEST.BATCH_SIZE", self.batch_size),
                 ("DATA.NUM_WORKERS", self.num_workers)]
        return [item for key, value in pairs if value is not None for item in (key, str(value))] + list(self.opts)


def demo_config(options: DemoOptions, data_dir: Path, run_dir: Path, extra_opts: Sequence[str] = ()):
    """The demo's config: ``options.cfg_file`` with the data and run folders, the options'
    overrides (:meth:`DemoOptions.config_overrides`), then ``extra_opts``."""
    from sfvideo.config import load_config

    over = ["DATA.PATH_TO_DATA_DIR", str(data_dir), "OUTPUT_DIR", str(run_dir)]
    return load_config(options.cfg_file, over + options.config_overrides() + [str(v) for v in extra_opts])


def _prepare_run_dir(run_dir: Path, config_text: str, log: Callable[[str], None]) -> None:
    """Keep ``run_dir`` when it holds a run of the same config (training resumes or is already
    done); otherwise clear it, so that a changed config never resumes a stale checkpoint."""
    old = run_dir / "config.yaml"
    if old.is_file() and old.read_text() == config_text and (run_dir / "checkpoints" / "last.pth").is_file():
        log(f"{run_dir} holds a run of the same config: resuming it (delete the folder to retrain)")
        return
    if run_dir.exists():
        log(f"clearing {run_dir} (previous run with a different config)")
        shutil.rmtree(run_dir)


def roi_displacement(details: dict[str, Any]) -> float:
    """Mean absolute difference between the final and the initial RoIs of ``forward_details``
    (over batch, tokens and the 6 coordinates; [0, 1] units of width, height and clip length)."""
    first, last = details["rois"][0], details["rois"][-1]  # (B, N, 6) each
    return float((last.float() - first.float()).abs().mean())


def format_class_table(columns: dict[str, dict[str, float]]) -> str:
    """A per-class accuracy table: one row per class, one column per run (``{column: {class: acc}}``)."""
    names = list(next(iter(columns.values())).keys())
    width = max(len(n) for n in names + ["class"]) + 2
    heads = list(columns)
    col = [max(10, len(h)) + 2 for h in heads]
    lines = ["class".ljust(width) + "".join(h.rjust(w) for h, w in zip(heads, col))]
    lines.append("-" * len(lines[0]))
    for name in names:
        lines.append(name.ljust(width) + "".join(f"{columns[h].get(name, float('nan')):{w - 1}.1f}%"
                                                 for h, w in zip(heads, col)))
    return "\n".join(lines)


@dataclass
class _Steps:
    """What the demo's steps share: where things go, how to report, and what they produced."""

    data_dir: Path
    run_dir: Path
    log: Callable[[str], None]
    timings: dict[str, float] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    total: int = 7
    done: int = 0

    def header(self, title: str) -> float:
        """Print the next step's header; returns its start time."""
        self.done += 1
        _header(self.log, self.done, self.total, title)
        return time.perf_counter()


def _step_data(steps: _Steps, options: DemoOptions):
    """1. Generate (or reuse) the toy dataset."""
    from sfvideo.data import toy

    t0 = steps.header(f"toy dataset -> {steps.data_dir}")
    size = toy.DEFAULT_SIZE if options.video_size is None else options.video_size
    ds = toy.make_toy_dataset(steps.data_dir, seed=options.data_seed, train_per_class=options.train_per_class,
                              val_per_class=options.val_per_class, size=size)
    steps.timings["data"] = time.perf_counter() - t0
    what = "generated" if ds.generated else "reused (same parameters)"
    steps.log(f"{what}: {len(toy.CLASS_NAMES)} motion-only classes, "
              + ", ".join(f"{k} {v}" for k, v in ds.num_videos.items()) + f" videos, {size}x{size}, "
              f"{toy.DEFAULT_FRAMES} frames ({steps.timings['data']:.1f} s)")
    return ds


def _step_train(steps: _Steps, cfg) -> Path:
    """2. Train (resuming a run of the same config); returns the final checkpoint."""
    from sfvideo.engine.train import NonFiniteLossError, train

    num_frames = int(cfg.DATA.NUM_FRAMES)
    clip_text = (f"{num_frames} frames at stride {cfg.DATA.SAMPLING_RATE}" if num_frames > 1
                 else "1 frame per clip (appearance only)")
    steps.header(f"train {cfg.MODEL.ARCH}: {clip_text}, {cfg.DATA.TRAIN_CROP_SIZE}px crops, "
                 f"{cfg.SOLVER.MAX_EPOCH} epochs of batch {cfg.TRAIN.BATCH_SIZE} -> {steps.run_dir}")
    _prepare_run_dir(steps.run_dir, cfg.dump(), steps.log)
    t0 = time.perf_counter()
    try:
        result = train(cfg)
    except NonFiniteLossError as err:
        raise SystemExit(f"error: {err}") from None
    if result.status != "finished":
        raise SystemExit(f"training {result.status} after {result.epoch} epochs; run the demo again to resume")
    steps.timings["train"] = time.perf_counter() - t0
    ckpt = steps.run_dir / "checkpoints" / "last.pth"
    steps.files["checkpoint"] = str(ckpt)
    steps.files["metrics"] = str(steps.run_dir / "metrics.jsonl")
    steps.log(f"trained {result.epoch} epochs ({result.step} steps) in {steps.timings['train']:.0f} s")
    return ckpt


def _step_test(steps: _Steps, test_cfg, cfg_file: str) -> dict[str, Any]:
    """3. Multi-view test of the final weights on the held-out videos."""
    from sfvideo.engine.evaluate import run_test
    from sfvideo.utils.logging import setup_logging

    t = test_cfg.TEST
    views = t.NUM_ENSEMBLE_VIEWS * t.NUM_SPATIAL_CROPS
    t0 = steps.header(f"multi-view test on the held-out videos ({t.NUM_ENSEMBLE_VIEWS} clips x "
                      f"{t.NUM_SPATIAL_CROPS} crops = {views} views per video)")
    setup_logging(steps.run_dir, 0, filename="test.log")
    metrics = run_test(test_cfg, config_name=str(cfg_file))
    steps.timings["test"] = time.perf_counter() - t0
    steps.files["test_results"] = str(steps.run_dir / "test_results.json")
    steps.files["predictions"] = str(steps.run_dir / "predictions.csv")
    steps.log(f"video top-1 {metrics['top1']:.1f}%  top-5 {metrics['top5']:.1f}%  mean class acc "
              f"{metrics['mean_class_accuracy']:.1f}%  clip top-1 {metrics['clip_top1']:.1f}%  "
              f"({metrics['num_videos']} videos, {len(metrics['failed_videos'])} failed; "
              f"{steps.timings['test']:.0f} s)")
    return metrics


def _step_predict(steps: _Steps, test_cfg, ds):
    """4. Predict the first held-out video; returns the loaded model and that video's path."""
    from sfvideo.checkpoint import load_test_weights
    from sfvideo.data import toy
    from sfvideo.engine.evaluate import predict_video
    from sfvideo.models import build_model

    model = build_model(test_cfg)
    load_test_weights(model, test_cfg.TEST.CHECKPOINT, use_ema=test_cfg.TEST.USE_EMA, log=lambda s: None)
    model.eval()
    rel, label = ds.lists["val"].read_text().splitlines()[0].rsplit(" ", 1)
    video = steps.data_dir / rel
    steps.header(f"predict one video: {video} (true class: {toy.CLASS_NAMES[int(label)]})")
    for rank, (_, name, prob) in enumerate(predict_video(test_cfg, str(video), model=model, topk=3), 1):
        steps.log(f"  {rank}. {name:<24s} {100 * prob:6.2f}%")
    return model, video


def initial_roi_drift(model) -> float:
    """Mean |learned initial RoI - grid initialisation| of a SparseFormer (how far training moved it)."""
    from sfvideo.models import ops

    grid = ops.grid_rois(model.num_base_tokens)
    if model.geometry_dims == 3:
        grid = ops.inflate_rois(grid, model.temporal_replicates)
    return float((model.initial_roi.weight.detach().float() - grid).abs().mean())


def _step_rois(steps: _Steps, model, video: Path, test_cfg) -> tuple[float, float]:
    """5. Draw the token RoIs of one clip; returns (final-vs-initial displacement, initial-RoI drift)."""
    import torch

    from sfvideo.data import toy
    from sfvideo.viz.rois import load_clip, visualize_model_rois

    steps.header("token RoIs and sampling points: initial vs final")
    clip = load_clip(video, test_cfg)  # (C, T, S, S)
    drawn = visualize_model_rois(model, clip, test_cfg.DATA.MEAN, test_cfg.DATA.STD, steps.run_dir / "rois",
                                 video.stem, list(toy.CLASS_NAMES))
    with torch.no_grad():
        details = model.forward_details(clip.unsqueeze(0))
    moved, drift = roi_displacement(details), initial_roi_drift(model)
    steps.files.update(rois_png=str(drawn["png"]), rois_gif=str(drawn["gif"]), rois_all_png=str(drawn["png_all"]))
    steps.log(f"mean |final RoI - initial RoI| = {moved:.4f} (fraction of frame width/height/clip length, "
              f"{len(details['rois']) - 1} adjustment steps, {details['rois'][0].shape[1]} tokens)")
    steps.log(f"mean |learned initial RoI - grid initialisation| = {drift:.4f}")
    if moved < MIN_ROI_DISPLACEMENT:
        steps.log(f"WARNING: the final RoIs did not move from the initial ones (< {MIN_ROI_DISPLACEMENT})")
    else:
        steps.log("RoIs moved from their initial grid: ok")
    steps.log(f"wrote {drawn['png']}, {drawn['gif']}, {drawn['png_all']}")
    return moved, drift


def _step_curves(steps: _Steps, cfg) -> None:
    """6. Plot the training curves from metrics.jsonl."""
    from sfvideo.viz.curves import plot_training_curves

    steps.header("training curves")
    curves = plot_training_curves(steps.run_dir / "metrics.jsonl", steps.run_dir / "curves.png",
                                  f"{cfg.MODEL.ARCH}, {int(cfg.DATA.NUM_FRAMES)} frame(s) per clip")
    steps.files["curves"] = str(curves)
    steps.log(f"wrote {curves}")


def per_class_accuracy(metrics: dict[str, Any]) -> dict[str, float]:
    """Class name -> video accuracy (percent) in label order, from ``test_results.json``'s table."""
    table = metrics["per_class_accuracy"]
    return {name: float(v["accuracy"]) for name, v in sorted(table.items(), key=lambda kv: kv[1]["index"])}


def meets_acceptance(top1: float, per_class: dict[str, float]) -> bool:
    """The demo's bar: video top-1 >= MIN_TOP1 and every class >= MIN_CLASS_ACC."""
    return top1 >= MIN_TOP1 and all(a >= MIN_CLASS_ACC for a in per_class.values())


def _step_summary(steps: _Steps, metrics: dict[str, Any], cfg, moved: float, drift: float,
                  t_all: float) -> DemoResult:
    """7. Write ``demo_summary.json`` and print the per-class table and the acceptance verdict."""
    from sfvideo.utils.io import atomic_write_text

    num_frames = int(cfg.DATA.NUM_FRAMES)
    per_class = per_class_accuracy(metrics)
    passed = meets_acceptance(metrics["top1"], per_class) if num_frames > 1 else None
    steps.timings["total"] = time.perf_counter() - t_all
    res = DemoResult(steps.run_dir, num_frames, int(cfg.RNG_SEED), float(metrics["top1"]), float(metrics["top5"]),
                     float(metrics["mean_class_accuracy"]), per_class, moved, drift, passed, steps.timings,
                     steps.files)
    summary = steps.run_dir / "demo_summary.json"
    atomic_write_text(summary, json.dumps(res.as_dict(), indent=2) + "\n")
    steps.files["summary"] = str(summary)
    log = steps.log
    steps.header(f"summary: per-class video accuracy on {metrics['num_videos']} held-out videos")
    log(format_class_table({f"{num_frames} frame" + ("s" if num_frames > 1 else ""): per_class}))
    log(f"video top-1 {res.top1:.1f}%   mean class accuracy {res.mean_class_accuracy:.1f}%")
    if passed is not None:
        log(f"acceptance (top-1 >= {MIN_TOP1:.0f}%, every class >= {MIN_CLASS_ACC:.0f}%): "
            + ("PASSED" if passed else "NOT MET"))
    else:
        log("1 frame per clip: no motion is visible, so each pair (left/right, up/down, cw/acw, "
            "approaching/receding) should sit near 50%")
    log("")
    log("outputs:")
    for label, path in steps.files.items():
        log(f"  {label:<14s} {path}")
    log("times: " + ", ".join(f"{k} {v:.0f} s" for k, v in steps.timings.items()))
    return res


def run_demo(out_dir: str | Path = "demo_output", options: DemoOptions | None = None,
             log: Callable[[str], None] = print) -> DemoResult:
    """Generate the toy dataset, train, test (multi-view), predict one video, draw RoIs and curves.

    Args:
        out_dir: everything goes here (``toy_data/`` and the run folder).
        options: what to change from the config and the toy generator (:class:`DemoOptions`).
        log: where progress lines go.

    Returns:
        A :class:`DemoResult`; it is also written to ``<run>/demo_summary.json``.
    """
    options = options or DemoOptions()
    t_all = time.perf_counter()
    out = Path(out_dir)
    run_dir = out / (options.run_name or ("run_1frame" if options.frames == 1 else "run"))
    steps = _Steps(out / "toy_data", run_dir, log)
    ds = _step_data(steps, options)
    cfg = demo_config(options, steps.data_dir, run_dir)
    ckpt = _step_train(steps, cfg)
    # The final weights, not best.pth: best.pth is picked on these same held-out videos.
    test_cfg = demo_config(options, steps.data_dir, run_dir, ["TEST.CHECKPOINT", str(ckpt)])
    metrics = _step_test(steps, test_cfg, options.cfg_file)
    model, video = _step_predict(steps, test_cfg, ds)
    moved, drift = _step_rois(steps, model, video, test_cfg)
    _step_curves(steps, cfg)
    return _step_summary(steps, metrics, cfg, moved, drift, t_all)


def run_ablation(out_dir: str | Path = "demo_output", options: DemoOptions | None = None,
                 log: Callable[[str], None] = print) -> tuple[DemoResult, DemoResult]:
    """The demo with the config's frames, then with one frame per clip; prints both side by side."""
    from sfvideo.data.toy import MOTION_PAIRS

    options = options or DemoOptions()
    main = run_demo(out_dir, dataclasses.replace(options, frames=None, run_name=None), log=log)
    single = run_demo(out_dir, dataclasses.replace(options, frames=1, run_name=None), log=log)
    log("")
    log("=" * 78)
    log("ablation: per-class video accuracy, motion (multi-frame clips) vs appearance only (1 frame)")
    log("=" * 78)
    cols = {f"{main.num_frames} frames": {**main.per_class, "(video top-1)": main.top1},
            "1 frame": {**single.per_class, "(video top-1)": single.top1}}
    log(format_class_table(cols))
    names = list(main.per_class)
    for a, b in MOTION_PAIRS:
        if a < len(names) and b < len(names):
            pa = (single.per_class[names[a]] + single.per_class[names[b]]) / 2
            log(f"  pair {names[a]}/{names[b]}: 1-frame mean {pa:.1f}% (chance within the pair: 50%)")
    return main, single


def run_seeds(out_dir: str | Path, seeds: Sequence[int], options: DemoOptions | None = None,
              log: Callable[[str], None] = print) -> list[DemoResult]:
    """The demo once per training seed, each run in ``seed<N>/`` under ``out_dir`` (one toy
    dataset for all); prints the runs' per-class tables side by side."""
    options = options or DemoOptions()
    runs = [run_demo(out_dir, dataclasses.replace(options, seed=seed, run_name=f"seed{seed}"), log=log)
            for seed in seeds]
    log("")
    log("=" * 78)
    log("per-class video accuracy by training seed")
    log("=" * 78)
    log(format_class_table({f"seed {r.seed}": {**r.per_class, "(video top-1)": r.top1} for r in runs}))
    return runs


def demo_records(runs: Sequence[DemoResult]) -> list[dict[str, Any]]:
    """One results record per run (``sfvideo demo --results FILE``): ``seed``, ``frames``,
    ``top1``, ``top5``, ``mean_class_accuracy`` and ``acc:<class name>`` per class, in percent
    on the held-out videos, ``roi_displacement`` (mean |final - initial| RoI of the drawn clip),
    and whether the run met the acceptance bar (``passed``; empty for a 1-frame run)."""
    return [{"seed": r.seed, "frames": r.num_frames, "top1": r.top1, "top5": r.top5,
             "mean_class_accuracy": r.mean_class_accuracy,
             **{f"{CLASS_ACCURACY_PREFIX}{name}": acc for name, acc in r.per_class.items()},
             "roi_displacement": r.roi_displacement, "passed": "" if r.passed is None else r.passed} for r in runs]
