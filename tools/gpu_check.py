#!/usr/bin/env python
"""Checks to run on a machine with an NVIDIA GPU (``tools/gpu_check.sh`` runs them all).

``train``: the training step of ``video_tiny`` at 32 x 224² on synthetic uint8 batches
(normalised on the device, as the trainer does), fp32 and bf16 autocast, batch 16 and 32:
clips/s, peak memory, and the model FLOP utilisation it implies,
``MFU = 3 x 2 x (counted forward multiply-adds per clip) x clips/s / device peak FLOP/s``
(forward + backward ~ 3 forwards; 2 FLOPs per multiply-add; the peak is bf16 / TF32 dense tensor
throughput from ``PEAK_TFLOPS`` or ``--peak-tflops``).

``loader``: the full training loader (default augmentation) on the high-entropy file set with
8 and 16 workers (spawned, so that workers may use CUDA), CPU decoding vs NVDEC
(``DATA.DECODE_DEVICE cuda``), clips/s.

``nvdec``: the fidelity check of NVDEC decoding on barcoded H.264/HEVC/VP9/AV1 files.

Prints Markdown tables; ``--json`` also writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

# Dense tensor-core peaks (TFLOP/s) by device-name substring: (bf16, tf32). Sources: NVIDIA data sheets.
PEAK_TFLOPS = {"H200": (989.0, 494.0), "H100": (989.0, 494.0), "A100": (312.0, 156.0), "L40S": (362.0, 183.0),
               "A10": (125.0, 62.5), "L4": (121.0, 60.0)}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("parts", nargs="*", default=["nvdec", "train", "loader"], choices=["nvdec", "train", "loader"])
    p.add_argument("--batches", type=int, nargs="+", default=[16, 32])
    p.add_argument("--steps", type=int, default=10, help="timed training steps per setting")
    p.add_argument("--workers", type=int, nargs="+", default=[8, 16])
    p.add_argument("--clips", type=int, default=256, help="clips timed per loader setting")
    p.add_argument("--videos", type=int, default=16, help="high-entropy videos for the loader check")
    p.add_argument("--cache-dir", default=str(Path(tempfile.gettempdir()) / "sfvideo_gpu_check"))
    p.add_argument("--peak-tflops", type=float, nargs=2, metavar=("BF16", "FP32"), default=None,
                   help="device peak for MFU (default: looked up by device name)")
    p.add_argument("--json", default=None, help="also write the results here")
    return p.parse_args(argv)


def _peaks(name: str, override) -> tuple[float, float]:
    if override:
        return tuple(override)
    for key, value in PEAK_TFLOPS.items():
        if key in name:
            return value
    return (float("nan"), float("nan"))


def check_nvdec(args) -> list[dict]:
    from _fidelity import KINDS, index_sets, read_barcode, write_kind

    from sfvideo.data.decoding import DecodeError, decode_video

    out_dir = Path(args.cache_dir) / "fidelity"
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for kind in KINDS:
        if kind.codec not in ("libx264", "libx265", "libvpx-vp9", "libsvtav1"):
            continue
        kind = kind._replace(height=256, width=384)  # above NVDEC's minimum frame sizes
        path = write_kind(kind, out_dir)
        wrong, error = {}, ""
        try:
            for name, idx in index_sets(kind.num_frames).items():
                frames, _ = decode_video(path, lambda m, idx=idx: idx, "torchcodec", fallback=False, device="cuda")
                got = [read_barcode(f.cpu().numpy()) for f in frames]
                if got != idx:
                    wrong[name] = [(a, b) for a, b in zip(idx, got) if a != b][:4]
        except DecodeError as err:
            error = str(err)[:200]
        rows.append({"kind": kind.name, "ok": not wrong and not error, "wrong": wrong, "error": error})
    print("\n| NVDEC fidelity | result |\n|---|---|")
    for r in rows:
        print(f"| {r['kind']} | {'right frames' if r['ok'] else (r['error'] or r['wrong'])} |")
    return rows


def check_train(args) -> list[dict]:
    import statistics

    import torch

    from sfvideo.bench.timing import time_rounds, train_step
    from sfvideo.config import load_config
    from sfvideo.data.transforms import batch_to_device
    from sfvideo.models import build_model
    from sfvideo.utils.flops import count_gflops

    device = torch.device("cuda")
    name = torch.cuda.get_device_name(device)
    peak_bf16, peak_fp32 = _peaks(name, args.peak_tflops)
    cfg = load_config("k400_tiny.yaml", ["MODEL.NUM_CLASSES", "400", "DATA.NUM_FRAMES", "32"])
    gmacs = count_gflops(build_model(cfg).eval(), torch.randn(1, 3, 32, 224, 224))  # per clip, CPU count
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    rows = []
    for amp in ("none", "bf16"):
        for b in args.batches:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
            model = build_model(cfg).to(device)
            video = torch.randint(0, 256, (b, 3, 32, 224, 224), dtype=torch.uint8).pin_memory()  # (B, C, T, H, W)
            labels = torch.randint(0, 400, (b,))
            clips, lab = batch_to_device(video, labels, device, cfg.DATA.MEAN, cfg.DATA.STD)
            try:
                step = train_step(model, clips, amp, labels=lab)

                def with_copy(step=step, video=video, labels=labels):  # the batch's copy and normalisation too
                    batch_to_device(video, labels, device, cfg.DATA.MEAN, cfg.DATA.STD)
                    step()

                dt = statistics.median(time_rounds({"train": with_copy}, iters=args.steps, warmup=3)["train"])
                cps = b / dt
                peak = peak_bf16 if amp == "bf16" else peak_fp32
                mfu = 3 * 2 * gmacs * 1e9 * cps / (peak * 1e12)
                rows.append({"amp": amp, "batch": b, "clips_per_s": cps, "step_s": dt,
                             "peak_mem_gib": torch.cuda.max_memory_allocated(device) / 2**30, "mfu": mfu})
            except torch.OutOfMemoryError:
                rows.append({"amp": amp, "batch": b, "clips_per_s": float("nan"), "step_s": float("nan"),
                             "peak_mem_gib": float("nan"), "mfu": float("nan"), "error": "out of memory"})
            del model
    print(f"\nvideo_tiny training step, 32 x 224², {name}; {gmacs:.2f} GMACs per clip forward; "
          f"peak {peak_bf16:g} (bf16) / {peak_fp32:g} (TF32) TFLOP/s")
    print("| precision | batch | clips/s | step (s) | peak memory (GiB) | MFU |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {'bf16 autocast' if r['amp'] == 'bf16' else 'fp32 (TF32 matmuls)'} | {r['batch']} | "
              f"{r['clips_per_s']:.1f} | {r['step_s']:.3f} | {r['peak_mem_gib']:.1f} | {100 * r['mfu']:.1f}% |")
    return rows


def check_loader(args) -> list[dict]:
    import torch
    from torch.utils.data import DataLoader, RandomSampler

    from sfvideo.bench.loader import generate_videos, time_batches
    from sfvideo.config import load_config
    from sfvideo.data import build_dataset

    cache = Path(args.cache_dir)
    paths = generate_videos(cache, args.videos, kind="high_entropy")
    list_file = cache / "high_entropy_list.txt"
    list_file.write_text("".join(f"{p} {i % 400}\n" for i, p in enumerate(paths)))
    rows = []
    for device in ("cpu", "cuda"):
        cfg = load_config(None, ["DATA.PATH_TO_DATA_DIR", str(cache), "DATA.TRAIN_LIST", str(list_file),
                                 "DATA.CLASS_NAMES", "", "DATA.DECODER", "torchcodec", "DATA.DECODE_DEVICE", device,
                                 "DATA.NUM_WORKERS", "0"])  # workers set below, spawned
        for w in args.workers:
            ds = build_dataset(cfg, "train")
            sampler = RandomSampler(ds, replacement=True, num_samples=args.clips + 64)
            loader = DataLoader(ds, batch_size=16, sampler=sampler, num_workers=w, pin_memory=True,
                                multiprocessing_context="spawn", persistent_workers=False)
            cps = time_batches(loader, args.clips).clips_per_s
            rows.append({"decode": device, "workers": w, "clips_per_s": cps})
            del loader
            torch.cuda.empty_cache()
    print("\nfull training loader, high-entropy set (256x340, GOP 150), default augmentation, batch 16")
    print("| decode | workers | clips/s |\n|---|---|---|")
    for r in rows:
        print(f"| {'NVDEC (torchcodec, cuda)' if r['decode'] == 'cuda' else 'CPU (torchcodec)'} | {r['workers']} | "
              f"{r['clips_per_s']:.1f} |")
    return rows


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; nothing to check")
        return 2
    results = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    for part in args.parts:
        results[part] = {"nvdec": check_nvdec, "train": check_train, "loader": check_loader}[part](args)
        sys.stdout.flush()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
