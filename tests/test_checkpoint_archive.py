"""Checkpoint files are zip archives: one whose directory says its records inflate to far more
than the file holds (a small deflated file claiming a huge tensor) is refused from the directory
alone, before torch.load inflates anything."""

from __future__ import annotations

import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from sfvideo.checkpoint import CheckpointError, safe_load
from sfvideo.checkpoint import io as ckpt_io


class _Storage:
    """Stands for a float32 storage of ``numel`` values in the pickle (a persistent id)."""

    def __init__(self, numel: int):
        self.numel = numel


class _Tensor:
    """Pickles as torch.save pickles a tensor over a whole storage."""

    def __init__(self, numel: int):
        self.storage = _Storage(numel)

    def __reduce__(self):
        n = self.storage.numel
        return torch._utils._rebuild_tensor_v2, (self.storage, 0, (n,), (1,), False, OrderedDict())


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            return "storage", torch.FloatStorage, "0", "cpu", obj.numel
        return None


def deflated_checkpoint(path: Path, numel: int) -> Path:
    """A checkpoint ``{"model": {"w": zeros(numel)}}`` whose tensor record is deflated (torch.save
    stores records uncompressed): a file of a few KB that inflates to ``4 * numel`` bytes."""
    import io

    buf = io.BytesIO()
    _Pickler(buf, protocol=2).dump({"model": {"w": _Tensor(numel)}})
    chunk = bytes(2 ** 20)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("archive/data.pkl", buf.getvalue())
        zf.writestr("archive/byteorder", "little")
        with zf.open("archive/data/0", "w", force_zip64=True) as f:  # written a chunk at a time
            left = 4 * numel
            while left:
                f.write(chunk[: min(left, len(chunk))])
                left -= min(left, len(chunk))
        zf.writestr("archive/version", "3\n")
    return path


def _deflate_records(path: Path) -> None:
    """Re-zip every record with DEFLATE (what the crafted file does)."""
    with zipfile.ZipFile(path) as zf:
        items = [(i.filename, zf.read(i)) for i in zf.infolist()]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in items:
            zf.writestr(name, data)


def test_the_crafted_file_is_a_checkpoint_torch_reads(tmp_path):
    """The helper makes what torch.load accepts (at a harmless size), so the refusal below is about
    the sizes, not a broken file."""
    path = tmp_path / "small.pth"
    torch.save({"model": {"w": torch.zeros(1000)}}, path)
    _deflate_records(path)
    assert torch.load(path, weights_only=True)["model"]["w"].shape == (1000,)
    crafted = deflated_checkpoint(tmp_path / "crafted.pth", 1000)
    assert torch.load(crafted, weights_only=True)["model"]["w"].shape == (1000,)
    assert safe_load(crafted)["model"]["w"].shape == (1000,)  # a small inflation is fine


def test_a_small_file_claiming_a_huge_tensor_is_refused_before_torch_load(tmp_path, monkeypatch):
    path = deflated_checkpoint(tmp_path / "bomb.pth", 2 ** 27)  # 512 MB of zeros
    assert path.stat().st_size < 2 ** 21

    def no_load(*args, **kwargs):
        raise AssertionError("torch.load was called: the archive was inflated")

    monkeypatch.setattr(ckpt_io.torch, "load", no_load)
    with pytest.raises(CheckpointError) as err:
        safe_load(path)
    message = str(err.value)
    assert "bomb.pth" in message and "512.0 MB" in message and "\n" not in message


def test_an_ordinary_checkpoint_passes_the_archive_check(tmp_path):
    path = tmp_path / "ok.pth"
    torch.save({"model": {"w": torch.randn(2 ** 16)}, "epoch": 3}, path)
    assert safe_load(path)["epoch"] == 3
