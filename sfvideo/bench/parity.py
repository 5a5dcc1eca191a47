"""sfvideo against reference outputs of the official SparseFormer code (``sfvideo benchmark --parity``).

The reference outputs are the fixture files of ``tests/fixtures/official_sparseformer`` in a
source checkout (their README says how the official code made them): seeded random weights in
the official layouts, an input, and the official model's logits on it. Each check loads the
weights the way a user would, runs the input through sfvideo's model, and reports the largest
absolute difference from the official logits and whether every argmax agrees. The checks run on
the CPU in fp32 and take a few seconds; their figures are data, not timings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, NamedTuple

import torch
from torch import Tensor

from .results import Record

# The fixtures' small architecture (tests/fixtures/official_sparseformer/README.md in a source checkout).
FIXTURE_ARCH = dict(conv_dim=16, num_tokens=9, num_points=9, widths=(64, 128, 128), repeats=(2, 1, 1), num_heads=64)
FIXTURE_VIDEO_ARCH = dict(FIXTURE_ARCH, num_classes=10, temporal_replicates=2)
# The v1 fixtures use 36 sampling points: below 32 the library and v1 adaptive mixing differ.
FIXTURE_V1_ARCH = dict(FIXTURE_ARCH, num_classes=1000, num_points=36)

Logits = tuple[Tensor, Tensor]  # (sfvideo's logits, the official logits), (B, K) each


def _load(fixtures_dir: Path, name: str):
    from ..checkpoint import safe_load

    return safe_load(fixtures_dir / name)


def library_image(fixtures_dir: Path) -> Logits:
    """Image weights in the official library layout -> image logits."""
    from ..models import SparseFormer

    model = SparseFormer(num_classes=10, **FIXTURE_ARCH).eval()
    model.load_state_dict(_load(fixtures_dir, "v2_small_image.pth"), strict=True)
    ref = _load(fixtures_dir, "v2_small_image_logits.pt")
    return model(ref["image"]), ref["image_logits"]


def media_video_model(fixtures_dir: str | Path) -> tuple[torch.nn.Module, dict[str, Tensor]]:
    """sfvideo's video model (eval mode) holding the official ``MediaSparseFormer`` fixture
    weights (2 temporal replicates), and the reference: ``video`` (B, C, T, H, W) and the
    official ``logits`` on it."""
    from ..models import VideoSparseFormer

    fixtures_dir = Path(fixtures_dir)
    model = VideoSparseFormer(**FIXTURE_VIDEO_ARCH).eval()
    model.load_state_dict(_load(fixtures_dir, "media_small_r2.pth"), strict=True)
    return model, _load(fixtures_dir, "media_small_r2_logits.pt")


def media_video(fixtures_dir: Path) -> Logits:
    """``MediaSparseFormer`` video weights -> video logits."""
    model, ref = media_video_model(fixtures_dir)
    return model(ref["video"]), ref["logits"]


def inflated_static_clip(fixtures_dir: Path) -> Logits:
    """Image weights inflated into the video model -> logits on a clip of one repeated image,
    against the official model after the official 2-D -> 3-D weight loading."""
    from ..checkpoint import load_pretrained
    from ..models import VideoSparseFormer

    model = VideoSparseFormer(**FIXTURE_VIDEO_ARCH).eval()
    load_pretrained(model, fixtures_dir / "v2_small_image.pth", log=None)
    ref = _load(fixtures_dir, "v2_small_image_logits.pt")
    return model(ref["static_video"]), ref["inflated_static_logits"]


def v1_checkpoint(v1_numerics: bool) -> Callable[[Path], Logits]:
    """A v1 ``imagenet/`` training checkpoint (``model``/``model_ema``/``epoch``/yacs ``config``)
    -> image logits, with the library's numerics or the v1 code's (``v1_numerics``)."""

    def check(fixtures_dir: Path) -> Logits:
        from ..checkpoint import load_pretrained
        from ..models import SparseFormer

        model = SparseFormer(v1_numerics=v1_numerics, **FIXTURE_V1_ARCH).eval()
        load_pretrained(model, fixtures_dir / "v1_small_train_ckpt.pth", log=None)
        ref = _load(fixtures_dir, "v1_small_logits.pt")
        return model(ref["image"]), ref["logits"]

    return check


class ParityCheck(NamedTuple):
    name: str  # the record's ``check`` field
    description: str  # what is compared, for the table
    run: Callable[[Path], Logits]


CHECKS: tuple[ParityCheck, ...] = (
    ParityCheck("library_image", "library-layout image weights → image logits", library_image),
    ParityCheck("media_video", "`MediaSparseFormer` video weights → video logits", media_video),
    ParityCheck("inflated_static_clip", "image weights inflated as the official code does → static-clip logits",
                inflated_static_clip),
    ParityCheck("v1_library_numerics", "v1 training checkpoint, library numerics (biased variance, eps 1e-5)",
                v1_checkpoint(False)),
    ParityCheck("v1_numerics", "the same with `v1_numerics=True` (unbiased variance, eps 1e-7, as `imagenet/`)",
                v1_checkpoint(True)),
)


def parity_records(fixtures_dir: str | Path, checks: tuple[ParityCheck, ...] = CHECKS) -> list[Record]:
    """Run ``checks`` on the fixtures in ``fixtures_dir``; one record per check with ``check``,
    ``description``, ``max_abs_diff`` (largest |sfvideo - official| logit), ``argmax_agrees``
    and ``outputs`` (the logits compared).

    Raises:
        CheckpointError: a fixture file is missing or unreadable (the path named).
    """
    rows = []
    for check in checks:
        with torch.inference_mode():
            ours, ref = check.run(Path(fixtures_dir))
        rows.append({"check": check.name, "description": check.description,
                     "max_abs_diff": (ours.float() - ref.float()).abs().max().item(),
                     "argmax_agrees": bool(torch.equal(ours.argmax(-1), ref.argmax(-1))),
                     "outputs": ours.numel()})
    return rows
