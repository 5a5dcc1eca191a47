"""Each decoder end to end: a training run and a multi-view test run, and the same clip indices
give the same source frames whichever decoder reads them (barcoded videos, ``_fidelity.py``)."""

from __future__ import annotations

import json

import pytest
import torch
from _fidelity import KINDS, read_barcode, write_kind

from engine_helpers import tiny_opts
from sfvideo.config import load_config
from sfvideo.data import build_dataset
from sfvideo.data.decoding import AUTO_ORDER, BACKENDS, backend_status, decode_video
from sfvideo.data.sampling import clip_spec, view_clips

# Matroska, WebM, open-GOP HEVC and variable frame rate: the kinds decoders most often get wrong.
E2E_KINDS = [k for k in KINDS if k.name in ("h264.mkv", "vp9.webm", "hevc.mp4", "h264_vfr.mp4")]


@pytest.fixture(scope="module")
def barcode_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("barcode_data")
    lines = []
    for label, kind in enumerate(E2E_KINDS):
        write_kind(kind, root)
        lines.append(f"{kind.name} {label}\n")
    for split in ("train", "val"):
        (root / f"{split}.txt").write_text("".join(lines))
    (root / "classes.txt").write_text("".join(f"class{i}\n" for i in range(4)))
    return root


def _opts(data_dir, out_dir, decoder, **extra):
    return tiny_opts(data_dir, out_dir, **{
        "DATA.DECODER": decoder, "DATA.NUM_FRAMES": 8, "DATA.SAMPLING_RATE": 2, "DATA.TRAIN_CROP_SIZE": 32,
        "DATA.TEST_CROP_SIZE": 32, "DATA.TRAIN_JITTER_SCALES": "[32,40]", "DATA.DECODER_FALLBACK": False,
        "SOLVER.MAX_EPOCH": 1, "TRAIN.EVAL_PERIOD": 1, "TEST.NUM_ENSEMBLE_VIEWS": 2, "TEST.NUM_SPATIAL_CROPS": 3,
        **extra})


@pytest.mark.slow
@pytest.mark.parametrize("decoder", BACKENDS)
def test_train_and_multi_view_test_run(barcode_data, tmp_path, decoder):
    from sfvideo.engine.evaluate import run_test
    from sfvideo.engine.train import train

    if decoder != "auto" and backend_status(decoder):
        pytest.skip(backend_status(decoder))
    cfg = load_config("k400_tiny.yaml", _opts(barcode_data, tmp_path, decoder))
    result = train(cfg)
    last = tmp_path / "checkpoints" / "last.pth"
    assert last.is_file() and result is not None
    test_cfg = load_config("k400_tiny.yaml", _opts(barcode_data, tmp_path, decoder, **{"TEST.CHECKPOINT": str(last)}))
    run_test(test_cfg, progress=False)
    out = json.loads((tmp_path / "test_results.json").read_text())
    assert out["num_videos"] == len(E2E_KINDS) and out["failed_videos"] == []
    assert out["views_per_video"] == 6


@pytest.mark.parametrize("kind", E2E_KINDS, ids=[k.name for k in E2E_KINDS])
def test_same_clip_indices_same_source_frames(barcode_data, kind):
    """The test sampling's indices from each backend's metadata are the same, and each backend
    returns exactly those frames (barcodes); the pipeline's uint8 views then agree to within
    a few levels of colour conversion."""
    base = ["DATA.PATH_TO_DATA_DIR", str(barcode_data), "DATA.CLASS_NAMES", "classes.txt", "MODEL.NUM_CLASSES", "4",
            "DATA.TEST_LIST", "val.txt", "DATA.NUM_FRAMES", "8", "DATA.SAMPLING_RATE", "2", "DATA.TEST_CROP_SIZE", "32",
            "TEST.NUM_ENSEMBLE_VIEWS", "3", "DATA.DECODER_FALLBACK", "False"]
    spec_of = lambda meta: clip_spec(8, 2, meta.fps, 30.0)  # noqa: E731
    picked, views = {}, {}
    for backend in AUTO_ORDER:
        if backend_status(backend):
            continue
        seen = {}

        def index_fn(meta, seen=seen):
            seen["idx"] = [i for c in view_clips(spec_of(meta), meta.num_frames, 3, "uniform", "repeat_last")
                           for i in c.indices]
            return seen["idx"]

        frames, _ = decode_video(barcode_data / kind.name, index_fn, backend, fallback=False)
        assert [read_barcode(f.numpy()) for f in frames] == seen["idx"], backend
        picked[backend] = seen["idx"]
        ds = build_dataset(load_config(None, [*base, "DATA.DECODER", backend]), "test")
        item = ds[[r.path for r in ds.records].index(kind.name)]
        assert not item["failed"] and item["video"].dtype == torch.uint8
        views[backend] = item["video"].int()  # (V, C, T, H, W)
    assert len(set(map(tuple, picked.values()))) == 1, picked
    ref = next(iter(views.values()))
    for backend, v in views.items():
        assert (v - ref).abs().float().mean() < 2.0, backend  # same frames; conversion rounding only



class _RecordingInputs(torch.nn.Module):
    """The model, keeping a copy of every training batch it is given."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model, self.train_inputs = model, []

    def forward(self, x):
        if self.training:
            self.train_inputs.append(x.detach().clone())
        return self.model(x)


def test_two_clips_per_decode_train_on_two_clips_of_each_video_augmented_apart(barcode_data, tmp_path):
    """``DATA.CLIPS_PER_DECODE 2``: each step trains on B x 2 clips, a video's two clips side by side
    and augmented independently; an epoch has as many steps as with one clip per decode."""
    from sfvideo.engine.train import train
    from sfvideo.models import build_model

    models = []
    cfg = load_config("k400_tiny.yaml", _opts(barcode_data, tmp_path, "pyav", **{
        "DATA.CLIPS_PER_DECODE": 2, "TRAIN.EVAL_PERIOD": 0}))
    result = train(cfg, model_fn=lambda c: models.append(_RecordingInputs(build_model(c))) or models[-1])
    batches = models[0].train_inputs
    assert result.step == len(batches) == len(E2E_KINDS) // cfg.TRAIN.BATCH_SIZE
    for x in batches:
        assert x.shape == (2 * cfg.TRAIN.BATCH_SIZE, 3, 8, 32, 32)  # (B*K, C, T, S, S)
        for v in range(cfg.TRAIN.BATCH_SIZE):
            assert not torch.equal(x[2 * v], x[2 * v + 1])  # one decode, two augmentations
    (record,) = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert torch.isfinite(torch.tensor(record["train_loss"]))
