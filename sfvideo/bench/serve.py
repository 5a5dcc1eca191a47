"""A folder served over HTTP on loopback, for the shard benchmark and tests: Debian's nginx where it
is installed (``make install`` adds it), else Python's ``http.server`` (slower: one Python
process copies every byte), which is then said once on stderr."""

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

NGINX_CONF = """daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 256; }}
http {{
  access_log off;
  sendfile on;
  client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy; fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
  server {{ listen 127.0.0.1:{port}; root {root}; location / {{ }} }}
}}
"""


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nginx_binary() -> str | None:
    return shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """Return once something accepts connections on ``port``; raise if ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}: {out}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)  # polls a condition (the port), not a fixed wait
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


@contextlib.contextmanager
def serving(cmd: list[str], port: int, **popen) -> Iterator[str]:
    """Run the server ``cmd`` for the block; ``http://127.0.0.1:PORT`` once it listens."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)
    try:
        wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def http_server(root: str | os.PathLike, work_dir: str | os.PathLike):
    """A context manager serving ``root`` over HTTP on loopback, yielding its base URL; nginx keeps
    its configuration and temporaries in ``work_dir``."""
    port, binary, work = free_port(), nginx_binary(), Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    if binary:
        (work / "nginx.conf").write_text(NGINX_CONF.format(tmp=work.resolve(), port=port, root=Path(root).resolve()))
        return serving([binary, "-c", str(work / "nginx.conf"), "-p", str(work)], port)
    print("nginx is not installed (make install adds it): serving with python -m http.server instead",
          file=sys.stderr)
    return serving([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory",
                    str(root)], port)
