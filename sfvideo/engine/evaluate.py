"""Evaluation: single-view validation during training and the multi-view test.

Pieces: :func:`eval_loader` (this process's shard of a dataset), :func:`score_videos` (per-video
ensembled scores), :func:`evaluate` (validation metrics, all-reduced), :func:`run_test` (the
config-driven multi-view test writing ``test_results.json`` and ``predictions.csv``) and
:func:`predict_video` (one file).

Sharding: rank ``r`` of ``W`` scores dataset indices ``r, r + W, r + 2W, ...`` (a dataset read
from shards deals its shards to the processes and their workers itself) and the results are
gathered by index on rank 0, so every video is scored exactly once (a
``DistributedSampler`` would pad the last batch with duplicates). Validation sums are
all-reduced; test records are gathered.

Ensembling of a video's V views (``TEST.ENSEMBLE_METHOD``):
``softmax_mean`` averages per-view probabilities (default), ``logit_mean`` averages logits,
``logit_max`` takes the element-wise maximum of logits. The clip-level top-1 scores each view
on its own.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset, Subset

from sfvideo.data.transforms import batch_to_device
from sfvideo.engine import distributed as du
from sfvideo.engine.determinism import with_index
from sfvideo.engine.factories import default_dataset_fn, default_model_fn
from sfvideo.engine.loaders import read_loader, shield_worker
from sfvideo.engine.loop import Norm
from sfvideo.utils.amp import autocast_context
from sfvideo.utils.io import atomic_write_text

logger = logging.getLogger("sfvideo.engine")

ENSEMBLE_METHODS = ("softmax_mean", "logit_mean", "logit_max")


# ------------------------------------------------------------------------------------- helpers
def is_failed_item(item: dict) -> bool:
    """A test/val item the data pipeline could not decode (returned marked, not substituted)."""
    if item.get("failed"):
        return True
    video = item.get("video")
    return video is None or not torch.is_tensor(video) or video.numel() == 0


def list_collate(items: list[dict]) -> list[dict]:
    """Keep items as a list: failed items may lack a video, views per video may differ."""
    return items


def ensemble(logits: torch.Tensor, method: str = "softmax_mean") -> tuple[torch.Tensor, torch.Tensor]:
    """Combine one video's view logits (V, K) into (scores (K,), probabilities (K,))."""
    logits = logits.float()
    if method == "softmax_mean":
        probs = logits.softmax(-1).mean(0)  # (K,)
        return probs, probs
    if method == "logit_mean":
        combined = logits.mean(0)  # (K,)
    elif method == "logit_max":
        combined = logits.max(0).values  # (K,)
    else:
        raise ValueError(f"TEST.ENSEMBLE_METHOD {method!r}; expected one of {list(ENSEMBLE_METHODS)}")
    return combined, combined.softmax(-1)


@torch.no_grad()
def forward_views(model: nn.Module, views: torch.Tensor, device: torch.device, max_views: int = 0,
                  amp: str = "none", norm: Norm | None = None) -> torch.Tensor:
    """Logits (N, K) of N clips (N, C, T, H, W), run ``max_views`` at a time (0 = all at once).

    uint8 clips are normalised on the device with ``norm`` = (mean, std) (``DATA.MEAN``,
    ``DATA.STD``); float clips are taken as normalised.
    """
    mean, std = norm if norm is not None else (None, None)
    chunk = max_views if max_views and max_views > 0 else views.shape[0]
    out = []
    for start in range(0, views.shape[0], chunk):
        clip, _ = batch_to_device(views[start:start + chunk], None, device, mean, std)  # (n, C, T, H, W) float
        with autocast_context(device, amp):
            out.append(model(clip).float().cpu())  # (n, K)
    return torch.cat(out, 0)


class _Indexed(Dataset):
    """Adds ``index`` to items that lack it (results are gathered by dataset index); a batch is
    fetched with the dataset's ``__getitems__`` where it has one (``VideoDataset`` then decodes
    ahead)."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        return with_index(self.dataset[index], index)

    def __getitems__(self, indices: Sequence[int]) -> list[dict]:
        indices = list(indices)
        getitems = getattr(self.dataset, "__getitems__", None)
        items = getitems(indices) if callable(getitems) else [self.dataset[i] for i in indices]
        return [with_index(item, i) for i, item in zip(indices, items, strict=True)]


def shard(dataset: Dataset, rank: int | None = None, world: int | None = None) -> Subset:
    """Indices ``rank::world`` of ``dataset``: every index on exactly one process, none padded."""
    rank = du.get_rank() if rank is None else rank
    world = du.get_world_size() if world is None else world
    return Subset(_Indexed(dataset), list(range(rank, len(dataset), world)))


@dataclass
class VideoScore:
    """One test video's outcome (what rank 0 gathers)."""

    index: int
    path: str
    label: int
    failed: bool
    scores: np.ndarray | None = None  # (K,) ensembled scores (probabilities or logits)
    probs: np.ndarray | None = None  # (K,) probabilities for the ``score`` column
    clip_correct: int = 0
    num_views: int = 0


