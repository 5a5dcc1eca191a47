"""Pooled token embeddings (the vector the classifier reads: ``norm(mean over tokens)``) per video.

``extract_features`` writes, into ``out_dir``: ``parts/<n>.npy`` per video (written atomically,
skipped when present and readable: an interrupted run resumes; a damaged one is made again), then
``features.npy`` (R, D) float32 and ``index.csv`` (``video,label,row`` + ``start_s,end_s`` per
window with ``per_window``). A video's row is the mean of its test views' embeddings; with
``per_window`` it has one row per timeline window instead. Under torchrun, rank r handles videos
r, r + W, ...: each video exactly once; rank 0 gathers the parts after a barrier.

``parts/manifest.json`` records what made the parts (``parts_record``: a digest of the weights,
the mode, the input protocol and the decoder). Parts are reused only by a run that would make
them the same way; any other run into that folder raises :class:`FeaturesError` (or, with
``overwrite``, removes them and starts again), so one folder never mixes two models' features.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..utils.io import atomic_write, atomic_write_text
from .preprocess import model_input

logger = logging.getLogger("sfvideo.features")

MANIFEST = "manifest.json"


class FeaturesError(ValueError):
    """An output folder holding parts another run made (other weights, mode or input protocol)."""


@torch.no_grad()
def pooled_embedding(model: nn.Module, clips: torch.Tensor) -> torch.Tensor:
    """(V, 3, T, H, W) normalised clips -> (V, D): the final LayerNorm of the mean token, the
    input of the classifier (``forward_head`` without ``proj``)."""
    tokens, _ = model.forward_tokens(clips)  # (V, N, D)
    return model.norm(tokens.mean(dim=1))  # (V, D)


def video_embedding(model: nn.Module, cfg, path: str) -> np.ndarray:
    """(1, D): the test views' embeddings of ``path`` averaged."""
    from ..data.build import build_test_views

    return views_embedding(model, cfg, build_test_views(cfg, path))


def views_embedding(model: nn.Module, cfg, views: torch.Tensor) -> np.ndarray:
    """(1, D): the embeddings of one video's test views (V, 3, T, S, S) averaged."""
    views = model_input(views, cfg.DATA.MEAN, cfg.DATA.STD)  # (V, 3, T, S, S) float
    emb = torch.cat([pooled_embedding(model, views[i:i + 8]) for i in range(0, views.shape[0], 8)])  # (V, D)
    return emb.mean(0, keepdim=True).float().numpy()


def window_embeddings(model: nn.Module, cfg, path: str, window_s: float | None = None,
                      stride_s: float | None = None, batch: int = 8) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """(W, D) embeddings of the timeline windows of ``path`` (centre crop), and their (start, end) seconds."""
    from ..data.pyav_reader import probe
    from ..models.protocol import InputProtocol
    from .stream import frame_preparer, plan_windows, stream_clips
    from .timeline import default_window

    protocol = InputProtocol.from_config(cfg).to_dict()
    num_frames, fps = probe(path)
    window_s = window_s or default_window(protocol)
    windows = plan_windows(num_frames, fps, window_s, stride_s or window_s / 2, protocol["num_frames"])
    prep = frame_preparer(protocol["crop_size"])
    rows, spans = [], []
    for ws, clips in stream_clips(path, windows, prep, batch=batch):
        x = torch.from_numpy(model_input(clips, protocol["mean"], protocol["std"]))
        rows.append(pooled_embedding(model, x).float().numpy())
        spans += [(w.start_s, w.end_s) for w in ws]
    return np.concatenate(rows), spans


def part_name(video: str) -> str:
    """A file name for a video's part, stable across runs and unique per path."""
    return f"{Path(video).stem[:60]}-{hashlib.sha1(video.encode()).hexdigest()[:10]}.npy"


def _save_atomic(path: Path, array: np.ndarray) -> None:
    with atomic_write(path) as f:
        np.save(f, array)


