"""Loader worker faults: a worker killed mid-epoch stops training with a message naming the worker
and how to resume (the last checkpoint kept); a worker that cannot be forked for want of a
resource is retried with growing waits, then refused naming what ran out."""

from __future__ import annotations

import errno
import multiprocessing
import multiprocessing.context
import os
import signal

import pytest
import torch
from torch.utils.data import DataLoader, Dataset, get_worker_info

from engine_helpers import make_video_dataset, tiny_opts, wait_for
from sfvideo.config import load_config
from sfvideo.engine.factories import default_dataset_fn
from sfvideo.engine.loaders import LoaderStartError, LoaderWorkerError, start_loader
from sfvideo.engine.train import train

FAST = {"TRAIN.EVAL_PERIOD": 0, "TRAIN.EMA_DECAY": 0.0, "AUG.RAND_AUGMENT": "", "AUG.RE_PROB": 0.0,
        "DATA.NUM_WORKERS": 2}


class _KillsItsWorker(Dataset):
    """The training set, except that the first item a worker loads kills that worker (SIGKILL,
    as the kernel's out-of-memory killer does)."""

    def __init__(self, inner):
        self.inner = inner

    def __len__(self):
        return len(self.inner)

    def __getitem__(self, index):
        if get_worker_info() is not None:
            os.kill(os.getpid(), signal.SIGKILL)
        return self.inner[index]


@pytest.mark.slow
@pytest.mark.parametrize("killed, where", [("train", "during epoch 2"), ("val", "(validation) after epoch 2")])
def test_a_killed_worker_stops_training_naming_it_and_the_run_resumes(killed, where, tmp_path):
    """In the training steps or in the validation after an epoch (which reads through its own
    loader): one line naming the worker, the last checkpoint kept, and the resume working."""
    data = make_video_dataset(tmp_path / "videos", num_train=4, num_val=2)
    out = tmp_path / "run"
    fast = {**FAST, "TRAIN.EVAL_PERIOD": 1 if killed == "val" else 0}
    one = load_config("k400_tiny.yaml", tiny_opts(data, out, **fast, **{"SOLVER.MAX_EPOCH": 1}))
    two = load_config("k400_tiny.yaml", tiny_opts(data, out, **fast))
    assert train(one).epoch == 1
    kept = (out / "checkpoints" / "last.pth").read_bytes()

    def killing(cfg, split):
        ds = default_dataset_fn(cfg, split)
        return _KillsItsWorker(ds) if split == killed else ds

    with pytest.raises(LoaderWorkerError) as err:
        train(two, dataset_fn=killing)
    message = str(err.value)
    assert "\n" not in message and "SIGKILL" in message and "epoch 2" in message and where in message
    assert "worker" in message and "of 2" in message and "resume" in message and "last.pth" in message
    assert (out / "checkpoints" / "last.pth").read_bytes() == kept  # the last checkpoint is kept
    result = train(two)
    assert result.status == "finished" and result.epoch == 2


