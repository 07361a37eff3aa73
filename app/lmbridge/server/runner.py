"""Runs the proxy app on an existing event loop (headless or inside Qt),
with limits on slow, idle and too many clients (`server/clients.py`)."""

from __future__ import annotations

import errno
import logging
from typing import Any

from aiohttp import web

from lmbridge import config
from lmbridge.config import Settings
from lmbridge.core.errors import PortInUse
from lmbridge.core.events import EventBus
from lmbridge.server.app import create_app
from lmbridge.server.clients import CLIENT_LIMITS, HTTP_LOG, ClientLimits
from lmbridge.server.keys import SERVICES
from lmbridge.server.services import Services

log = logging.getLogger(__name__)


class _LimitedRunner(web.AppRunner):
    """An AppRunner whose sites listen with `limits` on every connection."""

    def __init__(self, app: web.Application, limits: ClientLimits, **kwargs: Any):
        super().__init__(app, **kwargs)
        self.limits = limits

    @property
    def server(self) -> Any:
        # Sites call this as the protocol factory of loop.create_server.
        inner = super().server
        return None if inner is None else self.limits.factory(inner)


class ProxyServer:
    """Start and stop the proxy; one instance per running proxy."""

    def __init__(
        self,
        settings: Settings,
        bus: EventBus | None = None,
        *,
        capture_bodies: bool = False,
        services: Services | None = None,
    ) -> None:
        self.settings = settings
        self.bus = bus or EventBus()
        self.capture_bodies = capture_bodies
        # Given services belong to the caller; else the app builds its own.
        self._services = services
        self.app: web.Application | None = None
        self._runner: web.AppRunner | None = None
        self.limits: ClientLimits | None = None
        self.host = settings.server.host
        self.port = settings.server.port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def services(self) -> Services | None:
        """The running app's services."""
        return self.app[SERVICES] if self.app is not None else None

    @property
    def running(self) -> bool:
        return self._runner is not None

    async def start(self) -> None:
        """Bind and serve. Raises PortInUse with a one-line explanation, and
        ConfigError for an address off loopback without a strong token."""
        config.check_exposure(self.settings.server, "server")
        self.app = create_app(
            self.settings,
            self.bus,
            services=self._services,
            capture_bodies=self.capture_bodies,
        )
        self.limits = limits = ClientLimits(self.settings.server)
        self.app[CLIENT_LIMITS] = limits
        runner = _LimitedRunner(
            self.app,
            limits,
            handler_cancellation=True,
            access_log=None,
            shutdown_timeout=2.0,
            keepalive_timeout=limits.idle_timeout,
            logger=HTTP_LOG,
        )
        await runner.setup()
        port = self.settings.server.port
        tries = 20 if self.settings.server.port_fallback and port else 1
        for attempt in range(tries):
            site = web.TCPSite(runner, self.host, port + attempt if port else 0)
            try:
                await site.start()
                break
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE and attempt + 1 < tries:
                    continue
                await runner.cleanup()
                if exc.errno == errno.EADDRINUSE:
                    raise PortInUse(
                        f"port {port + attempt} on {self.host} is already in use"
                        " (is LM Bridge already running?) — stop that program,"
                        " start with --port N, or set server.port_fallback = true"
                    ) from None
                raise PortInUse(
                    f"cannot listen on {self.host}:{port + attempt}: {exc.strerror}"
                ) from None
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else port + attempt
        if attempt:
            log.warning("port %d was busy; listening on %d instead", port, self.port)
        self._runner = runner

    async def stop(self) -> None:
        """Stop accepting, let streams finish briefly, close upstreams."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
