"""The synthetic toy dataset: determinism, files on disk, and that motion is the only class cue."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from sfvideo.data import toy

T, S = 16, 32  # small clips keep the statistical tests fast


# ------------------------------------------------------------------------------------ helpers
def _ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic sup |F_a - F_b|."""
    grid = np.sort(np.concatenate([a, b]))
    f_a = np.searchsorted(np.sort(a), grid, side="right") / len(a)
    f_b = np.searchsorted(np.sort(b), grid, side="right") / len(b)
    return float(np.abs(f_a - f_b).max())


def _ks_critical(n: int, m: int, alpha: float = 1e-3) -> float:
    return float(np.sqrt(-np.log(alpha / 2) / 2) * np.sqrt((n + m) / (n * m)))


def _wrapped_diff(x: np.ndarray) -> np.ndarray:
    """Per-step differences of a coordinate on the unit circle, in [-0.5, 0.5)."""
    return (np.diff(x, axis=-1) + 0.5) % 1.0 - 0.5


def _actors(label: int, n: int, seed: int) -> list[toy.Track]:
    rng = np.random.default_rng(seed)
    return [toy.sample_actor(label, rng, T, np.full(3, 80.0)) for _ in range(n)]


def _block_means(frames: np.ndarray, blocks: int = 4) -> np.ndarray:
    """Grey level averaged over a blocks x blocks grid: (..., H, W, 3) -> (..., blocks * blocks)."""
    grey = frames.astype(np.float64).mean(-1)  # (..., H, W)
    h, w = grey.shape[-2:]
    grey = grey.reshape(*grey.shape[:-2], blocks, h // blocks, blocks, w // blocks).mean((-3, -1))
    return grey.reshape(*grey.shape[:-2], blocks * blocks)


def _max_abs_z(a: np.ndarray, b: np.ndarray) -> float:
    """Largest per-feature two-sample z score between samples a (n, k) and b (m, k)."""
    se = np.sqrt(a.var(0, ddof=1) / len(a) + b.var(0, ddof=1) / len(b)) + 1e-9
    return float(np.abs((a.mean(0) - b.mean(0)) / se).max())


# ------------------------------------------------------------------------------------ clips
def test_generate_clip_shape_and_determinism():
    a = toy.generate_clip(3, np.random.default_rng(7), num_frames=T, size=S)
    b = toy.generate_clip(3, np.random.default_rng(7), num_frames=T, size=S)
    c = toy.generate_clip(3, np.random.default_rng(8), num_frames=T, size=S)
    assert a.shape == (T, S, S, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert np.abs(a.astype(int) - c).mean() > 5
    assert not np.array_equal(a[0], a[-1])  # something moves
    with pytest.raises(ValueError, match="class_index"):
        toy.generate_clip(len(toy.CLASS_NAMES), np.random.default_rng(0))


def test_classes_and_pairs():
    assert len(toy.CLASS_NAMES) >= 8 and len(set(toy.CLASS_NAMES)) == len(toy.CLASS_NAMES)
    assert len(toy.MOTION_ONLY_CLASSES) >= len(toy.CLASS_NAMES) // 2
    flat = [i for pair in toy.MOTION_PAIRS for i in pair]
    assert sorted(flat) == sorted(set(flat)) and all(0 <= i < len(toy.CLASS_NAMES) for i in flat)


@pytest.mark.parametrize("pair", toy.MOTION_PAIRS)
def test_pair_differs_only_in_motion(pair):
    """Same generator state: identical first frame for both classes, different later frames."""
    for seed in range(5):
        a = toy.generate_clip(pair[0], np.random.default_rng(seed), num_frames=T, size=S)
        b = toy.generate_clip(pair[1], np.random.default_rng(seed), num_frames=T, size=S)
        np.testing.assert_array_equal(a[0], b[0])
        assert np.abs(a[T // 2].astype(int) - b[T // 2]).max() > 50  # (the two may meet again, wrapped, later)


@pytest.mark.parametrize("pair", toy.MOTION_PAIRS)
def test_actor_state_has_same_distribution_at_every_frame(pair):
    """KS test on each actor state variable at several frames, with a control that it has power."""
    n = 1500
    tracks = [_actors(label, n, seed=100 + label) for label in pair]
    crit = _ks_critical(n, n)
    for t in (0, T // 2, T - 1):
        for name in ("cx", "cy", "size", "angle"):
            values = [np.array([getattr(tr, name)[t] for tr in group]) for group in tracks]
            d = _ks_statistic(*values)
            assert d < crit, f"{name} at frame {t} differs between classes {pair}: KS {d:.3f} >= {crit:.3f}"
    # Control: the same test catches a naive generator whose moving quantity starts at the same
    # place for both directions (no wrap): the last frames then differ.
    def naive_last(group, name):
        if name in ("cx", "cy"):
            x = np.stack([getattr(tr, name) for tr in group])  # (n, T)
            return x[:, 0] + _wrapped_diff(x).sum(1)
        if name == "angle":
            x = np.stack([tr.angle for tr in group]) / (2 * np.pi)
            return x[:, 0] + _wrapped_diff(x).sum(1)
        x = np.log(np.stack([tr.size for tr in group]))  # (n, T)
        span = toy.LOG_SCALE_RANGE[1] - toy.LOG_SCALE_RANGE[0]
        return x[:, 0] + span * _wrapped_diff(x / span).sum(1)

    moving = {0: "cx", 2: "cy", 4: "angle", 6: "size"}[pair[0]]
    d = _ks_statistic(naive_last(tracks[0], moving), naive_last(tracks[1], moving))
    assert d > 5 * crit


def _clean_clips(label: int, n: int, seed: int):
    rng = np.random.default_rng(seed)
    specs = [toy.sample_scene(label, rng, T, 64) for _ in range(n)]
    return specs, [toy.render_clip(s, clutter=False) for s in specs]


def _actor_masks(spec: toy.Scene, frames: np.ndarray) -> np.ndarray:
    """Actor pixels (T, H, W) of a clean rendering: everything that is not the flat background."""
    bg = np.rint(spec.background.reshape(-1, 3).mean(0)).astype(np.uint8)  # (3,)
    return (frames != bg).any(-1)


def _motion_statistic(kind: str, spec: toy.Scene, frames: np.ndarray) -> float:
    """A signed motion measurement from rendered pixels (positive: right/down/clockwise/growing)."""
    masks = _actor_masks(spec, frames)  # (T, H, W)
    _, h, w = masks.shape
    ys, xs = (np.arange(h) + 0.5) / h, (np.arange(w) + 0.5) / w
    if kind in ("translate_x", "translate_y"):  # circular centroid on the torus
        coord, axis = (xs, 1) if kind == "translate_x" else (ys, 0)
        weights = masks.sum(axis=1 + (1 - axis))  # (T, W) or (T, H)
        phasor = (weights * np.exp(2j * np.pi * coord)).sum(-1)  # (T,)
        centre = (np.angle(phasor) / (2 * np.pi)) % 1.0
        return float(np.median(_wrapped_diff(centre)))
    if kind == "rotate":  # the centroid turns about the pivot: sign of the path's curvature
        mx = (masks * xs[None, None, :]).sum((1, 2)) / masks.sum((1, 2))  # (T,)
        my = (masks * ys[:, None]).sum((1, 2)) / masks.sum((1, 2))  # (T,)
        dx, dy = np.diff(mx), np.diff(my)  # (T-1,) steps of the path
        cross = dx[:-1] * dy[1:] - dy[:-1] * dx[1:]  # (T-2,) > 0: turning clockwise (y down)
        return float(np.median(cross))
    area = masks.sum((1, 2)).astype(float)  # (T,)
    return float(np.median(np.diff(np.log(area))))


@pytest.mark.parametrize("pair", toy.MOTION_PAIRS)
def test_rendered_motion_direction_separates_pair(pair):
    """From pixels alone, the sign of the motion tells the two classes apart on every clip."""
    kind = {0: "translate_x", 2: "translate_y", 4: "rotate", 6: "scale"}[pair[0]]
    signs = []
    for label in pair:
        specs, clips = _clean_clips(label, 12, seed=label)
        signs.append(np.sign([_motion_statistic(kind, s, c) for s, c in zip(specs, clips)]))
    # Negative-direction class first in left/right and up/down; clockwise, approaching first otherwise.
    expected = (-1, 1) if kind.startswith("translate") else (1, -1)
    assert (signs[0] == expected[0]).all() and (signs[1] == expected[1]).all(), signs


def _at_frames(spec: toy.Scene, idx: list[int]) -> toy.Scene:
    """The same clip restricted to the frames ``idx`` (renders only those)."""
    def cut(tr: toy.Track) -> toy.Track:
        return dataclasses.replace(tr, cx=tr.cx[idx], cy=tr.cy[idx], size=tr.size[idx], angle=tr.angle[idx])

    return dataclasses.replace(
        spec, num_frames=len(idx), actor=cut(spec.actor), distractors=tuple(cut(d) for d in spec.distractors)
    )


def _single_frame_features(label: int, n: int, seed: int, naive: bool = False) -> np.ndarray:
    """Per clip, at frames 0, T/2 and T-1: per-block mean contrast |grey - frame median| (n, 48)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        spec = toy.sample_scene(label, rng, T, S)
        if naive:  # the same paths without wrapping: the actor leaves the frame
            a = spec.actor
            cx = a.cx[0] + np.concatenate([[0.0], np.cumsum(_wrapped_diff(a.cx))])
            spec = dataclasses.replace(spec, actor=dataclasses.replace(a, cx=cx, wrap=False))
        frames = toy.render_clip(_at_frames(spec, [0, T // 2, T - 1])).astype(np.float64)  # (3, S, S, 3)
        contrast = np.abs(frames - np.median(frames, axis=(1, 2), keepdims=True))  # (3, S, S, 3)
        out.append(_block_means(contrast).reshape(-1))  # (3 * 16,)
    return np.stack(out)


def test_frames_of_a_pair_look_alike_at_each_time():
    """Rendered frames (with clutter) at fixed times have the same mean image within every pair.

    Per-block two-sample z scores stay small within pairs; the same statistic flags a naive
    left/right generator without wrapping, and the difference between pairs.
    """
    n = 150
    feats = {label: _single_frame_features(label, n, seed=200 + label) for label in range(len(toy.CLASS_NAMES))}
    for a, b in toy.MOTION_PAIRS:
        z = _max_abs_z(feats[a], feats[b])
        assert z < 4.5, f"classes {a} and {b}: per-frame mean images differ (max |z| {z:.1f})"
    naive = [_single_frame_features(label, n, seed=300 + label, naive=True) for label in (0, 1)]
    assert _max_abs_z(*naive) > 5.0
    assert _max_abs_z(feats[0], feats[6]) > 5.0  # translation vs scale: different pairs may differ


# ------------------------------------------------------------------------------------ files on disk
@pytest.fixture(scope="module")
def toy_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    kw = dict(train_per_class=2, val_per_class=1, num_frames=T, size=S)
    a = toy.make_toy_dataset(root / "a", seed=1, workers=2, **kw)
    b = toy.make_toy_dataset(root / "b", seed=1, workers=0, **kw)
    c = toy.make_toy_dataset(root / "c", seed=2, workers=0, **kw)
    return a, b, c


def _read_list(path: Path) -> list[tuple[str, int]]:
    rows = []
    for line in path.read_text().splitlines():
        rel, label = line.split(" ")
        rows.append((rel, int(label)))
    return rows


def test_lists_well_formed(toy_dirs):
    ds = toy_dirs[0]
    assert ds.classes.read_text().splitlines() == list(toy.CLASS_NAMES)
    for split, per_class in (("train", 2), ("val", 1)):
        rows = _read_list(ds.lists[split])
        assert ds.num_videos[split] == len(rows) == per_class * len(toy.CLASS_NAMES)
        counts = np.bincount([label for _, label in rows], minlength=len(toy.CLASS_NAMES))
        assert (counts == per_class).all()
        for rel, _ in rows:
            assert not Path(rel).is_absolute() and rel.startswith("videos/") and rel.endswith(".mp4")
            assert (ds.root / rel).is_file()
    train, val = (set(r for r, _ in _read_list(ds.lists[s])) for s in ("train", "val"))
    assert not train & val
    meta = json.loads((ds.root / toy.META_FILE).read_text())
    assert meta["seed"] == 1 and meta["classes"] == list(toy.CLASS_NAMES)


def _decode_pyav(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def _decode_decord(path: Path) -> np.ndarray:
    from sfvideo.data.decoding import import_decord

    decord = import_decord()

    vr = decord.VideoReader(str(path))
    return vr.get_batch(list(range(len(vr)))).asnumpy()


def test_files_decode_with_both_backends_and_match_the_generator(toy_dirs):
    ds = toy_dirs[0]
    rel, label = _read_list(ds.lists["val"])[5]
    index = int(Path(rel).stem.rsplit("_", 1)[1])
    expected = toy.generate_clip(label, toy.clip_rng(1, "val", label, index), T, S)
    by_av, by_decord = _decode_pyav(ds.root / rel), _decode_decord(ds.root / rel)
    assert by_av.shape == by_decord.shape == (T, S, S, 3)
    assert np.abs(by_av.astype(int) - by_decord).mean() < 2.0
    err = np.abs(by_av.astype(int) - expected).mean()
    assert err < 12.0, f"decoded video differs from the generated frames (mean abs error {err:.1f})"


def test_dataset_deterministic_by_seed_and_worker_count(toy_dirs):
    a, b, c = toy_dirs
    for name in ("train.txt", "val.txt", "classes.txt", toy.META_FILE):
        assert (a.root / name).read_bytes() == (b.root / name).read_bytes()
    # Every video byte for byte, whether encoded concurrently (2 workers) or one at a time: the
    # dataset, and what is trained on it, is the same on every run (sfvideo.data.encode).
    rels = [rel for split in ("train", "val") for rel, _ in _read_list(a.lists[split])]
    assert [(a.root / r).read_bytes() for r in rels] == [(b.root / r).read_bytes() for r in rels]
    rel = rels[3]
    assert np.abs(_decode_pyav(a.root / rel).astype(int) - _decode_pyav(c.root / rel)).mean() > 5


def test_existing_dataset_is_kept_unless_forced(tmp_path):
    kw = dict(train_per_class=1, val_per_class=0, num_frames=4, size=16, workers=0)
    assert toy.make_toy_dataset(tmp_path, **kw).generated
    assert not toy.make_toy_dataset(tmp_path, **kw).generated
    assert toy.make_toy_dataset(tmp_path, seed=5, **kw).generated  # parameters changed
    victim = tmp_path / _read_list(tmp_path / "train.txt")[0][0]
    victim.unlink()
    assert toy.make_toy_dataset(tmp_path, seed=5, **kw).generated and victim.is_file()
    with pytest.raises(ValueError, match="even"):
        toy.make_toy_dataset(tmp_path, size=33)


def _load_tool(name: str):
    import importlib

    return importlib.import_module(f"sfvideo.cli.{name}")


def test_make_toy_dataset_tool(tmp_path, capsys):
    tool = _load_tool("make_toy")
    argv = ["--out", str(tmp_path), "--train-per-class", "1", "--val-per-class", "1", "--frames", "4", "--size", "16"]
    assert tool.main(argv + ["--workers", "0"]) == 0
    assert len((tmp_path / "train.txt").read_text().splitlines()) == len(toy.CLASS_NAMES)
    assert tool.main(["--out", str(tmp_path), "--size", "15"]) == 2
    assert "even" in capsys.readouterr().err
