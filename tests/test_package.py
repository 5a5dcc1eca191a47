"""The package as a user installs it: a wheel in a fresh virtual environment, used from elsewhere."""

from __future__ import annotations

import configparser
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _listed_packages() -> set[str]:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    return {p.strip() for p in parser["options"]["packages"].split() if p.strip()}


def test_setup_cfg_lists_every_package():
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "sfvideo").rglob("__init__.py")}
    listed = _listed_packages()
    assert on_disk <= listed, f"packages missing from setup.cfg [options] packages: {sorted(on_disk - listed)}"
    assert listed - on_disk == {"sfvideo.configs", "sfvideo.data_lists"}


def test_cli_lists_every_command_and_each_has_a_tool_wrapper():
    from sfvideo.cli import COMMANDS

    for name, cmd in COMMANDS.items():
        tool = ROOT / "tools" / cmd.tool
        assert tool.is_file(), f"sfvideo {name}: tools/{cmd.tool} missing"
        assert f"from sfvideo.cli.{cmd.module} import main" in tool.read_text()


def test_unknown_command_suggests_the_closest(capsys):
    from sfvideo.cli import main

    assert main(["trian"]) == 2
    assert "did you mean train" in capsys.readouterr().err


@pytest.mark.slow
def test_wheel_installs_and_runs_outside_the_source_tree(tmp_path):
    # Build from a copy: setuptools writes build/ and *.egg-info/ into the source folder.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info", "demo_output",
                                                                "__pycache__", ".pytest_cache"))
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(wheels), str(source)], check=True, env={**os.environ, "PIP_CONFIG_FILE": os.devnull})
    (wheel,) = wheels.glob("sfvideo-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    # Reuse this environment's torch & co. (a plain path entry: its .pth files, and so the
    # editable install of sfvideo, are not activated, so sfvideo must come from the wheel).
    host = [sysconfig.get_paths()["purelib"], *site.getsitepackages()]
    Path(purelib, "host_packages.pth").write_text("\n".join(dict.fromkeys(host)) + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True,
                   env={**os.environ, "PIP_CONFIG_FILE": os.devnull})

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = dict(cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    sfvideo = env_dir / "bin" / "sfvideo"
    out = subprocess.run([str(sfvideo), "--help"], **run)
    assert out.returncode == 0 and "train" in out.stdout and "predict" in out.stdout, out.stderr
    out = subprocess.run([str(sfvideo), "train", "--help"], **run)
    assert out.returncode == 0 and "usage: sfvideo train" in out.stdout, out.stderr
    probe = ("import sfvideo, pathlib; from sfvideo.config import load_config; "
             "from sfvideo.resources import find_resource; cfg = load_config('k400_tiny.yaml'); "
             "names = find_resource(cfg.DATA.CLASS_NAMES).read_text().split(chr(10)); "
             "print(sfvideo.__file__); print(cfg.MODEL.ARCH, cfg.DATA.NUM_FRAMES, len([n for n in names if n]))")
    out = subprocess.run([str(python), "-c", probe], **run)
    assert out.returncode == 0, out.stderr
    where, summary = out.stdout.strip().splitlines()
    assert Path(where).resolve().is_relative_to(env_dir.resolve()), f"sfvideo imported from {where}, not the wheel"
    assert summary == "video_tiny 32 400"
