"""Each named placement gives its peer's frame indices exactly.

The references below restate each peer's published formula (read from MMAction2's
``mmaction/datasets/transforms/loading.py`` ``SampleFrames`` / ``UniformSample`` and PySlowFast's
``slowfast/datasets/decoder.py`` ``get_start_end_idx`` + ``temporal_sampling`` and
``slowfast/datasets/ssv2.py`` ``get_seq_frames``) with numpy/torch, in the peers' own operation
order, independently of ``sfvideo.data.sampling``; the tests compare the two over grids of
(video length, frames, rate, views), clips longer than the video included.
"""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
import torch

from sfvideo.data.sampling import (
    clip_spec,
    sample_test_indices,
    sample_train_indices,
    segment_test_indices,
    segment_train_indices,
    train_clip,
)

LENGTHS = [1, 2, 5, 7, 16, 31, 32, 33, 50, 63, 64, 65, 100, 157, 300]
FRAMES = [1, 2, 4, 8, 16, 32]
RATES = [1, 2, 3, 4, 8]
VIEWS = [1, 2, 3, 4, 5, 10]


def grid(seed: int, n: int = 400) -> list[tuple[int, int, int, int]]:
    """``n`` (length, frames, rate, views) combinations drawn from the full grid (all when n is None)."""
    full = list(itertools.product(LENGTHS, FRAMES, RATES, VIEWS))
    return random.Random(seed).sample(full, n)


