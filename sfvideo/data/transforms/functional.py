"""Pure functions on uint8 clips: crop and resize, stacking into batches, normalising on the device.

The crop region is cut from the original frame *before* resizing, and the whole clip is resized in
one ``F.interpolate`` call on the uint8 tensor: PyTorch's antialiased bilinear kernel has a uint8
path much faster than the float one, and agrees with the float result to within one grey level.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from ..sampling import CropBox

__all__ = ["batch_to_device", "crop_resize", "normalize_clip", "resize_short_side", "stack_clips"]


def crop_resize(clip: torch.Tensor, box: CropBox, size: tuple[int, int]) -> torch.Tensor:
    """Cut ``box`` from every frame, then resize the region to ``size`` (h, w).

    Args:
        clip: (T, C, H, W) uint8.
    Returns:
        (T, C, h, w) uint8.
    """
    region = clip[:, :, box.top : box.top + box.height, box.left : box.left + box.width]  # (T, C, bh, bw)
    if (box.height, box.width) == tuple(size):
        return region
    return F.interpolate(region, size=size, mode="bilinear", align_corners=False, antialias=True)  # (T, C, h, w)


def resize_short_side(clip: torch.Tensor, size: int) -> torch.Tensor:
    """Resize (T, C, H, W) uint8 so the short side is ``size``, keeping the aspect ratio."""
    h, w = clip.shape[-2:]
    if min(h, w) == size:
        return clip
    if h <= w:
        new = (size, max(size, round(w * size / h)))
    else:
        new = (max(size, round(h * size / w)), size)
    return F.interpolate(clip, size=new, mode="bilinear", align_corners=False, antialias=True)  # (T, C, h', w')


def stack_clips(clips: Sequence[torch.Tensor]) -> torch.Tensor:
    """Stack same-shaped clips on a new first axis, keeping the first clip's memory layout.

    ``torch.stack`` writes a planar result, which for channels-last clips means reordering every
    byte; here the output has the first clip's dimension order in memory, so each clip is one
    sequential copy. Inside a DataLoader worker the output lives in shared memory (as the default
    collate does), so sending the batch to the main process copies nothing.

    Args:
        clips: B tensors of one shape, e.g. (C, T, H, W) or (K, C, T, H, W), any strides.
    Returns:
        (B, *shape), dimension ``i + 1`` ordered in memory as dimension ``i`` of ``clips[0]``.
    """
    first = clips[0]
    order = sorted(range(first.ndim), key=lambda d: (-first.stride(d), d))  # outermost first
    shape = (len(clips),) + tuple(first.shape[d] for d in order)
    numel = len(clips) * first.numel()
    if torch.utils.data.get_worker_info() is not None:
        storage = first.untyped_storage()._new_shared(numel * first.element_size())
        out = torch.empty(0, dtype=first.dtype).set_(storage).view(shape)
    else:
        out = torch.empty(shape, dtype=first.dtype)
    for i, clip in enumerate(clips):
        out[i].copy_(clip.permute(order))
    inverse = [0] + [1 + order.index(d) for d in range(first.ndim)]
    return out.permute(inverse)  # (B, *clip shape)


def normalize_clip(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 clips (..., C, T, H, W) -> float32 ``(x / 255 - mean) / std`` on ``x``'s device.

    The public way to get model inputs from ``build_dataset`` items: a clip (C, T, H, W), test
    views (V, C, T, H, W) or a batch (B, C, T, H, W) all work; the channel axis is the 4th from last.

    Raises:
        TypeError: ``x`` is not uint8 (floats are taken to be normalised already: see ``batch_to_device``).
    """
    if x.dtype != torch.uint8:
        raise TypeError(f"normalize_clip expects uint8 clips (0-255), got {x.dtype}")
    c = x.shape[-4]
    m = torch.tensor(mean, dtype=torch.float32, device=x.device).view(c, 1, 1, 1) * 255.0
    inv_s = 1.0 / (torch.tensor(std, dtype=torch.float32, device=x.device).view(c, 1, 1, 1) * 255.0)
    return x.float().sub_(m).mul_(inv_s)  # (..., C, T, H, W)


def batch_to_device(video: torch.Tensor, label: torch.Tensor | None, device: torch.device | str,
                    mean: Sequence[float] | None, std: Sequence[float] | None
                    ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Move a loader batch to ``device`` and normalise it there.

    Args:
        video: (B, C, T, H, W) uint8 clips, (B, K, C, T, H, W) uint8 (``DATA.CLIPS_PER_DECODE``
            K > 1: flattened to (B*K, ...) clip-major per video) or test views (B*V, C, T, H, W);
            a float tensor is taken as already normalised (custom datasets) and only moved.
        label: (B,) labels, repeated K times alongside the flattened clips; ``None`` to skip.

    Returns:
        clips (B', C, T, H, W) float32 normalised on ``device``, labels (B',) on ``device``.
    """
    if video.ndim == 6:  # (B, K, C, T, H, W): several clips per decoded video
        k = video.shape[1]
        video = video.flatten(0, 1)  # (B*K, C, T, H, W)
        if label is not None:
            label = label.repeat_interleave(k)  # (B*K,)
    video = video.to(device, non_blocking=True)
    if video.dtype == torch.uint8:
        if mean is None or std is None:
            raise ValueError("uint8 clips need the mean and std (DATA.MEAN, DATA.STD) to be normalised")
        video = normalize_clip(video, mean, std)
    if label is not None:
        label = label.to(device, non_blocking=True)
    return video, label

