"""``timeline.png``: what happens when, drawn the way a person scans a video.

Top: the smoothed per-second label track as coloured bands, each long enough band named.
Bottom: the probability over time (window centres) of every class that is top-1 somewhere
(at most ``max_classes``, the most confident first), in the same colours.
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
    top1 = probs.argmax(1)
    shown = sorted(set(top1.tolist()) | {s["index"] for s in result["segments"]}, key=lambda k: -probs[:, k].max())
    return shown[:max_classes]


def plot_timeline(result: dict[str, Any], path: str | os.PathLike, max_classes: int = 8) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    names = result.get("classes")
    probs = result["probs"]
    shown = _shown_classes(result, max_classes)
    colours = {k: plt.get_cmap("tab10")(i % 10) for i, k in enumerate(shown)}
    duration = result["duration_s"]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 4.2), sharex=True, gridspec_kw={"height_ratios": [1, 3]})
    for seg in result["segments"]:
        colour = colours.get(seg["index"], (0.7, 0.7, 0.7, 1.0))
        width = seg["end_s"] - seg["start_s"]
        top.broken_barh([(seg["start_s"], width)], (0, 1), facecolors=colour, edgecolor="white")
        if width >= duration / 25:
            top.text(seg["start_s"] + width / 2, 0.5, seg["label"], ha="center", va="center", fontsize=8,
                     color="white", fontweight="bold", clip_on=True)
    top.set_yticks([])
    top.set_ylabel("label\n(smoothed)", fontsize=8)
    top.set_title(f"{Path(result['video']).name}: {len(result['windows'])} windows of {result['window_s']:.2f} s "
                  f"every {result['stride_s']:.2f} s", fontsize=9)
    centres = np.array([(w["start_s"] + w["end_s"]) / 2 for w in result["windows"]])
    for k in shown:
        label = names[k] if names and k < len(names) else str(k)
        bottom.plot(centres, probs[:, k], color=colours[k], lw=1.3, label=label)
        bottom.fill_between(centres, 0, probs[:, k], color=colours[k], alpha=0.12)
    bottom.set_ylim(0, 1.02)
    bottom.set_xlim(0, duration)
    bottom.set_ylabel("probability", fontsize=8)
    bottom.set_xlabel("time (m:ss)", fontsize=8)
    bottom.xaxis.set_major_formatter(FuncFormatter(_clock))
    bottom.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8, frameon=False)
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