# ------------------------------------------------------------------ MMAction2 reference
def mmaction_test_inds(total: int, clip_len: int, interval: int, num_clips: int, oob: str) -> np.ndarray:
    """SampleFrames(test_mode=True), no target_fps, no twice_sample, start_index 0: (N, T)."""
    if clip_len == 1:  # the 2-D branch: the middle of each of N parts of the video
        avg = total / float(num_clips)
        offsets = np.arange(num_clips) * avg + avg / 2.0
    else:
        clip_length = (clip_len - 1) * interval + 1
        max_offset = max(total - clip_length, 0)
        if num_clips > 1:
            offsets = np.round(np.arange(num_clips) * (max_offset / float(num_clips - 1)))
        else:
            offsets = np.array([max_offset // 2])
    inds = offsets[:, None] + np.arange(clip_len)[None, :] * interval  # (N, T)
    return mmaction_out_of_bound(inds, total, oob)


def mmaction_out_of_bound(inds: np.ndarray, total: int, oob: str) -> np.ndarray:
    """(N, T) indices after MMAction2's out_of_bound_opt."""
    if oob == "loop":
        inds = np.mod(inds, total)
    else:  # repeat_last: out-of-range entries take the largest in-range one of their clip (0 if none)
        inside = inds < total
        last = np.max(np.where(inside, inds, 0), axis=1)
        inds = np.where(inside, inds, last[:, None])
    return inds.astype(np.int64)


def mmaction_train_starts(total: int, clip_len: int, interval: int) -> set[int]:
    """Every start SampleFrames(test_mode=False, num_clips=1) can draw."""
    avg_interval = total - clip_len * interval + 1
    return set(range(avg_interval)) if avg_interval > 0 else {0}


def mmaction_uniform_sample(total: int, clip_len: int, num_clips: int) -> np.ndarray:
    """UniformSample(test_mode=True): (N, T)."""
    seg = float(total - 1) / clip_len
    duration = seg / (num_clips + 1)
    return np.array([[int(np.round(seg * i)) + int(duration * (k + 1)) for i in range(clip_len)]
                     for k in range(num_clips)])


# ------------------------------------------------------------------ PySlowFast reference
def slowfast_clip(total: int, clip_size: float, clip_idx: int, num_clips: int, num_samples: int,
                  draw: random.Random | None = None) -> list[int]:
    """get_start_end_idx (use_offset False) + temporal_sampling on a fully decoded video."""
    delta = max(total - clip_size, 0)
    start = draw.uniform(0, delta) if clip_idx == -1 else delta * clip_idx / num_clips
    end = start + clip_size - 1
    index = torch.linspace(start, end, num_samples)
    return torch.clamp(index, 0, total - 1).long().tolist()


def slowfast_clip_size(rate: int, frames: int, fps: float, target_fps: float) -> float:
    return np.maximum(1.0, rate * frames / target_fps * fps)


def slowfast_ssv2_seq(total: int, frames: int, train: bool, draw: random.Random | None = None) -> list[int]:
    seg = float(total - 1) / frames
    seq = []
    for i in range(frames):
        lo, hi = int(np.round(seg * i)), int(np.round(seg * (i + 1)))
        seq.append(draw.randint(lo, hi) if train else (lo + hi) // 2)
    return seq


# ------------------------------------------------------------------ tests
def ours_test(length, frames, rate, views, placement, pad="repeat_last", fps=30.0, sampling="dense"):
    return [list(c) for c in sample_test_indices(length, fps, num_frames=frames, sampling_rate=rate, target_fps=30.0,
                                                 num_clips=views, sampling=sampling, placement=placement,
                                                 pad_mode=pad)]


@pytest.mark.parametrize("pad", ["repeat_last", "loop"])
def test_uniform_equals_mmaction_sampleframes(pad):
    cases = grid(0)
    longer = sum(1 for L, T, r, _ in cases if (T - 1) * r + 1 > L)
    assert len(cases) >= 200 and longer >= 50  # clips longer than the video are well represented
    for L, T, r, n in cases:
        expected = mmaction_test_inds(L, T, r, n, pad).tolist()
        assert ours_test(L, T, r, n, "uniform", pad) == expected, (L, T, r, n, pad)


@pytest.mark.parametrize("fps", [30.0, 25.0, 60.0, 29.97])
def test_slowfast_equals_pyslowfast(fps):
    cases = grid(1)
    assert sum(1 for L, T, r, _ in cases if T * r * fps / 30 > L) >= 50
    for L, T, r, n in cases:
        size = slowfast_clip_size(r, T, fps, 30.0)
        expected = [slowfast_clip(L, size, i, n, T) for i in range(n)]
        assert ours_test(L, T, r, n, "slowfast", fps=fps) == expected, (L, T, r, n, fps)


def test_slowfast_single_view_starts_at_zero_and_stride_is_linspace():
    # 300 frames, 8 x 8 = 64: a single view starts at 0 (not centred); frames spread over 63.
    (view,) = ours_test(300, 8, 8, 1, "slowfast")
    assert view == [0, 9, 18, 27, 36, 45, 54, 63]


def test_uniform_span_is_t_minus_one_rate_plus_one():
    # MMAction2: 4 frames at rate 2 span 7 frames; 8 frames hold two placements 0 and 1 ...
    assert ours_test(8, 4, 2, 2, "uniform") == [[0, 2, 4, 6], [1, 3, 5, 7]]
    # ... and repeat_last repeats the last sampled in-range frame (4), not the video's last (5).
    assert ours_test(6, 4, 2, 1, "uniform") == [[0, 2, 4, 4]]


def test_slowfast_training_draws_equal_pyslowfast():
    for k, (L, T, r, _) in enumerate(grid(2, 250)):
        ours_rng, ref_rng = random.Random(k), random.Random(k)
        size = slowfast_clip_size(r, T, 30.0, 30.0)
        for _ in range(3):
            ours = sample_train_indices(L, 30.0, ours_rng, num_frames=T, sampling_rate=r, target_fps=30.0,
                                        placement="slowfast")
            assert list(ours) == slowfast_clip(L, size, -1, 1, T, draw=ref_rng), (L, T, r)


@pytest.mark.parametrize("pad", ["repeat_last", "loop"])
def test_uniform_training_clips_are_mmaction_train_clips(pad):
    rng = random.Random(3)
    for L, T, r, _ in grid(3, 250):
        spec = clip_spec(T, r, 30.0, 30.0)
        support = mmaction_train_starts(L, T, r)
        clips = [train_clip(spec, L, rng, pad, "uniform") for _ in range(60)]
        seen = {int(c.start) for c in clips}
        assert seen <= support, (L, T, r)
        if len(support) <= 5:  # every start the peer can draw is drawn
            assert seen == support, (L, T, r)
        for c in clips[:5]:  # and the frames of a start are the peer's frames for it
            expected = mmaction_out_of_bound(int(c.start) + np.arange(T)[None, :] * r, L, pad)[0].tolist()
            assert list(c.indices) == expected, (L, T, r, c.start)


@pytest.mark.parametrize("views", [1, 2, 3, 5])
def test_segment_uniform_equals_mmaction_uniformsample(views):
    for L, T in itertools.product(LENGTHS + [8, 9, 15, 17, 240], [1, 2, 3, 8, 16]):
        expected = mmaction_uniform_sample(L, T, views).tolist()
        assert ours_test(L, T, 4, views, "uniform", sampling="segment") == expected, (L, T, views)


def test_segment_slowfast_equals_pyslowfast_ssv2():
    for L, T in itertools.product(LENGTHS + [8, 9, 15, 17, 240], [1, 2, 3, 8, 16]):
        expected = slowfast_ssv2_seq(L, T, train=False)
        assert segment_test_indices(L, T, 2, "slowfast") == (tuple(expected),) * 2
        ours_rng, ref_rng = random.Random(L * 100 + T), random.Random(L * 100 + T)
        for _ in range(3):  # training: PySlowFast's random.randint per segment, draw for draw
            assert list(segment_train_indices(L, T, ours_rng)) == slowfast_ssv2_seq(L, T, True, ref_rng)


def test_segment_covers_whole_video_in_order():
    rng = random.Random(0)
    for L in (16, 50, 300):
        idx = segment_train_indices(L, 16, rng)
        assert list(idx) == sorted(idx) and 0 <= idx[0] <= L // 16 and idx[-1] >= L - 1 - L // 16 - 1
    # shorter than T: frames repeat (segment bounds round half to even: 0.5 -> 0, 1.5 -> 2)
    assert segment_test_indices(3, 8)[0] == (0, 0, 0, 1, 1, 1, 2, 2)


def test_slowfast_keeps_pyslowfast_float32_truncation():
    # 22 frames, 4 x 3, third of 3 views: linspace(20/3, 20/3 + 11, 4) is 6.67, 10.33, 14, 17.67 in
    # exact arithmetic, but 13.99999 in PySlowFast's float32, which truncates to 13.
    assert ours_test(22, 4, 3, 3, "slowfast")[2] == [6, 10, 13, 17]
    assert slowfast_clip(22, 12.0, 2, 3, 4) == [6, 10, 13, 17]
