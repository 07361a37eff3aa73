"""Pytest fixtures around the fake LM Studio (`fakes.lmstudio_server`).

tests/conftest.py can make them available everywhere with
`from fakes.lmstudio_fixtures import *`; a single test module can import the
ones it uses by name.

- `fake_lmstudio`: a started `FakeLMStudio` on 127.0.0.1:<free port>
  (its catalog and downloads: `fake_lmstudio.repository`).
- `lmstudio_home`: an empty home directory (no LM Studio server files), so
  discovery never reads the developer's real `~/.lmstudio`.
- `lmstudio_options`: `LMStudioOptions` aimed at the fake, with short health
  check and backoff intervals so reconnect tests run quickly.
- `lmstudio_bus`: the `EventBus` the service publishes on.
- `lmstudio_events`: every `lmstudio.*` event on that bus, as (topic, payload).
- `lmstudio_service`: a started `LMStudioService` connected to the fake.

Helpers: `dead_address()` (a loopback port nobody listens on) and
`eventually(condition)` (poll until true, fail after a timeout).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from fakes.lmstudio_server import FakeLMStudio
from lmbridge import config
from lmbridge.core.events import EventBus
from lmbridge.lmstudio import (
    TOPIC_DOWNLOAD_PROGRESS,
    TOPIC_LOAD_PROGRESS,
    TOPIC_LOAD_WARNING,
    TOPIC_LOADED,
    TOPIC_STATE,
    LMStudioOptions,
    LMStudioService,
)

__all__ = [
    "dead_address",
    "eventually",
    "fake_lmstudio",
    "lmstudio_bus",
    "lmstudio_events",
    "lmstudio_home",
    "lmstudio_options",
    "lmstudio_service",
]


def dead_address() -> str:
    """`127.0.0.1:<port>` with nothing listening (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"127.0.0.1:{port}"


async def eventually(
    condition: Callable[[], bool], timeout: float = 5.0, what: str = "condition"
) -> None:
    """Wait until `condition()` holds; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)


@pytest.fixture
async def fake_lmstudio() -> AsyncIterator[FakeLMStudio]:
    fake = FakeLMStudio()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def lmstudio_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    return home


@pytest.fixture
def lmstudio_options(fake_lmstudio: FakeLMStudio) -> LMStudioOptions:
    return LMStudioOptions(
        address=fake_lmstudio.address,
        probe_timeout=0.5,
        connect_timeout=3.0,
        health_interval=0.2,
        backoff_initial=0.05,
        backoff_max=0.4,
        load_timeout=10.0,
    )


@pytest.fixture
def lmstudio_bus() -> EventBus:
    return EventBus()


@pytest.fixture
def lmstudio_events(lmstudio_bus: EventBus) -> list[tuple[str, Any]]:
    events: list[tuple[str, Any]] = []

    def record(topic: str, payload: Any) -> None:
        events.append((topic, payload))

    for topic in (
        TOPIC_STATE,
        TOPIC_LOAD_PROGRESS,
        TOPIC_LOADED,
        TOPIC_LOAD_WARNING,
        TOPIC_DOWNLOAD_PROGRESS,
    ):
        lmstudio_bus.subscribe(topic, record)
    return events


@pytest.fixture
async def lmstudio_service(
    fake_lmstudio: FakeLMStudio,
    lmstudio_bus: EventBus,
    lmstudio_home: Path,
    lmstudio_options: LMStudioOptions,
) -> AsyncIterator[LMStudioService]:
    service = LMStudioService(
        lmstudio_bus,
        lmstudio_options,
        home=lmstudio_home,
        sdk_ports=(),
        fallback=fake_lmstudio.address,
    )
    service.start()
    await service.connect()
    yield service
    await service.aclose()


def lm_settings(address: str, extra: str = "") -> config.Settings:
    """Settings with one managed LM Studio upstream, "local", at `address`."""
    return config.parse(f"""
[server]
port = 0

[[upstream]]
name = "local"
kind = "lmstudio"
base_url = "http://{address}"

[lmstudio]
min_context = 8192
load_context_length = 8192
{extra}
""")
