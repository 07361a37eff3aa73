"""Recovering from an LM Studio restart without restarting LM Bridge."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from fakes.lmstudio_fixtures import *  # noqa: F403 - the pytest fixtures
from fakes.lmstudio_fixtures import eventually
from fakes.lmstudio_server import FakeLMStudio
from lmbridge.core.events import EventBus
from lmbridge.lmstudio import (
    TOPIC_STATE,
    ConnectionState,
    ConnectionStatus,
    DiscoverySource,
    LMStudioOptions,
    LMStudioService,
)

Events = list[tuple[str, Any]]


def states(events: Events) -> list[ConnectionState]:
    return [p.state for t, p in events if t == TOPIC_STATE]


async def test_reconnects_after_lmstudio_restarts(
    lmstudio_service: LMStudioService,
    fake_lmstudio: FakeLMStudio,
    lmstudio_events: Events,
    expected_errors: Callable[[str], None],
) -> None:
    expected_errors("Websocket failed")  # the SDK logs each lost socket
    fake_lmstudio.preload("google/gemma-3-4b", context_length=8192)
    await eventually(
        lambda: lmstudio_service.loaded_context("google/gemma-3-4b") == 8192
    )
    connection = lmstudio_service.connection
    before = len(lmstudio_events)
    assert connection.state is ConnectionState.CONNECTED

    await fake_lmstudio.restart(down_for=0.3)
    # The periodic health check notices; the service reconnects by itself.
    await eventually(
        lambda: ConnectionState.DISCONNECTED in states(lmstudio_events[before:]),
        what="the loss to be noticed",
    )
    await eventually(
        lambda: connection.state is ConnectionState.CONNECTED, what="reconnect"
    )
    seen = states(lmstudio_events[before:])
    first_down = seen.index(ConnectionState.DISCONNECTED)
    assert seen[first_down + 1] is ConnectionState.CONNECTING
    assert seen[-1] is ConnectionState.CONNECTED
    status = lmstudio_events[-1][1]
    assert isinstance(status, ConnectionStatus)
    assert status.address == fake_lmstudio.address
    # LM Studio restarted empty: the cache says so.
    assert lmstudio_service.loaded_context("google/gemma-3-4b") is None

    # Same service object, working calls.
    assert lmstudio_service.connection is connection
    listed = await lmstudio_service.list_downloaded()
    assert len(listed.models) == 3
    loaded = await lmstudio_service.ensure_loaded("google/gemma-3-4b")
    assert loaded.context_length == 32768
    assert fake_lmstudio.ws_connections == 10  # two clients, five namespaces each


async def test_failed_call_reconnects_and_retries(
    fake_lmstudio: FakeLMStudio,
    lmstudio_bus: EventBus,
    lmstudio_home: Path,
    lmstudio_options: LMStudioOptions,
    expected_errors: Callable[[str], None],
) -> None:
    expected_errors("Websocket failed")
    # No health check in this test's lifetime: only the failed call can notice.
    options = msgspec.structs.replace(lmstudio_options, health_interval=60.0)
    async with LMStudioService(
        lmstudio_bus, options, home=lmstudio_home, sdk_ports=()
    ) as service:
        await service.connect()
        fake_lmstudio.preload("google/gemma-3-4b")
        await fake_lmstudio.drop_connections()
        assert service.connection.state is ConnectionState.CONNECTED
        loaded = await service.list_loaded()
        assert [m.key for m in loaded] == ["google/gemma-3-4b"]
        assert fake_lmstudio.ws_connections == 10
        assert service.connection.state is ConnectionState.CONNECTED


async def test_set_address_moves_to_another_lmstudio(
    lmstudio_service: LMStudioService, lmstudio_events: Events
) -> None:
    other = FakeLMStudio()
    await other.start()
    try:
        other.preload("qwen/qwen3-coder-30b", context_length=65536)
        lmstudio_service.connection.set_address(other.address)
        await eventually(
            lambda: (
                lmstudio_service.status.address == other.address
                and lmstudio_service.status.state is ConnectionState.CONNECTED
            ),
            what="the new address",
        )
        assert lmstudio_service.status.source is DiscoverySource.CONFIGURED
        loaded = await lmstudio_service.list_loaded()
        assert [m.context_length for m in loaded] == [65536]
    finally:
        await lmstudio_service.aclose()
        await other.stop()
