"""Training engine on CPU with the ``video_test`` model and generated mp4s: exact resume
(after an epoch, after SIGTERM mid-epoch: exit status 128 + signal, after a SIGKILL that follows a
periodic mid-epoch checkpoint), non-finite loss, interrupted checkpoint writes, NUM_THREADS."""

import signal
import time

import pytest
import torch

from engine_helpers import tiny_opts, train_until_signal
from sfvideo.checkpoint import safe_load
from sfvideo.config import load_config
from sfvideo.engine.rundir import LOCK
from sfvideo.engine.train import NonFiniteLossError, build_training, end_epoch, run_epoch, save_checkpoint, train
from sfvideo.models import build_model

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data_dir(videos):
    return videos  # generated once per session (conftest)


@pytest.fixture(scope="module")
def reference(data_dir, tmp_path_factory):
    """An uninterrupted 2-epoch run: its output dir."""
    out = tmp_path_factory.mktemp("reference")
    result = train(load_config("k400_tiny.yaml", tiny_opts(data_dir, out)))
    assert result.status == "finished" and result.epoch == 2 and result.step == 8
    return out


def final_state(out):
    return safe_load(out / "checkpoints" / "last.pth")


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_outputs_of_a_run(reference):
    ckpt = final_state(reference)
    for key in ("model", "optimizer", "scheduler", "scaler", "ema", "epoch", "step", "rng", "cfg"):
        assert key in ckpt
    assert ckpt["epoch"] == 2 and ckpt["step"] == 8 and ckpt["step_in_epoch"] == 0
    assert isinstance(ckpt["cfg"], dict) and ckpt["cfg"]["MODEL"]["ARCH"] == "video_test"
    assert set(ckpt["rng"][0]) >= {"python", "numpy", "torch", "cuda"}
    for name in ("best.pth", "epoch_0001.pth", "epoch_0002.pth"):
        assert (reference / "checkpoints" / name).is_file()
    assert (reference / "config.yaml").is_file() and (reference / "train.log").is_file()
    import json

    lines = [json.loads(x) for x in (reference / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == [1, 2]
    for key in ("epoch", "train_loss", "lr", "clips_per_s", "val_top1", "val_top5", "val_loss", "failed_videos", "time"):
        assert key in lines[0], key


def test_resume_after_epoch_is_exact(data_dir, reference, tmp_path):
    cfg = load_config("k400_tiny.yaml", tiny_opts(data_dir, tmp_path))
    first = build_training(cfg)
    assert run_epoch(first, 0)
    end_epoch(first, 0, time.time())  # writes last.pth; the "process" stops here
    result = train(cfg)  # a new run resumes from last.pth
    assert result.epoch == 2 and result.step == 8
    assert_same_weights(final_state(tmp_path)["model"], final_state(reference)["model"])
    assert_same_weights(final_state(tmp_path)["ema"], final_state(reference)["ema"])


@pytest.mark.slow  # a training subprocess, then the resumed run
def test_sigterm_mid_epoch_exits_128_plus_the_signal_with_a_resumable_checkpoint(data_dir, reference, tmp_path):
    status, log = train_until_signal(tiny_opts(data_dir, tmp_path), "epoch 2/2 step 1/4", signal.SIGTERM)
    assert status == 128 + signal.SIGTERM, log  # interrupted, not finished: a scheduler may requeue
    assert "stopped by SIGTERM" in log and "interrupted:" in log, log
    assert not (tmp_path / LOCK).exists()  # released for the requeued run
    ckpt = final_state(tmp_path)
    assert ckpt["epoch"] == 1 and 0 < ckpt["step_in_epoch"] < 4, (ckpt["epoch"], ckpt["step_in_epoch"])
    result = train(load_config("k400_tiny.yaml", tiny_opts(data_dir, tmp_path)))
    assert result.status == "finished" and result.step == 8
    assert_same_weights(final_state(tmp_path)["model"], final_state(reference)["model"])


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_whole_process_group_stops_cleanly_with_loader_workers(sig, data_dir, reference, tmp_path):
    """The loader workers get the signal too: they must not die of it before the run has stopped
    at a step boundary (it would end in a worker-death error instead of the resumable stop)."""
    opts = tiny_opts(data_dir, tmp_path, **{"DATA.NUM_WORKERS": 2})
    status, log = train_until_signal(opts, "epoch 2/2 step 1/4", sig, group=True)
    name = signal.Signals(sig).name
    assert status == 128 + sig and f"stopped by {name}" in log and "DataLoader worker" not in log, log
    ckpt = final_state(tmp_path)
    assert ckpt["epoch"] == 1 and 0 < ckpt["step_in_epoch"] < 4, (ckpt["epoch"], ckpt["step_in_epoch"])
    result = train(load_config("k400_tiny.yaml", opts))
    assert result.status == "finished" and result.step == 8
    assert_same_weights(final_state(tmp_path)["model"], final_state(reference)["model"])


@pytest.mark.slow
def test_sigkill_after_a_periodic_checkpoint_resumes_exactly(data_dir, reference, tmp_path):
    opts = tiny_opts(data_dir, tmp_path, **{"TRAIN.CHECKPOINT_MINUTES": 1e-6})  # due at every step boundary
    status, log = train_until_signal(opts, "periodic checkpoint at epoch 2, step 2/4", signal.SIGKILL)
    assert status == -signal.SIGKILL, log
    ckpt = final_state(tmp_path)
    assert ckpt["epoch"] == 1 and ckpt["step_in_epoch"] >= 2, (ckpt["epoch"], ckpt["step_in_epoch"])
    result = train(load_config("k400_tiny.yaml", opts))
    assert result.status == "finished" and result.step == 8
    assert_same_weights(final_state(tmp_path)["model"], final_state(reference)["model"])


class _NanAfter(torch.nn.Module):
    """The real model, returning NaN logits from the ``n``-th forward call on."""

    def __init__(self, model, n):
        super().__init__()
        self.model, self.n, self.calls = model, n, 0

    def forward(self, x):
        self.calls += 1
        out = self.model(x)
        return out * float("nan") if self.training and self.calls >= self.n else out


def test_non_finite_loss_stops_and_keeps_last_good(data_dir, tmp_path):
    cfg = load_config("k400_tiny.yaml", tiny_opts(data_dir, tmp_path, **{"TRAIN.EVAL_PERIOD": 0}))
    with pytest.raises(NonFiniteLossError, match=r"epoch 2, step 2 .*global step 6"):
        train(cfg, model_fn=lambda c: _NanAfter(build_model(c), 6))
    last = final_state(tmp_path)
    assert last["epoch"] == 1 and last["step"] == 4
    good = safe_load(tmp_path / "checkpoints" / "epoch_0001.pth")
    assert_same_weights(last["model"], good["model"])
    assert all(torch.isfinite(v).all() for v in last["model"].values() if v.is_floating_point())


def test_interrupted_checkpoint_write_keeps_last_readable(data_dir, tmp_path, monkeypatch):
    cfg = load_config("k400_tiny.yaml", tiny_opts(data_dir, tmp_path, **{"SOLVER.MAX_EPOCH": 1,
                                                                          "TRAIN.EVAL_PERIOD": 0}))
    run = build_training(cfg)
    assert run_epoch(run, 0)
    end_epoch(run, 0, time.time())
    before = final_state(tmp_path)

    real_save = torch.save

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(torch, "save", broken_save)
    run.state.global_step += 1
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(run, 2)
    monkeypatch.setattr(torch, "save", real_save)
    after = final_state(tmp_path)
    assert after["step"] == before["step"] and after["epoch"] == 1
    assert_same_weights(after["model"], before["model"])
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.endswith(".tmp")]


def test_num_threads_is_applied_by_training(data_dir, tmp_path):
    assert torch.get_num_threads() == 1  # the module's fixture: NUM_THREADS 2 is a change
    run = build_training(load_config("k400_tiny.yaml", tiny_opts(data_dir, tmp_path / "run", NUM_THREADS=2)))
    try:
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)
        run.lock.release()  # what run_training does when the run ends
        if run.writer is not None:
            run.writer.close()
