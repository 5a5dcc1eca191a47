"""The run directory defends itself: one writer (lock), no incompatible resume, a config history,
repairs after SIGKILL, clean failures (bare state dict, full disk, non-finite loss before any
checkpoint). SIGTERM (exit status 128 + signal, lock released): test_engine_train.py."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from engine_helpers import tiny_opts
from sfvideo.checkpoint import CheckpointError, safe_load
from sfvideo.cli import train as train_cli
from sfvideo.config import load_config
from sfvideo.engine.rundir import LOCK, RunDirError
from sfvideo.engine.train import NonFiniteLossError, build_training, end_epoch, run_epoch, train
from sfvideo.models import build_model

FAST = {"TRAIN.EVAL_PERIOD": 0, "TRAIN.EMA_DECAY": 0.0, "AUG.RAND_AUGMENT": "", "AUG.RE_PROB": 0.0}


@pytest.fixture(scope="module")
def data_dir(few_videos):
    return few_videos  # generated once per session (conftest)


def opts(data_dir: Path, out: Path, **extra) -> list[str]:
    return tiny_opts(data_dir, out, **{**FAST, **extra})


@pytest.fixture(scope="module")
def one_epoch(data_dir, tmp_path_factory):
    """A 2-epoch run stopped (as by a crash) after its first epoch's checkpoint and metrics line."""
    out = tmp_path_factory.mktemp("one_epoch")
    run = build_training(load_config("k400_tiny.yaml", opts(data_dir, out)))
    assert run_epoch(run, 0)
    end_epoch(run, 0, time.time())
    release(run)
    return out


@pytest.fixture
def run_dir(one_epoch, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(one_epoch, out)  # copy2: modification times kept
    return out


def release(run) -> None:
    """End a run built without run_training (the lock is released as when a run ends)."""
    if getattr(run, "lock", None) is not None:
        run.lock.release()


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def main_exit(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        train_cli.main(argv)
    return exc.value.code


# ------------------------------------------------------------------ 3. incompatible config: refused, nothing written
def test_incompatible_config_is_refused_before_anything_is_written(data_dir, run_dir, capsys):
    before = snapshot(run_dir)
    code = main_exit(["--cfg", "k400_tiny.yaml", *opts(data_dir, run_dir, **{"MODEL.ARCH": "video_tiny"})])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert f"run directory {run_dir}" in err and str(run_dir / "checkpoints" / "last.pth") in err
    assert "MODEL.ARCH 'video_test' -> 'video_tiny'" in err, err
    assert snapshot(run_dir) == before  # config.yaml, train.log, metrics, checkpoints: all as they were


def test_resume_with_a_changed_config_keeps_the_config_history(data_dir, run_dir):
    old = (run_dir / "config.yaml").read_text()
    result = train(load_config("k400_tiny.yaml", opts(data_dir, run_dir, **{"SOLVER.MAX_EPOCH": 3})))
    assert result.status == "finished" and result.epoch == 3
    history = sorted(run_dir.glob("config.*.yaml"))
    assert len(history) == 1 and history[0].read_text() == old
    assert "MAX_EPOCH: 3" in (run_dir / "config.yaml").read_text()
    assert "SOLVER.MAX_EPOCH 2 -> 3" in (run_dir / "train.log").read_text()
    train(load_config("k400_tiny.yaml", opts(data_dir, run_dir, **{"SOLVER.MAX_EPOCH": 3})))
    assert len(list(run_dir.glob("config.*.yaml"))) == 1  # an unchanged config adds no copy


# ------------------------------------------------------------------ 5. one writer per run directory
def test_a_second_writer_is_refused_and_a_stale_lock_taken_over(data_dir, run_dir):
    cfg = load_config("k400_tiny.yaml", opts(data_dir, run_dir))
    # a live process holding the lock: it waits on its stdin until killed
    holder = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        (run_dir / LOCK).write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname()}))
        before = snapshot(run_dir)
        with pytest.raises(RunDirError, match=rf"in use by process {holder.pid} on .*{LOCK}"):
            build_training(cfg)
        assert snapshot(run_dir) == before
    finally:
        holder.kill()
        holder.wait()
    run = build_training(cfg)  # the holder is gone: its lock is stale
    assert json.loads((run_dir / LOCK).read_text())["pid"] != holder.pid
    release(run)
    assert not (run_dir / LOCK).exists()
    (run_dir / LOCK).write_text(json.dumps({"pid": 1, "host": "elsewhere.example"}))
    with pytest.raises(RunDirError, match="process 1 on elsewhere.example.*another host"):
        build_training(cfg)


