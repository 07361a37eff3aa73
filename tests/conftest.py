"""Shared fixtures: isolated home, fake upstreams, a running proxy."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fakes.azure_fixtures import memory_keyring, no_keyring  # noqa: F401
from fakes.openai_upstream import FakeOpenAIUpstream
from support import RunningProxy, settings_for, start_proxy

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def lmbridge_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own config and data directory."""
    home = tmp_path / "lmbridge-home"
    home.mkdir()
    monkeypatch.setenv("LMBRIDGE_HOME", str(home))
    for name in ("LMBRIDGE_HOST", "LMBRIDGE_PORT", "LMBRIDGE_LOG_REQUESTS"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
async def fake_upstream() -> AsyncIterator[FakeOpenAIUpstream]:
    fake = FakeOpenAIUpstream()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def proxy(fake_upstream: FakeOpenAIUpstream) -> AsyncIterator[RunningProxy]:
    running = await start_proxy(settings_for(fake_upstream.url))
    yield running
    await running.server.stop()
