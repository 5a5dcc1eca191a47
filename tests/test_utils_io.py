"""Atomic writes by path (for writers that open files by name) and the temporaries' names."""

from __future__ import annotations

import numpy as np
import pytest

from sfvideo.utils.io import atomic_path, atomic_write, is_temporary


def test_atomic_path_renames_a_complete_file_keeping_the_suffix(tmp_path):
    """(The permissions under several umasks: test_reliability.py.)"""
    target = tmp_path / "sub" / "clip.mp4"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".clip.mp4.") and is_temporary(tmp)
        assert tmp.suffixes[-2:] == [".tmp", ".mp4"] and not target.exists()
        tmp.write_bytes(b"frames")
    assert target.read_bytes() == b"frames"
    assert sorted(p.name for p in target.parent.iterdir()) == ["clip.mp4"]


def test_atomic_path_keeps_the_old_file_when_the_writer_fails(tmp_path):
    """Any exception, KeyboardInterrupt included: the old file stays, the temporary goes."""
    target = tmp_path / "clip.mp4"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise KeyboardInterrupt
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_a_video_encoder_writes_through_it(tmp_path):
    from sfvideo.data.encode import write_video

    def frames():
        yield np.zeros((16, 16, 3), np.uint8)
        raise RuntimeError("the source broke off")  # mid-file: the encoder has written part of it

    with pytest.raises(RuntimeError, match="broke off"):
        write_video(tmp_path / "bad.mp4", frames())
    assert list(tmp_path.iterdir()) == []
    write_video(tmp_path / "good.mkv", np.zeros((3, 16, 16, 3), np.uint8))  # the format from the suffix
    assert (tmp_path / "good.mkv").read_bytes()[:4] == b"\x1a\x45\xdf\xa3"  # Matroska's magic


def test_temporaries_are_told_from_other_files(tmp_path):
    with atomic_write(tmp_path / "results.json", "w") as f:
        names = [p.name for p in tmp_path.iterdir()]
        f.write("{}")
    assert len(names) == 1 and is_temporary(names[0])
    assert not any(map(is_temporary, ["results.json", "clip.tmp", ".hidden.mp4", "a.tmp.mp4"]))
    assert is_temporary(".clip.mp4.k2j3.tmp.mp4") and is_temporary(".last.pth.x1y2.tmp")