def test_the_lock_is_released_when_a_run_ends(data_dir, run_dir):
    train(load_config("k400_tiny.yaml", opts(data_dir, run_dir)))
    assert not (run_dir / LOCK).exists()


# ------------------------------------------------------------------ 4. repairs after SIGKILL
def test_resume_restores_what_a_kill_lost_and_removes_temporaries(data_dir, run_dir):
    ckpts = run_dir / "checkpoints"
    line = (run_dir / "metrics.jsonl").read_text()
    assert json.loads(line)["epoch"] == 1
    # killed after the last.pth rename: no metrics line, no numbered copy, temporaries left behind
    (run_dir / "metrics.jsonl").unlink()
    (ckpts / "epoch_0001.pth").unlink()
    temporaries = [ckpts / ".last.pth.k2j3h4.tmp", ckpts / ".epoch_0001.pth.a8s7d6.tmp",
                   run_dir / ".metrics.jsonl.x1y2z3.tmp"]
    for p in temporaries:
        p.write_bytes(b"\0" * 1000)
    kept = [run_dir / ".user_notes.tmp", ckpts / ".last.pth.backup"]  # not temporaries of the run's files
    for p in kept:
        p.write_text("not ours")
    release(build_training(load_config("k400_tiny.yaml", opts(data_dir, run_dir))))
    assert (run_dir / "metrics.jsonl").read_text() == line
    assert (ckpts / "epoch_0001.pth").read_bytes() == (ckpts / "last.pth").read_bytes()
    assert not any(p.exists() for p in temporaries) and all(p.exists() for p in kept)
    assert "restored the metrics line of epoch 1" in (run_dir / "train.log").read_text()


