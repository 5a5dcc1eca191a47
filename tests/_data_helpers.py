"""Synthetic videos for the data tests: tiny H.264 mp4s whose frames encode their own index."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sfvideo.data.encode import write_video

BLOCK = 16  # grey levels between codes; survives H.264 at crf 18 with a wide margin


def coded_frames(num_frames: int, height: int = 48, width: int = 64, marker: str | None = None) -> np.ndarray:
    """uint8 (T, H, W, 3) frames; the left/right halves of the top rows encode t % 16 and t // 16.

    ``marker`` "left" / "right" / "top" / "bottom" paints a pure red band (1/8 of the side) at that edge.
    """
    frames = np.full((num_frames, height, width, 3), 128, np.uint8)
    for t in range(num_frames):
        frames[t, : height // 2, : width // 2] = (t % 16) * BLOCK + BLOCK // 2
        frames[t, : height // 2, width // 2 :] = (t // 16) * BLOCK + BLOCK // 2
    band_w, band_h = max(2, width // 8), max(2, height // 8)
    red = np.array([255, 0, 0], np.uint8)
    if marker == "left":
        frames[:, :, :band_w] = red
    elif marker == "right":
        frames[:, :, -band_w:] = red
    elif marker == "top":
        frames[:, :band_h] = red
    elif marker == "bottom":
        frames[:, -band_h:] = red
    return frames


def frame_code(frame) -> int:
    """The index written by ``coded_frames`` into a decoded (H, W, 3) frame."""
    frame = np.asarray(frame)
    h, w = frame.shape[:2]
    lo = frame[h // 8 : h // 2 - h // 8, w // 8 : w // 2 - w // 8].astype(float).mean()
    hi = frame[h // 8 : h // 2 - h // 8, w // 2 + w // 8 : w - w // 8].astype(float).mean()
    return int(round((hi - BLOCK // 2) / BLOCK)) * 16 + int(round((lo - BLOCK // 2) / BLOCK))


def make_video(path: str | Path, num_frames: int = 30, fps: float = 30.0, height: int = 48, width: int = 64,
               gop: int = 12, marker: str | None = None) -> Path:
    """Write a coded synthetic video and return its path."""
    return write_video(path, coded_frames(num_frames, height, width, marker), fps=fps, gop=gop)


def corrupt_variants(good: Path, out_dir: Path) -> dict[str, Path]:
    """Bad files next to a good one: corrupt bytes, truncated, zero-byte, and a missing path."""
    data = good.read_bytes()
    rng = np.random.default_rng(0)
    out = {
        "corrupt": out_dir / "corrupt.mp4",
        "truncated": out_dir / "truncated.mp4",
        "zero": out_dir / "zero.mp4",
        "missing": out_dir / "missing.mp4",
    }
    out["corrupt"].write_bytes(rng.integers(0, 256, len(data), dtype=np.uint8).tobytes())
    out["truncated"].write_bytes(data[: len(data) // 3])
    out["zero"].write_bytes(b"")
    return out


def random_frames(t: int = 4, h: int = 48, w: int = 64, seed: int = 0):
    """Random uint8 frames (T, H, W, 3) as a torch tensor, the layout decoding hands to the transforms."""
    import torch

    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (t, h, w, 3), dtype=torch.uint8, generator=g)  # (T, H, W, C)


def same_frames(t: int = 4, h: int = 48, w: int = 64):
    """``t`` identical random frames (T, H, W, 3): a per-clip transform keeps them identical."""
    return random_frames(1, h, w).expand(t, h, w, 3).contiguous()  # (T, H, W, C)