def test_the_train_command_reports_a_killed_worker_in_one_line(tmp_path, monkeypatch, capsys):
    from sfvideo.cli import train as train_cli
    from sfvideo.engine import train as engine_train

    def dies(cfg, *args, **kwargs):
        raise LoaderWorkerError("DataLoader worker 1 of 2 (pid 123) was killed by SIGKILL during epoch 1")

    monkeypatch.setattr(engine_train, "train", dies)
    data = make_video_dataset(tmp_path / "videos", num_train=2, num_val=1)
    with pytest.raises(SystemExit) as exc:
        train_cli.main(["--cfg", "k400_tiny.yaml", *tiny_opts(data, tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 1 and len(err.splitlines()) == 1 and "SIGKILL" in err


# ------------------------------------------------------------------ fork retry
class _Flaky(multiprocessing.context.ForkContext):
    """A fork context whose first ``failures`` process starts fail as a full process table does."""

    def __init__(self, failures: int):
        super().__init__()
        context = self

        class Process(multiprocessing.context.ForkProcess):
            def start(self):
                if context.failures > 0:
                    context.failures -= 1
                    raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
                super().start()

        self.failures = failures
        self.Process = Process


class _Numbers(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        return torch.tensor(i)


def test_a_worker_that_cannot_be_forked_is_retried_with_growing_waits():
    waits = []
    loader = DataLoader(_Numbers(), batch_size=2, num_workers=1, multiprocessing_context=_Flaky(2))
    batches = list(start_loader(loader, sleep=waits.append))
    assert [b.tolist() for b in batches] == [[0, 1], [2, 3]]
    assert len(waits) == 2 and waits[1] == 2 * waits[0] > 0


def test_a_fork_that_keeps_failing_is_refused_naming_what_ran_out():
    waits = []
    loader = DataLoader(_Numbers(), batch_size=2, num_workers=1, multiprocessing_context=_Flaky(100))
    with pytest.raises(LoaderStartError) as err:
        start_loader(loader, tries=4, sleep=waits.append)
    message = str(err.value)
    assert len(waits) == 3 and "\n" not in message
    assert "4 tries" in message and "errno 11" in message and "processes" in message and "memory" in message
    assert "DATA.NUM_WORKERS" in message


def test_other_start_errors_are_not_retried():
    class Broken(multiprocessing.context.ForkContext):
        class Process(multiprocessing.context.ForkProcess):
            def start(self):
                raise PermissionError(errno.EPERM, "not allowed")

    waits = []
    loader = DataLoader(_Numbers(), batch_size=2, num_workers=1, multiprocessing_context=Broken())
    with pytest.raises(PermissionError):
        start_loader(loader, sleep=waits.append)
    assert waits == []


def test_training_and_evaluation_start_their_loaders_through_the_retry(caplog):
    import sfvideo.engine.evaluate as evaluate
    import sfvideo.engine.loop as loop
    from sfvideo.engine import loaders

    assert loop.start_loader is start_loader and evaluate.read_loader is loaders.read_loader
    loader = DataLoader(_Numbers(), batch_size=2, num_workers=1, multiprocessing_context=_Flaky(1))
    with caplog.at_level("WARNING", logger="sfvideo.engine"):
        assert [b.tolist() for b in loaders.read_loader(loader, "while testing")] == [[0, 1], [2, 3]]
    assert sum("trying again" in r.getMessage() for r in caplog.records) == 1
    assert multiprocessing.get_start_method(allow_none=True) in (None, "fork")


def test_the_training_loops_loader_wrapper_starts_its_workers_inside_the_retry():
    """train.run_epoch hands the loop a ConsumedData around the DataLoader: iter() of it must fork
    the workers at once (where start_loader retries), not at the first batch."""
    from sfvideo.engine.train_state import ConsumedData

    waits = []
    loader = DataLoader(_Numbers(), batch_size=2, num_workers=1, multiprocessing_context=_Flaky(2),
                        collate_fn=lambda items: {"n": [int(i) for i in items]})
    batches = list(start_loader(ConsumedData(loader), sleep=waits.append))
    assert [b["n"] for b in batches] == [[0, 1], [2, 3]] and len(waits) == 2


# ------------------------------------------------------------------ deaths outside the training steps
def test_a_worker_killed_while_scoring_videos_is_named():
    from sfvideo.engine.evaluate import score_videos

    class Items(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            os.kill(os.getpid(), signal.SIGKILL)

    loader = DataLoader(Items(), batch_size=2, num_workers=2, collate_fn=list)
    with pytest.raises(LoaderWorkerError) as err:
        score_videos(torch.nn.Identity(), loader, torch.device("cpu"), desc="test")
    message = str(err.value)
    assert "\n" not in message and "SIGKILL" in message and "of 2" in message and "while scoring" in message


def test_the_test_command_reports_a_killed_worker_in_one_line(tmp_path, monkeypatch, capsys):
    from sfvideo.checkpoint import atomic_save
    from sfvideo.cli import test as test_cli
    from sfvideo.engine import evaluate
    from sfvideo.models import build_model

    def dies(*args, **kwargs):
        raise LoaderWorkerError("DataLoader worker 0 of 2 (pid 123) was killed by SIGKILL while scoring (test)")

    monkeypatch.setattr(evaluate, "score_videos", dies)
    data = make_video_dataset(tmp_path / "videos", num_train=2, num_val=1)
    opts = tiny_opts(data, tmp_path / "out")
    ckpt = tmp_path / "video.pth"
    atomic_save({"model": build_model(load_config("k400_tiny.yaml", opts)).state_dict()}, ckpt)
    with pytest.raises(SystemExit) as exc:
        test_cli.main(["--cfg", "k400_tiny.yaml", *opts, "TEST.CHECKPOINT", str(ckpt)])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 1 and len(err.splitlines()) == 1 and "SIGKILL" in err
    assert not (tmp_path / "out" / "test_results.json").exists()


class _StartsSlowly:
    """A worker_init_fn that shields its worker (``shield_worker``) only after the test says so:
    until then the worker is where every worker is for a moment after its fork, PyTorch's own
    signal handlers set and the shield not yet. It marks itself as shielding, as ``WorkerInit``
    does."""

    shields_stop_signals = True

    def __init__(self, folder):
        self.folder = folder

    def __call__(self, worker_id):
        from sfvideo.engine.loaders import shield_worker

        (self.folder / f"started.{os.getpid()}").touch()
        wait_for(lambda: (self.folder / "go").exists())
        shield_worker(worker_id)


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_a_stop_signal_to_a_worker_still_starting_is_left_to_the_main_process(sig, tmp_path):
    """A process group's SIGTERM or SIGINT (sent by another process) reaching a worker between
    its fork and its ``worker_init_fn`` must not kill it: the workers are forked with the stop
    signals blocked, so the signal waits for the shield, which drops it."""
    import subprocess

    loader = DataLoader(_Numbers(), batch_size=1, num_workers=2, worker_init_fn=_StartsSlowly(tmp_path))
    batches = start_loader(loader)
    wait_for(lambda: len(list(tmp_path.glob("started.*"))) == 2)
    for w in batches._workers:  # noqa: SLF001 - the workers' pids, to signal them from outside
        subprocess.run(["kill", f"-{sig[3:]}", str(w.pid)], check=True)
    (tmp_path / "go").touch()
    assert [b.item() for b in batches] == [0, 1, 2, 3]
