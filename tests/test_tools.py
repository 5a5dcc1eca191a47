"""Every command's --help runs, once each and in one place: ``sfvideo <command> --help`` for the
commands, ``tools/<name>.py --help`` for the tools that are no command; every ``tools/<name>.py``
of a command is the two-line wrapper of that command's ``main`` (so its --help is the command's);
the installed ``sfvideo`` lists every command."""

from __future__ import annotations

import ast
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from sfvideo.cli import COMMANDS

TOOLS = sorted(p for p in (ROOT / "tools").glob("*.py") if not p.name.startswith("_"))


def wrapped_module(tool: Path) -> str | None:
    """``X`` for a tool that is ``from sfvideo.cli.X import main`` + ``sys.exit(main())`` and nothing
    else (a docstring and imports aside); None for any other script."""
    body = [n for n in ast.parse(tool.read_text()).body
            if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]  # the docstring
    imports = [n for n in body if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("sfvideo.cli.")]
    rest = [n for n in body if not isinstance(n, (ast.Import, ast.ImportFrom))]
    if len(imports) != 1 or [a.name for a in imports[0].names] != ["main"] or len(rest) != 1:
        return None
    call = ast.unparse(rest[0])
    return imports[0].module.rsplit(".", 1)[1] if call == "if __name__ == '__main__':\n    sys.exit(main())" else None


def test_every_command_has_its_tool_and_every_tool_of_a_command_wraps_it():
    by_module = {cmd.module: name for name, cmd in COMMANDS.items()}
    for name, cmd in COMMANDS.items():
        assert wrapped_module(ROOT / "tools" / cmd.tool) == cmd.module, (name, cmd.tool)
    for tool in TOOLS:
        module = wrapped_module(tool)
        if module in by_module:
            assert COMMANDS[by_module[module]].tool == tool.name, tool.name  # one tool per command


def _help(run, capsys) -> str:
    """What ``run()`` (a --help call) prints; it must exit with status 0."""
    with pytest.raises(SystemExit) as exc:
        run()
    assert exc.value.code in (0, None)
    return capsys.readouterr().out


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_prints_its_help(name, monkeypatch, capsys):
    from sfvideo.cli import main

    monkeypatch.setattr(sys, "argv", ["sfvideo"])  # main names the program in argv[0], as when installed
    assert f"usage: sfvideo {name}" in _help(lambda: main([name, "--help"]), capsys)


@pytest.mark.parametrize("tool", [p.name for p in TOOLS if p.name not in {c.tool for c in COMMANDS.values()}])
def test_every_tool_that_is_no_command_prints_its_help(tool, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [tool, "--help"])
    assert "usage" in _help(lambda: runpy.run_path(str(ROOT / "tools" / tool), run_name="__main__"), capsys)


def test_the_installed_sfvideo_command_lists_every_command():
    exe = shutil.which("sfvideo", path=str(Path(sys.executable).parent))
    assert exe, "the sfvideo command is not installed next to this interpreter (pip install -e .)"
    top = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=600)
    assert top.returncode == 0, top.stderr
    assert all(f"  {name} " in top.stdout for name in COMMANDS)
