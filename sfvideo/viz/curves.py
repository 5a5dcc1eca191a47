"""Training curves from the JSON-lines metrics log (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

# Series drawn when present, per panel: (key, label).
LOSS_KEYS = (("train_loss", "train loss"), ("val_loss", "val loss"))
ACC_KEYS = (("train_top1", "train top-1"), ("val_top1", "val top-1"), ("val_top5", "val top-5"),
            ("ema_val_top1", "EMA val top-1"))
LR_KEY = "lr"


def read_metrics(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Per-epoch records of a JSON-lines log, ordered by epoch.

    Blank lines and lines that are not a JSON object (e.g. a line cut short by a crash) are
    skipped. Records without ``epoch`` are numbered by position (1, 2, ...). When an epoch appears
    more than once (a resumed run), the last record wins.
    """
    by_epoch: dict[float, dict[str, Any]] = {}
    with open(path) as fh:
        for position, line in enumerate(fh, start=1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not isinstance(record, dict):
                continue
            epoch = record.get("epoch", position)
            if not isinstance(epoch, (int, float)) or isinstance(epoch, bool):
                epoch = position
            by_epoch[float(epoch)] = {**record, "epoch": epoch}
    return [by_epoch[e] for e in sorted(by_epoch)]


def _series(records: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """(epochs, values) where ``key`` holds a finite number."""
    xs, ys = [], []
    for r in records:
        v = r.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            xs.append(float(r["epoch"]))
            ys.append(float(v))
    return xs, ys


def plot_training_curves(metrics_jsonl_path: str | os.PathLike, out_png: str | os.PathLike, title: str = "") -> Path:
    """Plot loss, accuracy and (if logged) learning rate per epoch into a PNG.

    Args:
        metrics_jsonl_path: JSON-lines log, one object per epoch with any of ``epoch``,
            ``train_loss``, ``val_loss``, ``train_top1``, ``val_top1``, ``val_top5`` (percent), ``lr``.
            Missing keys are skipped; a panel with nothing to show says so.
        out_png: image to write (folders created).
        title: figure title (default: the log's path).

    Returns:
        The PNG path.

    Raises:
        ValueError: the log holds no records.
    """
    import matplotlib

    matplotlib.use("Agg")  # headless; safe to call repeatedly
    import matplotlib.pyplot as plt

    records = read_metrics(metrics_jsonl_path)
    if not records:
        raise ValueError(f"{metrics_jsonl_path}: no JSON records to plot")
    has_lr = bool(_series(records, LR_KEY)[0])
    fig, axes = plt.subplots(1, 3 if has_lr else 2, figsize=(13 if has_lr else 9, 3.6))
    panels = [(axes[0], LOSS_KEYS, "loss"), (axes[1], ACC_KEYS, "accuracy (%)")]
    for ax, keys, ylabel in panels:
        drawn = 0
        for key, label in keys:
            xs, ys = _series(records, key)
            if xs:
                ax.plot(xs, ys, marker="o", markersize=3, label=label)
                drawn += 1
        if drawn:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes, color="grey")
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    if has_lr:
        xs, ys = _series(records, LR_KEY)
        axes[2].plot(xs, ys, color="tab:purple", marker="o", markersize=3)
        axes[2].set_xlabel("epoch")
        axes[2].set_ylabel("learning rate")
        axes[2].ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
        axes[2].grid(alpha=0.3)
    fig.suptitle(title or str(metrics_jsonl_path), fontsize=10)
    fig.tight_layout()
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
