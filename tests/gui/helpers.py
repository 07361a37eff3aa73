"""Helpers for the GUI tests (import as `from gui.helpers import ...`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from fakes.lmstudio_server import FakeLMStudio
from fakes.openai_upstream import FakeOpenAIUpstream
from lmbridge import config
from lmbridge.gui.app import LMBridgeApp
from lmbridge.gui.prefs import Prefs


async def eventually(
    condition: Callable[[], object], timeout: float = 15.0, what: str = "condition"
) -> None:
    """Await until `condition()` is truthy (Qt keeps processing events)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


def app_settings(
    lm: FakeLMStudio | None,
    upstream: FakeOpenAIUpstream | None,
    *,
    cloud_api: str = "",
    extra: str = "",
) -> config.Settings:
    """A local LM Studio upstream and an OpenAI-compatible one, with routes."""
    parts = ["[server]\nport = 0\n"]
    if lm is not None:
        parts.append(f"""
[[upstream]]
name = "local"
kind = "lmstudio"
base_url = "{lm.base_url}"
""")
    if upstream is not None:
        parts.append(f"""
[[upstream]]
name = "cloud"
kind = "openai"
base_url = "{upstream.url}"
{f'api = "{cloud_api}"' if cloud_api else ""}

[[route]]
model = "claude-*"
upstream = "cloud"
target = "fake-model"

[[route]]
model = "gpt-*"
upstream = "cloud"
target = "fake-model"
""")
    parts.append(extra)
    parts.append("""
[lmstudio]
min_context = 8192
load_context_length = 8192
""")
    return config.parse("".join(parts))


async def make_app(
    settings: config.Settings, tmp_path: Path, *, tray: bool = False
) -> LMBridgeApp:
    app = LMBridgeApp(
        settings,
        tmp_path / "config.toml",
        tray_available=tray,
        prefs=Prefs(tmp_path / "gui.ini"),
    )
    await app.startup()
    return app


async def close_app(app: LMBridgeApp) -> None:
    await app.shutdown()
    app.window.deleteLater()
    if app.tray is not None:
        app.tray.menu.deleteLater()