class _Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs (not even ``except Exception`` handlers)."""


@pytest.mark.parametrize("kill_point", ["metrics line", "numbered copy"])
def test_a_kill_at_the_end_of_an_epoch_loses_nothing(data_dir, tmp_path, monkeypatch, kill_point):
    import sfvideo.engine.train as train_module
    import sfvideo.engine.train_state as train_state

    cfg = load_config("k400_tiny.yaml", opts(data_dir, tmp_path))
    run = build_training(cfg)
    assert run_epoch(run, 0)

    def kill_in_copy(src, dst):
        (dst.parent / f".{dst.name}.q1w2e3.tmp").write_bytes(src.read_bytes()[:100])  # half a copy
        raise _Killed

    def kill(*args, **kwargs):
        raise _Killed

    if kill_point == "metrics line":
        monkeypatch.setattr(train_module, "append_metrics", kill)
    else:
        monkeypatch.setattr(train_state, "copy_atomic", kill_in_copy)
    with pytest.raises(_Killed):
        end_epoch(run, 0, time.time())  # last.pth is written, then the process "dies" (its lock stays)
    monkeypatch.undo()
    result = train(cfg)
    assert result.status == "finished" and result.epoch == 2
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == [1, 2] and lines[0]["train_loss"] > 0
    ckpts = tmp_path / "checkpoints"
    assert safe_load(ckpts / "epoch_0001.pth")["epoch"] == 1
    assert not [p.name for p in ckpts.iterdir() if p.name.endswith(".tmp")]


def _half_written(path: Path, suffix: str = "") -> Path:
    """What SIGKILL leaves of an atomic write of ``path``: its temporary, never renamed."""
    tmp = path.parent / f".{path.name}.k1ll3d.tmp{suffix}"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_bytes(b"half a file")
    return tmp


def _temporaries(out: Path) -> list[str]:
    from sfvideo.utils.io import is_temporary

    return sorted(p.name for folder in (out, out / "checkpoints") if folder.is_dir()
                  for p in folder.iterdir() if is_temporary(p))


@pytest.mark.parametrize("kill_point", ["first last.pth", "first config.yaml", "lock file"])
def test_a_kill_before_any_checkpoint_leaves_no_temporary_after_the_restart(data_dir, tmp_path, monkeypatch,
                                                                           kill_point):
    import sfvideo.engine.train_state as train_state

    cfg = load_config("k400_tiny.yaml", opts(data_dir, tmp_path, **{"SOLVER.MAX_EPOCH": 1}))
    if kill_point == "first last.pth":
        run = build_training(cfg)
        assert run_epoch(run, 0)

        def kill(state, path):
            _half_written(Path(path))
            raise _Killed

        monkeypatch.setattr(train_state, "atomic_save", kill)
        with pytest.raises(_Killed):
            end_epoch(run, 0, time.time())  # the first last.pth never got its name
        monkeypatch.undo()
        release(run)
        assert not (tmp_path / "checkpoints" / "last.pth").exists()
    elif kill_point == "first config.yaml":
        _half_written(tmp_path / "config.yaml")
    else:
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        (tmp_path / f".{LOCK}.{int(dead.stdout)}.tmp").write_text("{}")
    assert _temporaries(tmp_path)
    result = train(cfg)
    assert result.status == "finished" and (tmp_path / "checkpoints" / "last.pth").is_file()
    assert _temporaries(tmp_path) == []


def test_a_restart_without_resume_removes_the_temporaries_too(data_dir, run_dir):
    left = [_half_written(run_dir / "checkpoints" / "last.pth"),
            _half_written(run_dir / "checkpoints" / "epoch_0001.pth", suffix=".pth")]
    release(build_training(load_config("k400_tiny.yaml", opts(data_dir, run_dir, **{"TRAIN.AUTO_RESUME": False}))))
    assert not any(p.exists() for p in left)


def test_a_lock_temporary_of_a_live_process_is_left_alone(data_dir, run_dir):
    theirs = run_dir / f".{LOCK}.1.tmp"  # a lock attempt of a process that is alive (pid 1 always is)
    theirs.write_text("{}")
    release(build_training(load_config("k400_tiny.yaml", opts(data_dir, run_dir))))
    assert theirs.exists()


def test_is_temporary_recognises_both_kinds_and_names_their_file():
    from sfvideo.utils.io import is_temporary, temporary_target

    for name, target in ((".last.pth.a1b2c3d4.tmp", "last.pth"), (".model.onnx.x_y9.tmp.onnx", "model.onnx"),
                         (".config.20240101T000000Z.yaml.qq.tmp", "config.20240101T000000Z.yaml")):
        assert is_temporary(name) and temporary_target(name) == target
    for name in ("last.pth", ".hidden", "notes.tmp", ".tmp"):
        assert not is_temporary(name) and temporary_target(name) is None


def test_a_copy_older_than_last_is_remade(data_dir, run_dir):
    ckpts = run_dir / "checkpoints"
    stale = ckpts / "epoch_0001.pth"
    stale.write_bytes(b"an older epoch_0001.pth")  # the kill came before the copy's rename
    mtime = (ckpts / "last.pth").stat().st_mtime_ns - 10**9
    os.utime(stale, ns=(mtime, mtime))
    release(build_training(load_config("k400_tiny.yaml", opts(data_dir, run_dir))))
    assert stale.read_bytes() == (ckpts / "last.pth").read_bytes()


# ------------------------------------------------------------------ 8. resume/failure messages
def test_a_bare_state_dict_as_last_pth_is_named(data_dir, run_dir, capsys):
    last = run_dir / "checkpoints" / "last.pth"
    torch.save(safe_load(last)["model"], last)
    with pytest.raises(CheckpointError, match=rf"{last} is not a training checkpoint.*bare state dict"):
        train(load_config("k400_tiny.yaml", opts(data_dir, run_dir)))
    assert main_exit(["--cfg", "k400_tiny.yaml", *opts(data_dir, run_dir)]) == 1
    assert f"error: {last} is not a training checkpoint" in capsys.readouterr().err


def test_non_finite_loss_before_any_checkpoint_names_none(data_dir, tmp_path):
    class NanModel(torch.nn.Module):
        def __init__(self, cfg):
            super().__init__()
            self.model = build_model(cfg)

        def forward(self, x):
            return self.model(x) * float("nan")

    with pytest.raises(NonFiniteLossError) as exc:
        train(load_config("k400_tiny.yaml", opts(data_dir, tmp_path)), model_fn=NanModel)
    assert "last good checkpoint" not in str(exc.value) and "no checkpoint was written yet" in str(exc.value)
    assert not (tmp_path / "checkpoints" / "last.pth").exists()


def test_full_disk_during_training_exits_with_the_message_and_keeps_the_checkpoint(data_dir, run_dir, monkeypatch,
                                                                                  capsys):
    last = run_dir / "checkpoints" / "last.pth"
    before = last.read_bytes()

    def full(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    monkeypatch.setattr(torch, "save", full)
    assert main_exit(["--cfg", "k400_tiny.yaml", *opts(data_dir, run_dir)]) == 1
    err = capsys.readouterr().err
    assert f"error: no space left on device while writing {last}" in err and "inline_container" not in err, err
    assert last.read_bytes() == before and not (run_dir / LOCK).exists()
