"""Shared pieces of the engine tests: a tiny generated mp4 dataset and config overrides."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from sfvideo.bench.serve import free_port

ROOT = Path(__file__).resolve().parent.parent
NUM_CLASSES = 4
CLASS_NAMES = ["left", "right", "up", "down"]


def make_video_dataset(root: Path, num_train: int = 8, num_val: int = 7, frames: int = 8, size: int = 32) -> Path:
    """Write tiny mp4s (``size``² pixels, ``frames`` frames) and ``train.txt``/``val.txt``/``classes.txt``."""
    from sfvideo.data.encode import write_video

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", num_train), ("val", num_val)):
        lines = []
        for i in range(n):
            label = i % NUM_CLASSES
            base = rng.integers(0, 255, size=(1, size, size, 3))
            shift = np.arange(frames)[:, None, None, None] * (8 * (label + 1))
            video = ((base + shift) % 256).astype(np.uint8)  # (T, H, W, 3)
            name = f"{split}/v{i:02d}.mp4"
            write_video(root / name, video, fps=30)
            lines.append(f"{name} {label}")
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    (root / "classes.txt").write_text("\n".join(CLASS_NAMES) + "\n")
    return root


def tiny_opts(data_dir: Path, out_dir: Path, **extra) -> list[str]:
    """Overrides turning ``k400_tiny.yaml`` into a seconds-long CPU run of ``video_test``."""
    opts = {
        "MODEL.ARCH": "video_test", "MODEL.NUM_CLASSES": NUM_CLASSES, "MODEL.DROP_PATH_RATE": 0.1,
        "DATA.PATH_TO_DATA_DIR": str(data_dir), "DATA.TRAIN_LIST": "train.txt", "DATA.VAL_LIST": "val.txt",
        "DATA.TEST_LIST": "val.txt", "DATA.CLASS_NAMES": "classes.txt", "DATA.DECODER": "pyav",
        "DATA.NUM_FRAMES": 4, "DATA.SAMPLING_RATE": 1, "DATA.TRAIN_CROP_SIZE": 32, "DATA.TEST_CROP_SIZE": 32,
        "DATA.TRAIN_JITTER_SCALES": "[32,40]", "DATA.NUM_WORKERS": 0,
        "AUG.RAND_AUGMENT": "rand-m7-n2", "AUG.RE_PROB": 0.25,
        "TRAIN.BATCH_SIZE": 2, "TRAIN.LOG_PERIOD": 1, "TRAIN.EMA_DECAY": 0.9,
        "SOLVER.MAX_EPOCH": 2, "SOLVER.WARMUP_EPOCHS": 1, "SOLVER.BASE_LR": 0.5, "SOLVER.LR_BASE_BATCH": 512,
        "TEST.NUM_ENSEMBLE_VIEWS": 2, "TEST.NUM_SPATIAL_CROPS": 1, "TEST.BATCH_SIZE": 2,
        "TEST.MAX_VIEWS_PER_BATCH": 3, "DEVICE": "cpu", "OUTPUT_DIR": str(out_dir),
    }
    opts.update(extra)
    flat: list[str] = []
    for k, v in opts.items():
        flat += [k, str(v)]
    return flat


def tool_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(PYTHONUNBUFFERED="1", MASTER_ADDR="127.0.0.1", OMP_NUM_THREADS="1",
               PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""))
    return env


def run_tool(tool: str, args: list[str], nproc: int = 1, timeout: float = 240) -> subprocess.CompletedProcess:
    """Run ``tools/<tool>`` directly, or under torchrun with ``nproc`` processes on loopback."""
    script = str(ROOT / "tools" / tool)
    if nproc == 1:
        cmd = [sys.executable, script, *args]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
               "--master_addr", "127.0.0.1", "--master_port", str(free_port()), script, *args]
    proc = subprocess.run(cmd, cwd=ROOT, env=tool_env(), capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def train_until_signal(opts: list[str], marker: str, sig: int, timeout: float = 120,
                       group: bool = False) -> tuple[int, str]:
    """Run ``tools/train_video.py --cfg k400_tiny.yaml opts``, send ``sig`` once a log line holds
    ``marker`` (to its whole process group, loader workers included, when ``group``: what a
    terminal's Ctrl-C, systemd or a batch scheduler do), and return its exit status and whole log."""
    cmd = [sys.executable, str(ROOT / "tools" / "train_video.py"), "--cfg", "k400_tiny.yaml", *opts]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=group)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if marker in line:
            os.killpg(proc.pid, sig) if group else proc.send_signal(sig)
            break
    rest, _ = proc.communicate(timeout=timeout)
    return proc.returncode, "".join(lines) + rest


def wait_for(condition, timeout: float = 120.0) -> None:
    """Until ``condition()`` holds (checked every 20 ms); the limit only ends a test that would
    otherwise hang."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)
