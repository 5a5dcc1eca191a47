"""Frame-index sampling: table-driven checks against the formulas and pytorchvideo."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest
from pytorchvideo.data.clip_sampling import ConstantClipsPerVideoSampler

from sfvideo.data.sampling import (
    CropBox,
    clip_indices,
    clip_spec,
    random_resized_box,
    scale_jitter_box,
    spatial_crop_boxes,
    train_clip,
    view_clip_starts,
    view_clips,
)


@pytest.mark.parametrize(
    "num_frames, rate, fps, target, step",
    [(32, 2, 30, 30, 2.0), (32, 2, 60, 30, 4.0), (8, 8, 25, 30, 8 * 25 / 30), (16, 4, 0, 30, 4.0)],
)
def test_clip_spec_step_and_span(num_frames, rate, fps, target, step):
    spec = clip_spec(num_frames, rate, fps, target)
    assert spec.step == pytest.approx(step)
    assert spec.span == pytest.approx(num_frames * step)


def test_sixty_fps_steps_four_source_frames():
    spec = clip_spec(8, 2, 60.0, 30)
    assert clip_indices(10, spec, 1000) == tuple(range(10, 42, 4))


@pytest.mark.parametrize(
    "start, video_frames, pad_mode, expected",
    [
        (0, 100, "repeat_last", (0, 2, 4, 6)),
        (3.5, 100, "repeat_last", (3, 5, 7, 9)),
        (0, 5, "repeat_last", (0, 2, 4, 4)),
        (0, 5, "loop", (0, 2, 4, 1)),
        (0, 3, "loop", (0, 2, 1, 0)),
    ],
)
def test_clip_indices_padding(start, video_frames, pad_mode, expected):
    assert clip_indices(start, clip_spec(4, 2, 30, 30), video_frames, pad_mode) == expected


def test_train_clip_stays_inside_video():
    spec = clip_spec(8, 2, 30, 30)
    rng = random.Random(0)
    starts = set()
    for _ in range(400):
        clip = train_clip(spec, 50, rng)
        assert 0 <= clip.start <= 50 - spec.span and clip.start == int(clip.start)
        assert max(clip.indices) < 50 and len(clip.indices) == 8
        starts.add(int(clip.start))
    assert starts == set(range(0, 35))  # MMAction2's support: every integer start up to L - T * rate
    short = train_clip(spec, 10, rng)
    # a clip longer than the video starts at 0 and repeats the last frame it samples (8, not 9)
    assert short.start == 0 and short.indices == (0, 2, 4, 6, 8, 8, 8, 8)


@pytest.mark.parametrize(
    "video_frames, span, n, expected",
    [
        (300, 64, 1, (118.0,)),
        (300, 64, 2, (0.0, 236.0)),
        (300, 64, 3, (0.0, 118.0, 236.0)),
        (100, 64, 4, (0.0, 12.0, 24.0, 36.0)),
        (50, 64, 3, (0.0, 0.0, 0.0)),
        (301, 64, 4, (0.0, 79.0, 158.0, 237.0)),
    ],
)
def test_uniform_placement_table(video_frames, span, n, expected):
    assert view_clip_starts(video_frames, span, n, "uniform") == expected


@pytest.mark.parametrize("video_frames", [64, 65, 100, 300, 1234])
@pytest.mark.parametrize("n", [2, 3, 4, 10])
def test_uniform_first_clip_at_start_last_at_end(video_frames, n):
    spec = clip_spec(16, 4, 30, 30)
    clips = view_clips(spec, video_frames, n, "uniform")
    assert clips[0].start == 0 and clips[0].indices[0] == 0
    # MMAction2: a test clip covers (T - 1) * rate + 1 = 61 frames, so the last one ends on the
    # video's last frame exactly
    assert clips[-1].start == max(video_frames - 61, 0)
    assert clips[-1].indices[-1] == video_frames - 1
    assert max(clips[-1].indices) <= video_frames - 1


@pytest.mark.parametrize("duration", [10.0, 7.3, 3.0, 2.0, 1.5, Fraction(301, 30)])
@pytest.mark.parametrize("num_clips", [1, 2, 3, 5, 10])
@pytest.mark.parametrize("fps", [30.0, 25.0])
def test_slowfast_placement_matches_pytorchvideo(duration, num_clips, fps):
    num_frames, rate, target = 32, 2, 30
    spec = clip_spec(num_frames, rate, fps, target)
    clip_seconds = Fraction(num_frames * rate, target)  # what pytorchvideo users pass
    sampler = ConstantClipsPerVideoSampler(clip_seconds, num_clips)
    expected = []
    for _ in range(num_clips):
        info = sampler(0.0, Fraction(duration), {})
        expected.append(float(info.clip_start_sec))
        if info.is_last_clip:
            break
    video_frames = float(duration) * fps
    ours = [s / fps for s in view_clip_starts(video_frames, spec.span, num_clips, "slowfast")]
    # pytorchvideo stops early once a clip would start past the end (only when delta is 0).
    assert ours[: len(expected)] == pytest.approx(expected, abs=1e-9)
    assert all(s == 0 for s in ours[len(expected):])


def test_placements_differ_where_they_should():
    slow = view_clip_starts(300, 64, 3, "slowfast")
    uni = view_clip_starts(300, 64, 3, "uniform")
    assert slow[0] == uni[0] == 0
    assert slow[-1] < uni[-1] == 236


@pytest.mark.parametrize(
    "h, w, size, n, expected",
    [
        (224, 300, 224, 3, ((0, 0, 224, 224), (0, 38, 224, 224), (0, 76, 224, 224))),
        (300, 224, 224, 3, ((0, 0, 224, 224), (38, 0, 224, 224), (76, 0, 224, 224))),
        (224, 300, 224, 1, ((0, 38, 224, 224),)),
        (224, 224, 224, 3, ((0, 0, 224, 224),) * 3),
    ],
)
def test_spatial_crop_boxes(h, w, size, n, expected):
    assert spatial_crop_boxes(h, w, size, n) == tuple(CropBox(*e) for e in expected)


def test_scale_jitter_box_maps_crop_back_to_source():
    rng = random.Random(1)
    # short side 240 scaled to 320: a 224 crop is 168 source pixels
    box = scale_jitter_box(240, 426, 320, 224, rng)
    assert (box.height, box.width) == (168, 168)
    assert 0 <= box.top <= 240 - 168 and 0 <= box.left <= 426 - 168


def test_random_resized_box_in_bounds():
    rng = random.Random(2)
    for _ in range(100):
        b = random_resized_box(48, 64, (0.08, 1.0), (0.75, 4 / 3), rng)
        assert b.top >= 0 and b.left >= 0 and b.top + b.height <= 48 and b.left + b.width <= 64


@pytest.mark.parametrize("bad", [dict(placement="middle"), dict(num_clips=0)])
def test_bad_arguments_raise(bad):
    kwargs = dict(video_frames=100, span=10, num_clips=2, placement="uniform") | bad
    with pytest.raises(ValueError):
        view_clip_starts(**kwargs)