def weights_digest(model: nn.Module) -> str:
    """A digest of every tensor of ``model``'s state (names, dtypes, shapes and values)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name} {t.dtype} {tuple(tensor.shape)}".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def parts_record(cfg, model: nn.Module, per_window: bool) -> dict:
    """What makes a part: the weights (their digest), the mode, the input protocol and the decoder."""
    from ..models.protocol import InputProtocol

    return {"weights": weights_digest(model), "mode": "per-window" if per_window else "per-video",
            "protocol": InputProtocol.from_config(cfg).to_dict(), "decoder": cfg.DATA.DECODER}


def _difference(old: dict, new: dict) -> str:
    """What differs between two part records, for a message."""
    said = []
    if old.get("weights") != new["weights"]:
        said.append(f"other weights (digest {old.get('weights')}, this run's {new['weights']})")
    if old.get("mode") != new["mode"]:
        said.append(f"{old.get('mode')} rows (this run: {new['mode']})")
    if old.get("protocol") != new["protocol"]:
        fields = sorted(k for k in new["protocol"] if (old.get("protocol") or {}).get(k) != new["protocol"][k])
        said.append(f"another input protocol ({', '.join(fields)})")
    if old.get("decoder") != new["decoder"]:
        said.append(f"DATA.DECODER {old.get('decoder')} (this run: {new['decoder']})")
    return ", ".join(said)


def check_parts(out: Path, record: dict) -> None:
    """Raise :class:`FeaturesError` unless the parts in ``out/parts`` (if any) were made as
    ``record`` says; read-only, so every rank can check before any writes."""
    parts = out / "parts"
    manifest = parts / MANIFEST
    present = sorted(parts.glob("*.npy")) if parts.is_dir() else []
    try:
        old = json.loads(manifest.read_text()) if manifest.is_file() else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        old = None
    if old == record or (old is None and not present):
        return
    what = _difference(old, record) if isinstance(old, dict) else f"{len(present)} parts of unknown origin"
    raise FeaturesError(f"{out} holds features made by {what}: use another --out, or --overwrite to remove them "
                        "and compute every part again")


def claim_parts(out: Path, record: dict, overwrite: bool) -> None:
    """Rank 0: with ``overwrite``, remove the parts of another run; record what makes this run's."""
    parts = out / "parts"
    if overwrite and parts.is_dir():
        for p in parts.glob("*.npy"):
            p.unlink()
    parts.mkdir(parents=True, exist_ok=True)
    atomic_write_text(parts / MANIFEST, json.dumps(record, indent=1))


def _part_ok(target: Path, per_window: bool, dim: int) -> bool:
    """True when ``target`` (and its spans, per window) read back as a part of ``dim`` columns."""
    try:
        emb = np.load(target)
        spans = np.load(target.with_suffix(".spans.npy")) if per_window else np.zeros((1, 2))
    except (OSError, ValueError, EOFError):
        return False
    rows_ok = len(spans) == emb.shape[0] if per_window else emb.shape[:1] == (1,)
    return emb.ndim == 2 and emb.shape[1] == dim and emb.dtype == np.float32 and rows_ok and spans.shape[1:] == (2,)


def extract_part(model, cfg, video: str, path: str, parts: Path, per_window: bool) -> None:
    """Write one video's part (skipped when a readable one is already there)."""
    target = parts / part_name(video)
    if target.is_file():
        if _part_ok(target, per_window, model.norm.weight.shape[0]):
            return
        logger.warning("%s: its part %s is damaged; computing it again", video, target)
        target.unlink()
    if per_window:
        emb, spans = window_embeddings(model, cfg, path)
        _save_atomic(target.with_suffix(".spans.npy"), np.asarray(spans, dtype=np.float64))
    else:
        emb = video_embedding(model, cfg, path)
    _save_atomic(target, emb.astype(np.float32))


def gather_parts(videos: Sequence[tuple[str, int | None]], parts: Path, out_dir: Path, per_window: bool) -> Path:
    """``features.npy`` + ``index.csv`` from the parts, in list order."""
    rows, buf = [], io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["video", "label", "row"] + (["start_s", "end_s"] if per_window else []))
    for video, label in videos:
        emb = np.load(parts / part_name(video))
        spans = np.load((parts / part_name(video)).with_suffix(".spans.npy")) if per_window else [None]
        for i, span in enumerate(spans):
            extra = [f"{span[0]:.3f}", f"{span[1]:.3f}"] if per_window else []
            writer.writerow([video, "" if label is None else label, len(rows)] + extra)
            rows.append(emb[i])
    _save_atomic(out_dir / "features.npy", np.stack(rows).astype(np.float32))
    atomic_write_text(out_dir / "index.csv", buf.getvalue())
    return out_dir / "features.npy"


