"""Shared pieces of the shard tests: a tiny video set written as shards, shard datasets built
directly, servers on loopback (nginx or Python's http.server; moto's S3 server)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

from engine_helpers import free_port, tiny_opts

SHARD_OPTS = {"DATA.FORMAT": "shards", "DATA.SHUFFLE_BUFFER": 3, "DATA.SHARD_RETRY_WAIT": 0.01,
              "DATA.SHARD_RETRIES": 2}


def write_shards(data_dir: Path, out: Path, split: str = "train", max_count: int = 3, **kw) -> Path:
    """``data_dir``'s ``{split}.txt`` as shards of ``max_count`` samples in ``out``; the index path."""
    from sfvideo.data.lists import load_video_list, read_class_names
    from sfvideo.data.shards.write import ShardOptions, make_shards

    classes = read_class_names(data_dir / "classes.txt")
    records = load_video_list(data_dir / f"{split}.txt", data_dir, classes).records
    result = make_shards(records, data_dir, out, ShardOptions(split=split, max_count=max_count, workers=1, **kw),
                         classes, progress=False)
    return result.index


def shard_opts(data_dir: Path, out_dir: Path, train: str, val: str = "", **extra) -> list[str]:
    """``tiny_opts`` reading ``train`` (and ``val``, else the train shards) as shards."""
    return tiny_opts(data_dir, out_dir, **{**SHARD_OPTS, "DATA.TRAIN_SHARDS": train, "DATA.VAL_SHARDS": val or train,
                                           "DATA.TEST_SHARDS": val or train, **extra})


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """Return once something accepts connections on ``port``; fail if ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {proc.stdout.read() if proc.stdout else ''}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)  # polling a condition (the port), not waiting a fixed time
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


NGINX_CONF = """daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy; fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
  server {{ listen 127.0.0.1:{port}; root {root}; location / {{ }} }}
}}
"""


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)


@contextlib.contextmanager
def serving(cmd: list[str], port: int, **popen) -> Iterator[str]:
    """Run the server ``cmd`` until the block ends; ``http://127.0.0.1:PORT`` once it listens."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)
    try:
        wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def http_server(root: Path, tmp: Path):
    """``http://127.0.0.1:PORT`` serving ``root``: Debian's nginx, or Python's http.server where nginx
    is not installed (``make install`` installs it; the fallback is printed)."""
    port, binary = free_port(), nginx_binary()
    tmp.mkdir(parents=True, exist_ok=True)
    if binary:
        (tmp / "nginx.conf").write_text(NGINX_CONF.format(tmp=tmp, port=port, root=root))
        return serving([binary, "-c", str(tmp / "nginx.conf"), "-p", str(tmp)], port)
    print("nginx is not installed (make install adds it): serving the shards with python -m http.server")
    return serving([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(root)],
                   port)


def moto_binary() -> str | None:
    path = Path(sys.executable).parent / "moto_server"
    return str(path) if path.exists() else shutil.which("moto_server")


def s3_server(tmp: Path, auth_actions: int | None = None):
    """moto's standalone S3 server on loopback: its endpoint URL. ``auth_actions``: check
    credentials after that many requests (moto's ``INITIAL_NO_AUTH_ACTION_COUNT``)."""
    port, env = free_port(), dict(os.environ)
    if auth_actions is not None:
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(auth_actions)
    return serving([moto_binary(), "-H", "127.0.0.1", "-p", str(port)], port, env=env, cwd=tmp)


