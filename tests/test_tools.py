"""Every tool's --help runs, as tools/<name>.py and as ``sfvideo <command>`` (in parallel, to keep this fast)."""

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ROOT
from sfvideo.cli import COMMANDS

TOOLS = sorted(p for p in (ROOT / "tools").glob("*.py") if not p.name.startswith("_"))


def _all_help_pass(commands: dict[str, list[str]]) -> dict:
    procs = {name: subprocess.Popen(cmd + ["--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, cmd in commands.items()}
    failures = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        if proc.returncode != 0 or "usage" not in out.lower():
            failures[name] = (proc.returncode, err[-2000:])
    return failures


def test_every_tool_help_runs():
    names = {p.name for p in TOOLS}
    assert {"train_video.py", "test_video.py", "predict.py", "inflate_checkpoint.py", "demo.py"} <= names
    assert not _all_help_pass({p.name: [sys.executable, str(p)] for p in TOOLS})


def test_every_sfvideo_command_help_runs():
    exe = shutil.which("sfvideo", path=str(Path(sys.executable).parent))
    assert exe, "the sfvideo command is not installed next to this interpreter (pip install -e .)"
    assert not _all_help_pass({name: [exe, name] for name in COMMANDS})
    top = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120)
    assert top.returncode == 0 and all(name in top.stdout for name in COMMANDS)