def extract_features(cfg, model: nn.Module, videos: Sequence[tuple[str, int | None]], out_dir: str | os.PathLike,
                     *, data_dir: str = "", per_window: bool = False, progress: bool = False,
                     overwrite: bool = False) -> Path | None:
    """Embed ``videos`` ((path as listed, label or None)); rank 0 returns ``features.npy``'s path.

    Paths are resolved against ``data_dir`` when relative. Videos that cannot be decoded are
    logged and left out of the index.

    Raises:
        FeaturesError: ``out_dir`` holds parts another run made (other weights, mode, protocol
            or decoder) and ``overwrite`` is off; nothing is written then.
    """
    from ..data.decoding import DecodeError
    from ..engine import distributed as du

    out, parts = Path(out_dir), Path(out_dir) / "parts"
    record = parts_record(cfg, model, per_window)
    if not overwrite:
        check_parts(out, record)
    if du.is_main_process():
        claim_parts(out, record, overwrite)
    du.barrier()
    mine = list(videos)[du.get_rank()::du.get_world_size()]
    model = model.eval()
    iterator = mine
    if progress and du.is_main_process():
        from tqdm import tqdm

        iterator = tqdm(mine, desc="features", dynamic_ncols=True, leave=False)
    for video, _ in iterator:
        path = video if os.path.isabs(video) or not data_dir else os.path.join(data_dir, video)
        try:
            extract_part(model, cfg, video, path, parts, per_window)
        except (DecodeError, ValueError, FileNotFoundError) as err:
            logger.warning("skipping %s: %s", video, err)
    du.barrier()
    if not du.is_main_process():
        return None
    done = [(v, label) for v, label in videos if (parts / part_name(v)).is_file()]
    return gather_parts(done, parts, out, per_window)


def extract_shard_features(cfg, model: nn.Module, out_dir: str | os.PathLike, *, progress: bool = False,
                           overwrite: bool = False) -> Path | None:
    """Embed every sample of ``DATA.TEST_SHARDS`` (``DATA.FORMAT shards``; each process and loader
    worker reads its own shards); rank 0 returns ``features.npy``'s path. Rows follow the shards'
    order; ``index.csv``'s ``video`` is each sample's source path. Samples that cannot be read are
    logged and left out. Parts are reused as by :func:`extract_features`.

    Raises:
        FeaturesError: ``out_dir`` holds parts another run made and ``overwrite`` is off.
    """
    from torch.utils.data import DataLoader

    from ..data import build_dataset
    from ..engine import distributed as du
    from ..engine.evaluate import list_collate
    from ..engine.loaders import read_loader, shield_worker

    out, parts = Path(out_dir), Path(out_dir) / "parts"
    record = parts_record(cfg, model, per_window=False)
    if not overwrite:
        check_parts(out, record)
    if du.is_main_process():
        claim_parts(out, record, overwrite)
    du.barrier()
    loader = DataLoader(build_dataset(cfg, "test"), batch_size=1, num_workers=cfg.DATA.NUM_WORKERS,
                        collate_fn=list_collate, worker_init_fn=shield_worker if cfg.DATA.NUM_WORKERS else None)
    model, mine = model.eval(), []
    for item in (it for batch in read_loader(loader, "while embedding") for it in batch):
        if item["failed"]:
            logger.warning("skipping %s: %s", item["path"], item["error"])
            continue
        target = parts / part_name(item["path"])
        if not _part_ok(target, False, model.norm.weight.shape[0]):
            _save_atomic(target, views_embedding(model, cfg, item["video"]).astype(np.float32))
        mine.append((item["index"], item["path"], item["label"]))
        if progress and len(mine) % 100 == 0 and du.is_main_process():
            logger.info("features: %d samples embedded here", len(mine))
    done = sorted(t for part in du.all_gather_object(mine) for t in part)
    if not du.is_main_process():
        return None
    return gather_parts([(path, label) for _, path, label in done], parts, out, per_window=False)
