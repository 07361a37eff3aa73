"""The LM Bridge a launched client talks to: the one running, or one of ours.

`running_bridge` asks the configured address's `/health` with the access
token: an LM Bridge that knows the token answers with its version and
upstreams (the tray app's proxy, or `lmbridge serve`). Anything else — no
answer, another program, an LM Bridge with another token — is not used.
`headless_bridge` then runs the proxy in this process on a free loopback
port, with the code `lmbridge serve` runs (`ProxyServer`), for the session
only.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import msgspec

from lmbridge import config
from lmbridge.core.errors import LaunchError, LocalError
from lmbridge.core.events import EventBus
from lmbridge.integrations.base import Endpoint, connect_host
from lmbridge.lmstudio import LMStudioService

PROBE_TIMEOUT = 2.0


@dataclass(frozen=True)
class Bridge:
    """The LM Bridge of this session."""

    endpoint: Endpoint
    version: str
    ours: bool  # started by this launch (stopped when it ends)


def endpoint_of(settings: config.Settings, host: str = "", port: int = 0) -> Endpoint:
    """The endpoint at `host:port` (default: the configured address)."""
    server = settings.server
    shown = connect_host(host or server.host)
    return Endpoint(
        root=f"http://{shown}:{port or server.port}",
        token=server.token(),
        token_env=server.access_token_env,
    )


async def _get_json(
    session: aiohttp.ClientSession, url: str, token: str
) -> tuple[int, object]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with session.get(url, headers=headers) as resp:
        body = await resp.read()
    try:
        return resp.status, msgspec.json.decode(body)
    except msgspec.DecodeError:
        return resp.status, None


async def running_bridge(settings: config.Settings) -> Bridge | None:
    """The LM Bridge answering on the configured address, if it takes our
    token; None when nothing (or something else) answers there. Raises
    LaunchError for an LM Bridge that refuses the token."""
    endpoint = endpoint_of(settings)
    timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            status, body = await _get_json(
                session, f"{endpoint.root}/health", endpoint.token
            )
    except (aiohttp.ClientError, TimeoutError):
        return None
    if status != 200 or not isinstance(body, dict):
        return None
    if "version" in body and "upstreams" in body:
        return Bridge(endpoint, str(body["version"]), ours=False)
    if body == {"status": "ok"}:
        raise LaunchError(
            f"the LM Bridge at {endpoint.root} does not accept the access token "
            "of this configuration — use the same config (--config) or token"
        )
    return None


async def offered_models(bridge: Bridge) -> list[str] | None:
    """The model names the bridge's /v1/models lists (None: it did not say)."""
    timeout = aiohttp.ClientTimeout(total=10)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            status, body = await _get_json(
                session, f"{bridge.endpoint.v1}/models", bridge.endpoint.token
            )
    except (aiohttp.ClientError, TimeoutError):
        return None
    if status != 200 or not isinstance(body, dict):
        return None
    data = body.get("data")
    if not isinstance(data, list):
        return None
    return [str(m["id"]) for m in data if isinstance(m, dict) and "id" in m]


@contextlib.asynccontextmanager
async def headless_bridge(
    settings: config.Settings, lmstudio: LMStudioService | None = None
) -> AsyncIterator[Bridge]:
    """LM Bridge in this process on a free loopback port, for the session
    (with `lmstudio`, the session's connected LM Studio service, if any)."""
    from lmbridge import __version__
    from lmbridge.server.runner import ProxyServer
    from lmbridge.server.services import Services

    server_settings = msgspec.structs.replace(
        settings.server, host="127.0.0.1", port=0, port_fallback=False
    )
    session_settings = msgspec.structs.replace(settings, server=server_settings)
    bus = EventBus()
    services = Services(session_settings, bus, lmstudio=lmstudio)
    await services.start()
    try:
        server = ProxyServer(session_settings, bus, services=services)
        try:
            await server.start()
        except LocalError as exc:
            raise LaunchError(
                f"cannot start LM Bridge for this session: {exc.message}"
            ) from exc
        try:
            yield Bridge(
                endpoint_of(session_settings, server.host, server.port),
                __version__,
                ours=True,
            )
        finally:
            await server.stop()
    finally:
        await services.close()
