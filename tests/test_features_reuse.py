"""extract-features into a folder that already holds parts: reused only when the same weights,
mode and input protocol made them; otherwise refused (or recomputed with overwrite); a damaged
part is recomputed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine_helpers import make_video_dataset, tiny_opts
from sfvideo.config import load_config
from sfvideo.deploy.features import FeaturesError, extract_features
from sfvideo.models import build_model


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("features")
    data = make_video_dataset(tmp / "videos", num_train=1, num_val=3, frames=40)
    cfg = load_config("k400_tiny.yaml", tiny_opts(data, tmp / "out"))
    videos = [(f"val/v{i:02d}.mp4", i) for i in range(3)]
    return cfg, data, videos


def _model(cfg, seed: int):
    torch.manual_seed(seed)
    return build_model(cfg).eval()


def _run(cfg, model, videos, data, out, **kw):
    return extract_features(cfg, model, videos, out, data_dir=str(data), **kw)


def test_other_weights_into_the_same_out_are_refused_not_mixed(setup, tmp_path):
    cfg, data, videos = setup
    out = tmp_path / "feats"
    first = np.load(_run(cfg, _model(cfg, 0), videos, data, out))
    other = _model(cfg, 1)
    with pytest.raises(FeaturesError) as err:
        _run(cfg, other, videos, data, out)
    message = str(err.value)
    assert str(out) in message and "weights" in message and "--overwrite" in message and "\n" not in message
    assert np.array_equal(np.load(out / "features.npy"), first)  # nothing replaced
    again = np.load(_run(cfg, other, videos, data, out, overwrite=True))
    fresh = np.load(_run(cfg, other, videos, data, tmp_path / "fresh"))
    assert np.array_equal(again, fresh) and not np.array_equal(again, first)
    assert np.array_equal(np.load(_run(cfg, other, videos, data, out)), fresh)  # the same weights: reused


def test_a_per_window_run_into_a_per_video_out_is_refused(setup, tmp_path):
    cfg, data, videos = setup
    model, out = _model(cfg, 0), tmp_path / "feats"
    _run(cfg, model, videos, data, out)
    with pytest.raises(FeaturesError, match="per-video.*per-window|per-window.*per-video"):
        _run(cfg, model, videos, data, out, per_window=True)


def test_another_input_protocol_is_refused(setup, tmp_path):
    cfg, data, videos = setup
    model, out = _model(cfg, 0), tmp_path / "feats"
    _run(cfg, model, videos, data, out)
    more_views = load_config("k400_tiny.yaml", tiny_opts(data, tmp_path / "o", **{"TEST.NUM_ENSEMBLE_VIEWS": 3}))
    with pytest.raises(FeaturesError, match="protocol"):
        _run(more_views, model, videos, data, out)


def test_parts_of_unknown_origin_are_refused(setup, tmp_path):
    cfg, data, videos = setup
    out = tmp_path / "feats"
    (out / "parts").mkdir(parents=True)
    np.save(out / "parts" / "stray.npy", np.zeros((1, 64), np.float32))
    with pytest.raises(FeaturesError, match="unknown"):
        _run(cfg, _model(cfg, 0), videos, data, out)


@pytest.mark.parametrize("damage", ["truncated", "empty", "wrong shape"])
def test_a_damaged_part_is_recomputed(setup, tmp_path, damage):
    cfg, data, videos = setup
    model, out = _model(cfg, 0), tmp_path / "feats"
    first = np.load(_run(cfg, model, videos, data, out))
    part = sorted((out / "parts").glob("v01-*.npy"))[0]
    if damage == "truncated":
        part.write_bytes(part.read_bytes()[:100])
    elif damage == "empty":
        part.write_bytes(b"")
    else:
        np.save(part, np.zeros((2, 5), np.float32))
    assert np.array_equal(np.load(_run(cfg, model, videos, data, out)), first)
    assert np.load(part).shape == (1, 64)


def test_the_command_refuses_in_one_line_and_overwrite_recomputes(setup, tmp_path, capsys):
    from sfvideo.checkpoint import atomic_save, checkpoint_meta
    from sfvideo.cli import extract_features as cli

    cfg, data, _ = setup
    ckpts = []
    for seed in (0, 1):
        ckpts.append(atomic_save({"model": _model(cfg, seed).state_dict(), "meta": checkpoint_meta(cfg, None)},
                                 tmp_path / f"w{seed}.pth"))
    out = tmp_path / "feats"
    args = ["--out", str(out), "--list", str(data / "val.txt"), "DATA.PATH_TO_DATA_DIR", str(data)]
    cli.main(["--checkpoint", str(ckpts[0]), *args])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        cli.main(["--checkpoint", str(ckpts[1]), *args])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 1 and len(err.splitlines()) == 1 and "other weights" in err
    cli.main(["--checkpoint", str(ckpts[1]), "--overwrite", *args])
    assert "wrote" in capsys.readouterr().out