def eval_loader(dataset: Dataset, batch_size: int, num_workers: int = 0) -> DataLoader:
    """A loader over this process's shard of ``dataset`` (items kept as lists, see :func:`shard`);
    an iterable dataset (shards) splits itself over processes and workers, each sample once.
    Its workers leave a process group's stop signals to the main process (``loaders.shield_worker``)."""
    part = dataset if isinstance(dataset, IterableDataset) else shard(dataset)
    return DataLoader(part, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                      collate_fn=list_collate, pin_memory=False, worker_init_fn=shield_worker if num_workers else None)


def _failed_score(item: dict) -> VideoScore:
    return VideoScore(int(item["index"]), str(item.get("path", "")), int(item.get("label", -1)), True)


def _score_items(model: nn.Module, items: list[dict], device: torch.device, max_views: int, method: str,
                 amp: str, norm: Norm | None) -> list[VideoScore]:
    """Run every view of the decodable ``items`` in one stacked forward; ensemble per video."""
    views = [it["video"] if it["video"].ndim == 5 else it["video"].unsqueeze(0) for it in items]  # (V, C, T, H, W)
    counts = [v.shape[0] for v in views]
    logits = forward_views(model, torch.cat(views, 0), device, max_views, amp, norm)  # (sum V, K)
    scores = []
    for it, lg in zip(items, torch.split(logits, counts)):
        label = int(it["label"])
        combined, probs = ensemble(lg, method)
        scores.append(VideoScore(
            index=int(it["index"]), path=str(it.get("path", "")), label=label, failed=False,
            scores=combined.numpy(), probs=probs.numpy(),
            clip_correct=int((lg.argmax(-1) == label).sum()), num_views=lg.shape[0]))
    return scores


def score_videos(model: nn.Module, loader: Iterable[list[dict]], device: torch.device, *, max_views: int = 0,
                 method: str = "softmax_mean", amp: str = "none", norm: Norm | None = None, progress: bool = False,
                 desc: str = "test") -> list[VideoScore]:
    """Score the videos ``loader`` yields (from :func:`eval_loader`); returns this process's scores.
    ``norm`` = (mean, std) normalises uint8 views on the device (see :func:`forward_views`).

    Raises:
        LoaderWorkerError: a loader worker died (the message names it and ``desc``).
    """
    was_training = model.training
    model.eval()
    records: list[VideoScore] = []
    bar = None
    if progress and du.is_main_process():
        from tqdm import tqdm

        bar = tqdm(total=len(loader), desc=desc, dynamic_ncols=True, leave=False)
    for items in read_loader(loader, f"while scoring ({desc})"):
        good = [it for it in items if not is_failed_item(it)]
        records += [_failed_score(it) for it in items if is_failed_item(it)]
        if good:
            records += _score_items(model, good, device, max_views, method, amp, norm)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    model.train(was_training)
    return records


# ------------------------------------------------------------------------------------ validation
@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable[list[dict]], device: torch.device, *, amp: str = "none",
             max_views: int = 0, norm: Norm | None = None) -> dict[str, Any]:
    """Validation over ``loader`` (from :func:`eval_loader`); sums all-reduced over processes, so
    every rank gets the same numbers.

    Returns:
        ``top1``, ``top5`` (percent), ``loss`` (mean cross entropy of the softmax-mean
        prediction), ``num_videos`` scored and ``failed_videos`` (count).
    """
    records = score_videos(model, loader, device, max_views=max_views, method="softmax_mean", amp=amp, norm=norm,
                           desc="validation")
    c1 = c5 = loss = n = failed = 0.0
    for r in records:
        if r.failed:
            failed += 1
            continue
        probs = torch.from_numpy(r.probs)
        top = probs.topk(min(5, probs.numel())).indices
        c1 += float(top[0] == r.label)
        c5 += float((top == r.label).any())
        loss += float(-torch.log(probs[r.label].clamp_min(1e-12)))
        n += 1
    c1, c5, loss, n, failed = du.all_reduce_sum([c1, c5, loss, n, failed]).tolist()
    denom = max(n, 1.0)
    return {"top1": 100.0 * c1 / denom, "top5": 100.0 * c5 / denom, "loss": loss / denom,
            "num_videos": int(n), "failed_videos": int(failed)}


