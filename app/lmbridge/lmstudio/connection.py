"""The one `lmstudio.AsyncClient`, kept connected across LM Studio restarts.

The SDK opens its websockets once and never reconnects: after LM Studio
restarts, every call on the old client fails. `LMStudioConnection` owns the
client on the app's event loop and supervises it: discover, connect, watch
(a periodic cheap call, or a failure a caller reports), and on loss close the
old client and build a new one with capped exponential backoff. State changes
are published on the event bus (`TOPIC_STATE`, payload `ConnectionStatus`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path

import lmstudio

from lmbridge.core.events import EventBus

from .discovery import discover, normalize_address
from .errors import is_connection_error, not_running
from .structs import (
    DEFAULT_ADDRESS,
    TOPIC_STATE,
    ConnectionState,
    ConnectionStatus,
    Discovery,
)

log = logging.getLogger(__name__)

HealthCheck = Callable[[lmstudio.AsyncClient], Awaitable[None]]

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class LMStudioConnection:
    """Finds LM Studio, connects the SDK client and reconnects it when lost.

    `health_check(client)` runs right after each connect and then every
    `health_interval` seconds; a connection error from it (or one a caller
    passes to `report_failure`) starts a reconnect.
    """

    def __init__(
        self,
        bus: EventBus,
        *,
        address: str | None = None,
        home: Path | None = None,
        health_check: HealthCheck | None = None,
        probe_timeout: float = 0.5,
        connect_timeout: float = 5.0,
        health_interval: float = 5.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 10.0,
        sdk_ports: Sequence[int] | None = None,
        fallback: str = DEFAULT_ADDRESS,
    ) -> None:
        self._bus = bus
        self._configured = normalize_address(address) if address else None
        self._home = home
        self._health_check = health_check
        self._probe_timeout = probe_timeout
        self._connect_timeout = connect_timeout
        self._health_interval = health_interval
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._sdk_ports = sdk_ports
        self._fallback = fallback
        self._client: lmstudio.AsyncClient | None = None
        self._status = ConnectionStatus(
            state=ConnectionState.DISCONNECTED, address=self._configured
        )
        self._task: asyncio.Task[None] | None = None
        self._kick = asyncio.Event()
        self._lost = asyncio.Event()
        self._attempt: asyncio.Future[None] | None = None
        self._last_attempt = 0.0
        self._closed = False

    # -- public surface ----------------------------------------------------

    @property
    def status(self) -> ConnectionStatus:
        return self._status

    @property
    def state(self) -> ConnectionState:
        return self._status.state

    @property
    def address(self) -> str:
        """Where LM Studio is (or is expected): for messages and the GUI."""
        return self._status.address or self._configured or self._fallback

    def start(self) -> None:
        """Start supervising in the background (idempotent)."""
        if self._task is None and not self._closed:
            self._task = asyncio.create_task(self._supervise(), name="lmstudio-conn")

    async def client(self) -> lmstudio.AsyncClient:
        """The connected client; waits for one connection attempt if needed.

        Raises UpstreamUnavailable when LM Studio cannot be reached.
        """
        if self._client is not None:
            return self._client
        if self._closed:
            raise not_running(self.address)
        self.start()
        attempt = self._next_attempt()
        self._kick.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._connect_timeout + 2 * self._probe_timeout):
                await asyncio.shield(attempt)
        if self._client is None:
            raise not_running(self.address)
        return self._client

    def report_failure(self, exc: BaseException, client: lmstudio.AsyncClient) -> None:
        """A call on `client` failed: reconnect if the link is gone."""
        if client is self._client and is_connection_error(exc):
            log.info("LM Studio connection lost: %s", exc)
            self._client = None  # callers now wait for the reconnect
            self._lost.set()

    def reconnect(self) -> None:
        """Drop the current connection (if any) and connect again now."""
        self._client = None
        self._lost.set()
        self._kick.set()

    def set_address(self, address: str | None) -> None:
        """Use a new configured address (None: discover), reconnecting now."""
        self._configured = normalize_address(address) if address else None
        self.reconnect()

    async def aclose(self) -> None:
        """Stop supervising and close the SDK client."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._resolve_attempt()
        self._publish(ConnectionState.DISCONNECTED)

    # -- supervisor --------------------------------------------------------

    async def _supervise(self) -> None:
        delay = self._backoff_initial
        while True:
            self._lost.clear()
            self._publish(ConnectionState.CONNECTING, address=self._configured)
            self._last_attempt = time.monotonic()
            try:
                client, found = await self._open()
            except Exception as exc:
                message = getattr(exc, "message", None) or str(exc)
                log.debug("LM Studio connection attempt failed: %s", message)
                self._publish(ConnectionState.DISCONNECTED, error=message)
                self._resolve_attempt()
                await self._wait_retry(delay)
                delay = min(delay * 2, self._backoff_max)
                continue
            delay = self._backoff_initial
            self._client = client
            self._publish(ConnectionState.CONNECTED, address=found.address, found=found)
            self._resolve_attempt()
            try:
                await self._watch(client)
            finally:
                self._client = None
                await _close_quietly(client)
            self._publish(ConnectionState.DISCONNECTED, error="connection lost")

    async def _open(self) -> tuple[lmstudio.AsyncClient, Discovery]:
        found = await discover(
            self._configured,
            home=self._home,
            probe_timeout=self._probe_timeout,
            sdk_ports=self._sdk_ports,
            fallback=self._fallback,
        )
        if found is None:
            raise not_running(self._configured or self._fallback)
        client = lmstudio.AsyncClient(found.address)
        try:
            async with asyncio.timeout(self._connect_timeout):
                with _bypass_proxy(found.address.rsplit(":", 1)[0]):
                    await client.__aenter__()
        except BaseException:
            await _close_quietly(client)
            raise
        log.info("connected to LM Studio at %s (%s)", found.address, found.source)
        return client, found

    async def _watch(self, client: lmstudio.AsyncClient) -> None:
        """Return when the link is lost (or a reconnect is requested)."""
        while True:
            if not await self._check(client):
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._health_interval):
                    await self._lost.wait()
            if self._lost.is_set():
                return

    async def _check(self, client: lmstudio.AsyncClient) -> bool:
        if self._health_check is None:
            return True
        try:
            async with asyncio.timeout(self._connect_timeout):
                await self._health_check(client)
        except TimeoutError:
            log.info("LM Studio did not answer the health check")
            return False
        except Exception as exc:
            if is_connection_error(exc):
                log.info("LM Studio connection lost: %s", exc)
                return False
            log.warning("LM Studio health check failed: %s", exc)
        return True

    async def _wait_retry(self, delay: float) -> None:
        """Sleep `delay`, or less when a caller needs LM Studio now."""
        self._kick.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._kick.wait()
        # A kick never makes attempts more frequent than the first backoff step.
        gap = self._last_attempt + self._backoff_initial - time.monotonic()
        if gap > 0:
            await asyncio.sleep(gap)

    def _next_attempt(self) -> asyncio.Future[None]:
        if self._attempt is None or self._attempt.done():
            self._attempt = asyncio.get_running_loop().create_future()
        return self._attempt

    def _resolve_attempt(self) -> None:
        attempt, self._attempt = self._attempt, None
        if attempt is not None and not attempt.done():
            attempt.set_result(None)

    def _publish(
        self,
        state: ConnectionState,
        *,
        address: str | None = None,
        found: Discovery | None = None,
        error: str | None = None,
    ) -> None:
        status = ConnectionStatus(
            state=state,
            address=address or self._status.address or self._configured,
            source=found.source if found else self._status.source,
            error=error,
        )
        if status == self._status:
            return
        self._status = status
        self._bus.publish(TOPIC_STATE, status)


async def _close_quietly(client: lmstudio.AsyncClient) -> None:
    try:
        await client.aclose()
    except Exception as exc:
        log.debug("closing the LM Studio client failed: %s", exc)


@contextlib.contextmanager
def _bypass_proxy(host: str) -> Iterator[None]:
    """Keep HTTP(S)_PROXY away from the SDK's connections to LM Studio.

    The SDK (httpx, httpx-ws) trusts the proxy environment and offers no way
    to turn that off, so with HTTP_PROXY set it cannot reach 127.0.0.1. The
    SDK builds its httpx clients while connecting; for that moment NO_PROXY
    also names LM Studio's host and loopback.
    """
    saved = {key: os.environ.get(key) for key in ("NO_PROXY", "no_proxy")}
    wanted = [host.strip("[]"), *_LOOPBACK]
    for key, value in saved.items():
        hosts = [h.strip() for h in (value or "").split(",") if h.strip()]
        os.environ[key] = ",".join(hosts + [h for h in wanted if h not in hosts])
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
