"""``timeline.png``: what happens when, drawn the way a person scans a video.

Top: the smoothed per-second label track as coloured bands (named where the name fits), and,
when the result carries ``truth`` segments (benchmarks), the true labels in a band below it.
Bottom: a class x time heatmap of the window probabilities (classes that are top-1 somewhere,
at most ``max_classes``; all classes when there are few), so a confident stretch is a dark bar.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np


def _clock(seconds: float, _pos=None) -> str:
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def _shown_classes(result: dict[str, Any], max_classes: int) -> list[int]:
    probs = result["probs"]  # (W, K)
    if probs.shape[1] <= max_classes:
        return list(range(probs.shape[1]))
    top = set(probs.argmax(1).tolist()) | {s["index"] for s in result["segments"]}
    return sorted(sorted(top, key=lambda k: -probs[:, k].max())[:max_classes])


def _band(ax, segments, colours, duration: float, width_in: float, title: str) -> None:
    seconds_per_inch = duration / width_in
    for seg in segments:
        width = seg["end_s"] - seg["start_s"]
        ax.broken_barh([(seg["start_s"], width)], (0, 1), facecolors=colours.get(seg["index"], "0.7"),
                       edgecolor="white", linewidth=0.5)
        if width / seconds_per_inch >= 0.075 * len(seg["label"]):  # the name fits at font size 8
            ax.text(seg["start_s"] + width / 2, 0.5, seg["label"], ha="center", va="center", fontsize=8, color="white")
    ax.set_yticks([0.5], [title], fontsize=8)
    ax.set_ylim(0, 1)


def plot_timeline(result: dict[str, Any], path: str | os.PathLike, max_classes: int = 12) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter

    names = result.get("classes")
    probs = result["probs"]  # (W, K)
    shown = _shown_classes(result, max_classes)
    label = [names[k] if names and k < len(names) else str(k) for k in shown]
    colours = {k: plt.get_cmap("tab10" if len(shown) <= 10 else "tab20")(i) for i, k in enumerate(shown)}
    duration, truth = result["duration_s"], result.get("truth")
    bands = 2 if truth else 1
    fig, axes = plt.subplots(bands + 1, 1, figsize=(11, 1.6 + 0.5 * bands + 0.22 * len(shown)), sharex=True,
                             gridspec_kw={"height_ratios": [0.5] * bands + [0.22 * len(shown)]})
    width_in = 11 * 0.72
    _band(axes[0], result["segments"], colours, duration, width_in, "predicted")
    if truth:
        _band(axes[1], truth, colours, duration, width_in, "true")
    heat = axes[-1]
    centres = np.array([(w["start_s"] + w["end_s"]) / 2 for w in result["windows"]])
    edges = np.concatenate([[0.0], (centres[1:] + centres[:-1]) / 2, [duration]])
    heat.pcolormesh(edges, np.arange(len(shown) + 1), probs[:, shown].T, cmap="Greys", vmin=0, vmax=1, shading="flat")
    heat.set_yticks(np.arange(len(shown)) + 0.5, label, fontsize=8)
    heat.invert_yaxis()
    heat.set_xlim(0, duration)
    heat.set_xlabel("time (m:ss); heatmap: window probability per class", fontsize=8)
    heat.xaxis.set_major_formatter(FuncFormatter(_clock))
    axes[0].set_title(f"{Path(result['video']).name}: {len(result['windows'])} windows of {result['window_s']:.2f} s "
                      f"every {result['stride_s']:.2f} s", fontsize=9)
    axes[0].legend(handles=[Patch(color=colours[k], label=n) for k, n in zip(shown, label)], loc="upper left",
                   bbox_to_anchor=(1.005, 1.0), fontsize=7, frameon=False)
    fig.subplots_adjust(left=0.17, right=0.83, top=0.9, bottom=0.12, hspace=0.15)
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