# ------------------------------------------------------------------------------------ multi-view
def gather_records(records: list[VideoScore]) -> list[VideoScore] | None:
    """All processes' records sorted by dataset index on rank 0 (None elsewhere)."""
    parts = du.all_gather_object(records)
    if not du.is_main_process():
        return None
    merged = sorted((r for part in parts for r in part), key=lambda r: r.index)
    seen = [r.index for r in merged]
    if len(seen) != len(set(seen)):
        raise RuntimeError("a video was scored twice while gathering test results")
    return merged


def compute_metrics(records: Sequence[VideoScore], num_classes: int,
                    class_names: Sequence[str] | None = None) -> dict[str, Any]:
    """Video top-1/top-5, mean class accuracy, per-class accuracy and clip top-1 (percent)."""
    scored = [r for r in records if not r.failed]
    n = len(scored)
    c1 = c5 = clip_correct = clip_total = 0
    per_class_total = np.zeros(num_classes, dtype=np.int64)
    per_class_correct = np.zeros(num_classes, dtype=np.int64)
    for r in scored:
        top = np.argsort(-r.scores, kind="stable")[:5]
        hit1 = int(top[0] == r.label)
        c1 += hit1
        c5 += int(r.label in top)
        clip_correct += r.clip_correct
        clip_total += r.num_views
        if 0 <= r.label < num_classes:
            per_class_total[r.label] += 1
            per_class_correct[r.label] += hit1
    present = per_class_total > 0
    class_acc = np.where(present, per_class_correct / np.maximum(per_class_total, 1), 0.0)
    per_class = {}
    for k in np.nonzero(present)[0]:
        name = class_names[k] if class_names and k < len(class_names) else str(int(k))
        per_class[name] = {"index": int(k), "accuracy": 100.0 * float(class_acc[k]),
                           "num_videos": int(per_class_total[k])}
    return {
        "top1": 100.0 * c1 / max(n, 1),
        "top5": 100.0 * c5 / max(n, 1),
        "mean_class_accuracy": 100.0 * float(class_acc[present].mean()) if present.any() else 0.0,
        "clip_top1": 100.0 * clip_correct / max(clip_total, 1),
        "num_videos": n,
        "num_clips": int(clip_total),
        "failed_videos": [r.path for r in records if r.failed],
        "per_class_accuracy": per_class,
    }


