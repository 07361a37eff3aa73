"""`lmbridge` with a display starts the desktop app; SIGTERM takes the one
shutdown path and exits cleanly. `lmbridge serve` stays headless."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fakes.openai_upstream import FakeOpenAIUpstream
from gui.helpers import BackgroundLoop
from lmbridge import cli, config


def test_display_starts_the_desktop_app(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import lmbridge.gui.app

    calls: list[Any] = []

    def run(settings: config.Settings, config_path: Path | None = None) -> int:
        calls.append(config_path)
        return 0

    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setattr(lmbridge.gui.app, "run", run)
    path = tmp_path / "my.toml"
    path.write_text("[server]\nport = 0\n")
    assert cli.main(["--config", str(path)]) == 0
    assert calls == [path]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def upstream_elsewhere() -> Iterator[FakeOpenAIUpstream]:
    """A fake upstream on its own loop, so this test may block."""
    with BackgroundLoop() as background:
        upstream = FakeOpenAIUpstream()
        asyncio.run_coroutine_threadsafe(upstream.start(), background.loop).result(10)
        yield upstream
        asyncio.run_coroutine_threadsafe(upstream.stop(), background.loop).result(10)


def test_the_app_process_serves_and_stops_on_sigterm(
    upstream_elsewhere: FakeOpenAIUpstream, tmp_path: Path
) -> None:
    fake_upstream = upstream_elsewhere
    port = free_port()
    path = tmp_path / "config.toml"
    path.write_text(
        f'[server]\nport = {port}\n\n[[upstream]]\nname = "cloud"\n'
        f'kind = "openai"\nbase_url = "{fake_upstream.url}"\n'
    )
    env = {
        **os.environ,
        "DISPLAY": ":0",
        "QT_QPA_PLATFORM": "offscreen",
        "LMBRIDGE_HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "lmbridge", "--config", str(path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/health", timeout=1
                ) as resp:
                    assert resp.status == 200
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    _out, err = proc.communicate(timeout=5)
                    pytest.fail(f"the app did not serve: {err.decode()[-2000:]}")
                time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert "Traceback" not in err.decode()
    assert not config.default_config_path().exists()
