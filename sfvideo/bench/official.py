"""sfvideo's ``video_tiny`` against the official ``MediaSparseFormer`` (github.com/showlab/sparseformer,
fetched outside this repository) on identical weights and input, and bf16 against fp32 on the
official fixture clips (``sfvideo benchmark --official DIR``)."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .parity import media_video_model
from .results import Record, render_table
from .timing import in_mode, inference_step, model_steps, paired_ratio, time_rounds


def load_official_media_sparseformer(official_dir: str | Path, variant: str = "tiny", replicates: int = 8,
                                     num_classes: int = 400) -> nn.Module:
    """The official ``MediaSparseFormer`` (``sparseformer/`` package) with the v1 SF-T/S/B settings.
    ``official_dir`` is a checkout of that repository; it needs ``timm`` importable. Nothing of it
    is part of sfvideo."""
    root = Path(official_dir)
    pkg = root / "sparseformer" if (root / "sparseformer" / "sparseformer").is_dir() else root
    if not (pkg / "sparseformer" / "media.py").is_file():
        raise FileNotFoundError(f"{official_dir}: no sparseformer/media.py (expected a checkout of showlab/sparseformer)")
    sys.path.insert(0, str(pkg))
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from sparseformer import config as official_config
            from sparseformer.media import MediaSparseFormer
    except ImportError as err:
        raise ImportError(f"the official code needs {err.name}: pip install timm") from err
    kwargs = getattr(official_config, f"sparseformer_v1_{variant}")()
    kwargs.update(proj_dim=num_classes)
    return MediaSparseFormer(replicates=replicates, **kwargs)


def zero_official_drop_path(model: nn.Module) -> None:
    """Drop path off in the official model: each ``SFUnit`` keeps ``drop_path`` as a float or a
    list with one rate per repeat, applied in ``forward`` whatever the module's mode."""
    for m in model.modules():
        rate = getattr(m, "drop_path", None)
        if isinstance(rate, (list, tuple)):
            m.drop_path = [0.0] * len(rate)
        elif isinstance(rate, float):
            m.drop_path = 0.0


def official_and_sfvideo_tiny(official_dir: str | Path, device: torch.device,
                              num_classes: int = 400) -> tuple[nn.Module, nn.Module]:
    """The official MediaSparseFormer (SF-T, 8 replicates) and sfvideo's ``video_tiny``, both
    without drop path, with the official model holding sfvideo's (random) weights."""
    from ..models import create_model

    ours = create_model("video_tiny", num_classes=num_classes, drop_path_rate=0.0)
    official = load_official_media_sparseformer(official_dir, "tiny", replicates=8, num_classes=num_classes)
    zero_official_drop_path(official)
    official.load_state_dict(ours.state_dict(), strict=True)
    return official.to(device), ours.to(device)


def max_abs_diff(a: nn.Module, b: nn.Module, clip: torch.Tensor) -> float:
    """Largest difference of two models' logits on ``clip`` (eval mode, fp32)."""
    a.eval(), b.eval()
    with torch.inference_mode():
        return (a(clip).float() - b(clip).float()).abs().max().item()


def bf16_agreement_on_fixture(fixtures_dir: str | Path) -> dict[str, float]:
    """sfvideo's small video model with the official fixture weights (``media_small_r2.pth`` in
    ``fixtures_dir``: ``tests/fixtures/official_sparseformer`` of a source checkout) on the
    fixture clips, fp32 vs bf16 autocast (CPU): argmax agreement and logit gaps."""
    model, ref = media_video_model(fixtures_dir)
    video = ref["video"]  # (B, 3, T, H, W)
    with torch.inference_mode():
        fp32 = model(video)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = model(video).float()
    return {"clips": video.shape[0],
            "argmax_agreement": (fp32.argmax(-1) == bf16.argmax(-1)).float().mean().item(),
            "bf16_vs_fp32_max_abs": (bf16 - fp32).abs().max().item(),
            "fp32_vs_official_max_abs": (fp32 - ref["logits"]).abs().max().item()}


