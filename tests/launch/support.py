"""Running `lmbridge launch` as a subprocess with fake clients on PATH."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmbridge.launch.clients import CLIENTS

FAKE_CLIENT = Path(__file__).with_name("fake_client.py")


def free_port() -> int:
    """A loopback port nothing listens on (just now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def install_fakes(folder: Path, binaries: list[str] | None = None) -> Path:
    """The fake client as each client's binary in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    source = FAKE_CLIENT.read_text()
    for binary in binaries or [c.binary for c in CLIENTS.values()]:
        path = folder / binary
        path.write_text(f"#!{sys.executable}\n{source}")
        path.chmod(0o755)
    return folder


def bridge_config(upstream_url: str, port: int, extra: str = "") -> str:
    """One OpenAI-compatible upstream; every model routed to it."""
    return f"""
[server]
port = {port}

[[upstream]]
name = "fake"
kind = "openai"
base_url = "{upstream_url}"

[[route]]
model = "*"
upstream = "fake"
target = "fake-model"
{extra}
"""


@dataclass
class Launched:
    code: int
    out: str
    err: str
    probe: Path

    def record(self) -> dict[str, Any]:
        assert self.probe.exists(), f"the client did not run:\n{self.err}"
        loaded: dict[str, Any] = json.loads(self.probe.read_text())
        return loaded


async def start_launch(
    tmp_path: Path,
    config_text: str,
    argv: list[str],
    *,
    path: str,
    env: dict[str, str] | None = None,
    client_args: list[str] | None = None,
) -> tuple[asyncio.subprocess.Process, Path]:
    """`lmbridge launch ARGV --config FILE [-- CLIENT_ARGS]`, its own session."""
    cfg = tmp_path / "lmbridge.toml"
    cfg.write_text(config_text)
    probe_dir = tmp_path / "probe"
    probe_dir.mkdir(exist_ok=True)
    probe = probe_dir / "record.json"
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    full_env = {
        **os.environ,
        "PATH": path,
        "HOME": str(home),
        "TMPDIR": str(tmp_path),
        "LAUNCH_PROBE": str(probe),
        **(env or {}),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lmbridge",
        "launch",
        *argv,
        "--config",
        str(cfg),
        *(["--", *client_args] if client_args is not None else []),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=full_env,
        start_new_session=True,
    )
    return proc, probe


async def finish(
    proc: asyncio.subprocess.Process, probe: Path, timeout: float = 60
) -> Launched:
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = await proc.communicate()
        raise AssertionError(f"launch hung:\n{err.decode()}") from None
    assert proc.returncode is not None
    return Launched(proc.returncode, out.decode(), err.decode(), probe)


async def launch(
    tmp_path: Path,
    config_text: str,
    argv: list[str],
    *,
    path: str,
    env: dict[str, str] | None = None,
    client_args: list[str] | None = None,
) -> Launched:
    proc, probe = await start_launch(
        tmp_path, config_text, argv, path=path, env=env, client_args=client_args
    )
    return await finish(proc, probe)
