"""The `lmbridge` command as a user runs it, in a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from lmbridge import __version__


def run(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lmbridge", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"lmbridge {__version__}"


def test_busy_port_is_a_one_line_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = run("serve", "--port", str(port))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert f"port {port} on 127.0.0.1 is already in use" in lines[0]
    assert "--port" in lines[0]


def test_broken_config_stops_start(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[server]\nprot = 1\n")
    result = run("serve", "--config", str(path))
    assert result.returncode == 2
    assert str(path) in result.stderr
    assert "prot" in result.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_answers_health_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "LMBRIDGE_HOME": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lmbridge", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 15
        body = b""
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/health", timeout=2
                ) as resp:
                    body = resp.read()
                break
            except OSError:
                time.sleep(0.1)
        assert b'"status": "ok"' in body or b'"status":"ok"' in body
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert f"listening on http://127.0.0.1:{port}" in out


def test_no_display_runs_headless(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")
    }
    env.update(LMBRIDGE_HOME=str(tmp_path), LMBRIDGE_PORT=str(port))
    proc = subprocess.Popen(
        [sys.executable, "-m", "lmbridge"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"listening on http://127.0.0.1:{port}" in line
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "no display found; running the proxy headless" in err
