"""Every tool's --help runs (tools are run in parallel to keep this fast)."""

import subprocess
import sys

from conftest import ROOT

TOOLS = sorted(p for p in (ROOT / "tools").glob("*.py") if not p.name.startswith("_"))


def test_every_tool_help_runs():
    names = {p.name for p in TOOLS}
    assert {"train_video.py", "test_video.py", "predict.py", "inflate_checkpoint.py", "demo.py"} <= names
    procs = {p.name: subprocess.Popen([sys.executable, str(p), "--help"], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True) for p in TOOLS}
    failures = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        if proc.returncode != 0 or "usage" not in out.lower():
            failures[name] = (proc.returncode, err[-2000:])
    assert not failures, failures