def _compare_at(official: nn.Module, ours: nn.Module, clip: torch.Tensor, iters: int, warmup: int,
                log: Callable[[str], None]) -> dict:
    """One frame count: fp32 inference and training steps of both models interleaved, then
    sfvideo bf16 inference against official fp32 inference in rounds of their own (its much slower
    calls, on CPUs without native bf16, would otherwise sit between the fp32 runs compared)."""
    b, _, t, s, _ = clip.shape
    off, sf = model_steps(official, clip), model_steps(ours, clip)
    log(f"[time] {t} frames: 4 fp32 steps interleaved, {warmup} warmup + {iters} timed calls each")
    times = time_rounds({"official/infer": off["infer"], "sfvideo/infer": sf["infer"],
                         "official/train": off["train"], "sfvideo/train": sf["train"]}, iters=iters, warmup=warmup)
    log(f"[time] {t} frames: sfvideo bf16 inference vs official fp32 inference, {iters} rounds")
    bf16 = time_rounds({"official/infer": off["infer"],
                        "sfvideo_bf16/infer": in_mode(ours, False, inference_step(ours, clip, "bf16"))},
                       iters=iters, warmup=warmup)
    sec = {k: statistics.median(v) for k, v in times.items()}
    sec["sfvideo_bf16/infer"] = statistics.median(bf16["sfvideo_bf16/infer"])
    row = {"frames": t, "batch": b, "size": s, "seconds": sec,
           "infer_ratio": paired_ratio(times["official/infer"], times["sfvideo/infer"]),
           "train_ratio": paired_ratio(times["official/train"], times["sfvideo/train"]),
           "bf16_infer_ratio": paired_ratio(bf16["official/infer"], bf16["sfvideo_bf16/infer"])}
    log(f"[result] {t} frames: official/sfvideo time, inference {row['infer_ratio']:.2f}, train step "
        f"{row['train_ratio']:.2f}, sfvideo bf16 inference vs official fp32 {row['bf16_infer_ratio']:.2f}")
    return row


def compare_with_official(official_dir: str | Path, fixtures_dir: str | Path | None = None,
                          frames: tuple[int, ...] = (8, 32), batch: int = 2, size: int = 224, iters: int = 2,
                          warmup: int = 1, device: str = "cpu", log: Callable[[str], None] | None = print) -> dict:
    """Official MediaSparseFormer (SF-T, 8 replicates) vs sfvideo's ``video_tiny`` on identical
    weights and input, in one process with runs interleaved.

    Returns ``{"max_abs_diff": ..., "rows": [...], "fixture": ...}``; each row holds, at one
    frame count, ratios official time / sfvideo time (> 1: sfvideo faster) for fp32 inference,
    fp32 training steps, and sfvideo bf16-autocast inference against official fp32 inference.
    ``fixture`` is ``bf16_agreement_on_fixture(fixtures_dir)``, or None without ``fixtures_dir``.
    """
    log = log or (lambda _msg: None)
    dev = torch.device(device)
    official, ours = official_and_sfvideo_tiny(official_dir, dev)
    check = torch.randn(batch, 3, frames[0], size, size, device=dev)  # (B, C, T, H, W)
    diff = max_abs_diff(official, ours, check)
    log(f"[check] identical weights, {tuple(check.shape)}: max |official - sfvideo| = {diff:.2e}")
    if diff > 1e-3:
        raise RuntimeError(f"official and sfvideo outputs differ by {diff:.3g} on identical weights: "
                           "the timings would compare different functions")
    rows = [_compare_at(official, ours, torch.randn(batch, 3, t, size, size, device=dev), iters, warmup, log)
            for t in frames]  # clips (B, C, T, H, W)
    fixture = bf16_agreement_on_fixture(fixtures_dir) if fixtures_dir is not None else None
    return {"max_abs_diff": diff, "rows": rows, "fixture": fixture}


def official_records(result: dict) -> list[Record]:
    """``compare_with_official``'s result as results records, one per frame count."""
    fixture = {f"fixture_{k}": v for k, v in (result["fixture"] or {}).items()}
    keys = {"official/infer": "official_infer_s", "sfvideo/infer": "sfvideo_infer_s",
            "sfvideo_bf16/infer": "sfvideo_bf16_infer_s", "official/train": "official_train_s",
            "sfvideo/train": "sfvideo_train_s"}
    return [{**{k: v for k, v in r.items() if k != "seconds"}, **{keys[k]: v for k, v in r["seconds"].items()},
             "max_abs_diff": result["max_abs_diff"], **fixture} for r in result["rows"]]


def format_official_table(result: dict, header: str) -> str:
    """Markdown table of ``compare_with_official``'s ratios and seconds per step."""
    return f"{header}\n\n{render_table(official_records(result), 'official')}"
