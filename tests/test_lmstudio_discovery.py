"""Discovery of a running LM Studio, and connecting through an HTTP proxy setting."""

from __future__ import annotations

import json
import os
from pathlib import Path

import lmstudio
import pytest
from aiohttp import web

from fakes.lmstudio_fixtures import *  # noqa: F403 - the pytest fixtures
from fakes.lmstudio_fixtures import dead_address
from fakes.lmstudio_server import SDK_VERSION, FakeLMStudio
from lmbridge.core.events import EventBus
from lmbridge.lmstudio import (
    Discovery,
    DiscoverySource,
    LMStudioOptions,
    LMStudioService,
    discover,
)
from lmbridge.lmstudio.discovery import lmstudio_homes, sdk_default_ports


def write_server_file(lms_home: Path, port: int) -> None:
    internal = lms_home / ".internal"
    internal.mkdir(parents=True)
    config = {"port": port, "networkInterface": "127.0.0.1", "cors": False}
    (internal / "http-server-config.json").write_text(json.dumps(config))


def test_fake_matches_installed_sdk() -> None:
    assert lmstudio.__version__ == SDK_VERSION, (
        f"tests/fakes/lmstudio_server.py speaks the websocket protocol of"
        f" lmstudio=={SDK_VERSION}, but lmstudio=={lmstudio.__version__} is"
        " installed: re-read the SDK's json_api.py / async_api.py for protocol"
        " changes, update the fake, then SDK_VERSION"
    )


def test_sdk_default_ports_come_from_the_sdk() -> None:
    assert sdk_default_ports() == (41343, 52993, 16141, 39414, 22931)


async def test_configured_address_wins(
    fake_lmstudio: FakeLMStudio, lmstudio_home: Path
) -> None:
    write_server_file(lmstudio_home / ".lmstudio", int(dead_address().split(":")[1]))
    found = await discover(
        fake_lmstudio.address, home=lmstudio_home, sdk_ports=(), fallback=dead_address()
    )
    assert found == Discovery(fake_lmstudio.address, DiscoverySource.CONFIGURED)


async def test_configured_url_form_is_accepted(fake_lmstudio: FakeLMStudio) -> None:
    found = await discover(f"http://{fake_lmstudio.address}/v1", sdk_ports=())
    assert found == Discovery(fake_lmstudio.address, DiscoverySource.CONFIGURED)


async def test_server_file_via_home_pointer(
    fake_lmstudio: FakeLMStudio, lmstudio_home: Path, tmp_path: Path
) -> None:
    relocated = tmp_path / "elsewhere" / "lmstudio"
    write_server_file(relocated, fake_lmstudio.port)
    (lmstudio_home / ".lmstudio-home-pointer").write_text(f"{relocated}\n")
    assert lmstudio_homes(lmstudio_home) == [relocated]
    found = await discover(
        None, home=lmstudio_home, sdk_ports=(), fallback=dead_address()
    )
    assert found == Discovery(fake_lmstudio.address, DiscoverySource.SERVER_FILE)


async def test_server_file_in_default_home(
    fake_lmstudio: FakeLMStudio, lmstudio_home: Path
) -> None:
    write_server_file(lmstudio_home / ".lmstudio", fake_lmstudio.port)
    found = await discover(
        None, home=lmstudio_home, sdk_ports=(), fallback=dead_address()
    )
    assert found == Discovery(fake_lmstudio.address, DiscoverySource.SERVER_FILE)


async def test_sdk_default_port(
    fake_lmstudio: FakeLMStudio, lmstudio_home: Path
) -> None:
    found = await discover(
        None,
        home=lmstudio_home,
        sdk_ports=(int(dead_address().split(":")[1]), fake_lmstudio.port),
        fallback=dead_address(),
    )
    assert found == Discovery(fake_lmstudio.address, DiscoverySource.SDK_DEFAULT)


