"""Shared fixtures: isolated home, fake upstreams, a running proxy."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fakes.openai_upstream import FakeOpenAIUpstream
from lmbridge import config
from lmbridge.core.events import REQUEST_FINISHED, EventBus, RequestRecord
from lmbridge.server.runner import ProxyServer

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


@dataclass
class RunningProxy:
    server: ProxyServer
    bus: EventBus
    records: list[RequestRecord] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    async def record(self, count: int = 1, timeout: float = 2.0) -> RequestRecord:
        """The latest finished record, once `count` requests have finished.

        A record is published when the handler returns, which can be just
        after the client has read the last byte.
        """
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.records) < count:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"only {len(self.records)} requests finished")
            await asyncio.sleep(0.01)
        return self.records[-1]


def settings_for(upstream_url: str, **extra: Any) -> config.Settings:
    """Settings with one OpenAI-compatible upstream named "fake"."""
    text = f"""
[server]
port = 0
ping_interval = {extra.pop("ping_interval", 10.0)}

[[upstream]]
name = "fake"
kind = "{extra.pop("kind", "openai")}"
base_url = "{upstream_url}"
{extra.pop("upstream_extra", "")}

[[route]]
model = "claude-*"
upstream = "fake"
target = "fake-model"
{extra.pop("routes", "")}
"""
    assert not extra, extra
    return config.parse(text)


async def start_proxy(settings: config.Settings) -> RunningProxy:
    bus = EventBus()
    running = RunningProxy(ProxyServer(settings, bus), bus)
    bus.subscribe(REQUEST_FINISHED, lambda _t, rec: running.records.append(rec))
    await running.server.start()
    return running


@pytest.fixture
async def proxy(fake_upstream: FakeOpenAIUpstream) -> AsyncIterator[RunningProxy]:
    running = await start_proxy(settings_for(fake_upstream.url))
    yield running
    await running.server.stop()