def predictions_csv(records: Sequence[VideoScore], class_names: Sequence[str] | None = None) -> str:
    """CSV text: ``video,label,pred,top5,score`` (+ ``label_name,pred_name`` when names are known)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    header = ["video", "label", "pred", "top5", "score"]
    if class_names:
        header += ["label_name", "pred_name"]
    writer.writerow(header)
    for r in records:
        if r.failed:
            continue
        top = np.argsort(-r.scores, kind="stable")[:5]
        pred = int(top[0])
        row = [r.path, r.label, pred, " ".join(str(int(k)) for k in top), f"{float(r.probs[pred]):.6f}"]
        if class_names:
            def name(k: int) -> str:
                return class_names[k] if 0 <= k < len(class_names) else ""

            row += [name(r.label), name(pred)]
        writer.writerow(row)
    return buf.getvalue()


def write_test_outputs(output_dir: str | os.PathLike, records: Sequence[VideoScore], metrics: dict[str, Any],
                       extra: dict[str, Any], class_names: Sequence[str] | None = None) -> tuple[Path, Path]:
    """Write ``test_results.json`` and ``predictions.csv`` atomically into ``output_dir``."""
    out = Path(output_dir)
    results = dict(metrics)
    results.update(extra)
    json_path = atomic_write_text(out / "test_results.json", json.dumps(results, indent=2) + "\n")
    csv_path = atomic_write_text(out / "predictions.csv", predictions_csv(records, class_names))
    return json_path, csv_path


# ------------------------------------------------------------------------------- test / predict
def _test_model(cfg, model_fn, device: torch.device) -> nn.Module:
    """The model of ``cfg`` with ``TEST.CHECKPOINT`` loaded, on ``device``, in eval mode."""
    from sfvideo.checkpoint import load_test_weights

    model = (model_fn or default_model_fn)(cfg)
    load_test_weights(model, cfg.TEST.CHECKPOINT, cfg.TEST.USE_EMA,
                      log=logger.info if du.is_main_process() else (lambda s: None))
    return model.to(device).eval()


def _test_summary(cfg, config_name: str, merged: Sequence[VideoScore], views: int) -> dict[str, Any]:
    """The fields of ``test_results.json`` beyond the metrics."""
    scored_views = {r.num_views for r in merged if not r.failed}
    return {
        "views_per_video": max(scored_views) if scored_views else views,
        "ensemble_method": cfg.TEST.ENSEMBLE_METHOD,
        "checkpoint": str(cfg.TEST.CHECKPOINT),
        "config": str(config_name),
        "split": cfg.TEST.SPLIT,
        "num_listed": len(merged),
    }


def run_test(cfg, config_name: str = "", model_fn=None, dataset_fn=None,
             progress: bool = True) -> dict[str, Any] | None:
    """Multi-view test of ``TEST.CHECKPOINT`` on ``TEST.SPLIT``; rank 0 writes and returns the results.

    Writes ``OUTPUT_DIR/test_results.json`` and ``OUTPUT_DIR/predictions.csv`` (atomically).
    Under torchrun each process scores indices ``rank::world``; rank 0 gathers by index.
    """
    import sys

    from sfvideo.data.build import class_names_from_cfg

    device = du.resolve_device(cfg.DEVICE)
    du.set_num_threads(cfg.NUM_THREADS)
    du.init_distributed(device)
    model = _test_model(cfg, model_fn, device)
    dataset = (dataset_fn or default_dataset_fn)(cfg, cfg.TEST.SPLIT)
    views = cfg.TEST.NUM_ENSEMBLE_VIEWS * cfg.TEST.NUM_SPATIAL_CROPS if cfg.TEST.SPLIT == "test" else 1
    logger.info("testing %s on %d videos (%s split, %d views each, %s) with %d processes", cfg.TEST.CHECKPOINT,
                len(dataset), cfg.TEST.SPLIT, views, cfg.TEST.ENSEMBLE_METHOD, du.get_world_size())
    loader = eval_loader(dataset, cfg.TEST.BATCH_SIZE, cfg.DATA.NUM_WORKERS)
    records = score_videos(model, loader, device, max_views=cfg.TEST.MAX_VIEWS_PER_BATCH,
                           method=cfg.TEST.ENSEMBLE_METHOD, amp=cfg.TRAIN.AMP, norm=(cfg.DATA.MEAN, cfg.DATA.STD),
                           progress=progress and sys.stdout.isatty())
    merged = gather_records(records)
    if merged is None:
        du.barrier()
        return None
    if len(merged) != len(dataset):
        raise RuntimeError(f"gathered {len(merged)} test results for {len(dataset)} videos")
    names = class_names_from_cfg(cfg)
    metrics = compute_metrics(merged, cfg.MODEL.NUM_CLASSES, names)
    extra = _test_summary(cfg, config_name, merged, views)
    write_test_outputs(cfg.OUTPUT_DIR, merged, metrics, extra, names)
    logger.info("video top1 %.2f top5 %.2f mean class acc %.2f clip top1 %.2f over %d videos (%d failed); "
                "wrote %s", metrics["top1"], metrics["top5"], metrics["mean_class_accuracy"], metrics["clip_top1"],
                metrics["num_videos"], len(metrics["failed_videos"]), Path(cfg.OUTPUT_DIR) / "test_results.json")
    du.barrier()
    return {**metrics, **extra}


def class_name(names: Sequence[str] | None, index: int) -> str:
    """``names[index]``, or the index as text when there is no such name."""
    return names[index] if names and 0 <= index < len(names) else str(index)


@torch.no_grad()
def predict_video(cfg, path: str, model: nn.Module | None = None, topk: int = 5,
                  class_names: list[str] | None = None) -> list[tuple[int, str, float]]:
    """Top-``topk`` (class index, name, probability) for one video with the test views of ``cfg``
    (names from ``class_names``, else ``DATA.CLASS_NAMES``)."""
    from sfvideo.data.build import build_test_views, class_names_from_cfg

    device = du.resolve_device(cfg.DEVICE)
    model = _test_model(cfg, None, device) if model is None else model.to(device).eval()
    views = build_test_views(cfg, path)  # (V, C, T, H, W)
    logits = forward_views(model, views, device, cfg.TEST.MAX_VIEWS_PER_BATCH, cfg.TRAIN.AMP,
                           norm=(cfg.DATA.MEAN, cfg.DATA.STD))  # (V, K)
    _, probs = ensemble(logits, cfg.TEST.ENSEMBLE_METHOD)  # (K,)
    names = class_names or class_names_from_cfg(cfg)
    top = probs.topk(min(topk, probs.numel()))
    return [(int(k), class_name(names, int(k)), float(p)) for p, k in zip(top.values, top.indices)]