async def test_fallback(fake_lmstudio: FakeLMStudio, lmstudio_home: Path) -> None:
    found = await discover(
        None, home=lmstudio_home, sdk_ports=(), fallback=fake_lmstudio.address
    )
    assert found == Discovery(fake_lmstudio.address, DiscoverySource.FALLBACK)


async def test_a_configured_address_is_the_only_candidate(
    fake_lmstudio: FakeLMStudio, lmstudio_home: Path
) -> None:
    """Another LM Studio answering elsewhere never stands in for the one named."""
    write_server_file(lmstudio_home / ".lmstudio", fake_lmstudio.port)
    found = await discover(
        dead_address(),
        home=lmstudio_home,
        sdk_ports=(fake_lmstudio.port,),
        fallback=fake_lmstudio.address,
    )
    assert found is None
    # The setup wizard asks where LM Studio runs at all.
    found = await discover(
        dead_address(),
        home=lmstudio_home,
        sdk_ports=(),
        fallback=dead_address(),
        search=True,
        # A live probe can outlast the default 0.5 s on a loaded 2-core CI
        # machine; the dead addresses are refused at once either way.
        probe_timeout=10.0,
    )
    assert found == Discovery(fake_lmstudio.address, DiscoverySource.SERVER_FILE)


async def test_relocated_home_and_ports(
    fake_lmstudio: FakeLMStudio,
    lmstudio_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """LMBRIDGE_DISCOVERY_HOME and _PORTS replace ~ and the default ports."""
    monkeypatch.setenv("LMBRIDGE_DISCOVERY_HOME", str(lmstudio_home))
    monkeypatch.setenv("LMBRIDGE_DISCOVERY_PORTS", f"{dead_address().split(':')[1]}")
    assert await discover(None) is None
    write_server_file(lmstudio_home / ".lmstudio", fake_lmstudio.port)
    assert await discover(None) == Discovery(
        fake_lmstudio.address, DiscoverySource.SERVER_FILE
    )
    monkeypatch.setenv("LMBRIDGE_DISCOVERY_HOME", str(lmstudio_home / "none"))
    monkeypatch.setenv("LMBRIDGE_DISCOVERY_PORTS", f"x, {fake_lmstudio.port}")
    assert await discover(None) == Discovery(
        fake_lmstudio.address, DiscoverySource.SDK_DEFAULT
    )


async def test_nothing_running(lmstudio_home: Path) -> None:
    found = await discover(
        dead_address(), home=lmstudio_home, sdk_ports=(), fallback=dead_address()
    )
    assert found is None


async def test_other_http_server_is_not_lmstudio(lmstudio_home: Path) -> None:
    async def greeting(request: web.Request) -> web.Response:
        return web.json_response({"hello": True})

    app = web.Application()
    app.router.add_get("/lmstudio-greeting", greeting)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        found = await discover(
            f"127.0.0.1:{site.port}",
            home=lmstudio_home,
            sdk_ports=(),
            fallback=dead_address(),
        )
    finally:
        await runner.cleanup()
    assert found is None


async def test_http_proxy_does_not_capture_loopback(
    fake_lmstudio: FakeLMStudio,
    lmstudio_home: Path,
    lmstudio_bus: EventBus,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy = f"http://{dead_address()}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy"):
        monkeypatch.setenv(name, proxy)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)

    found = await discover(fake_lmstudio.address, home=lmstudio_home, sdk_ports=())
    assert found is not None
    assert found.source is DiscoverySource.CONFIGURED

    # The SDK itself (httpx) would send its probe and websockets to the proxy.
    options = LMStudioOptions(address=fake_lmstudio.address, connect_timeout=10.0)
    async with LMStudioService(
        lmstudio_bus, options, home=lmstudio_home, sdk_ports=()
    ) as service:
        await service.connect()
        listed = await service.list_downloaded()
    assert len(listed.models) == 3
    assert "NO_PROXY" not in os.environ
    assert "no_proxy" not in os.environ
