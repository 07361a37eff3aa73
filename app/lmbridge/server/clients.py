"""Limits on the proxy's clients: slow heads, slow bodies, idle and too
many connections.

aiohttp alone would keep a connection that sends nothing, or never ends
its request head, for about an hour, and one that never ends its body for
ever; the access token is checked only once the head is in, so anyone who
can reach the port could hold all of LM Bridge's file descriptors. So
(`[server]` settings, docs/security.md):

- a request head must arrive within `client_header_timeout` seconds of the
  connection's start, or of its first byte after an idle keep-alive;
- a body must arrive at `client_body_min_rate` bytes a second or more, on
  average, once `client_header_timeout` has passed;
- an idle keep-alive connection is closed after `client_idle_timeout`
  (aiohttp's own keep-alive timer);
- at most `max_connections` connections are open at once; more are closed
  as they come (with one warning a minute).

`ClientConnection` wraps each of aiohttp's protocol objects to count the
connection and time its head; the guard middleware tells it when a head
has arrived and a request is done, and watches the body (`watch_body`).
Nothing here runs per byte of an answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import cast

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from lmbridge.config import ServerSettings

log = logging.getLogger(__name__)


class _MalformedIsNotOurs(logging.Filter):
    """aiohttp logs a request its parser refuses (a NUL in a header, a bare
    CR) as an ERROR with a traceback quoting the client's bytes: anyone who
    can reach the port could fill the log. It is the client's fault, and
    the client got its 400: one INFO line, nothing quoted."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            reason = (exc.message or type(exc).__name__).splitlines()[0]
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg = "refused a malformed request from %s (%s)"
            record.args = (getattr(record, "args", ("?",)) or ("?",))[0], reason
            record.exc_info = record.exc_text = None
        return True


class _ClientGoneIsNotAFailure(logging.Filter):
    """A client that closed its connection while its answer was being
    written (aiohttp's ClientConnectionResetError is a ConnectionResetError)
    ends the handler with that error, which aiohttp logs as "Error handling
    request" at ERROR with a traceback. The request's record already says
    `client_gone`; this is one DEBUG line."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, ConnectionResetError):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            record.msg = "the client at %s went away while its answer was written"
            record.args = ((getattr(record, "args", ("?",)) or ("?",))[0],)
            record.exc_info = record.exc_text = None
        return True


# The logger aiohttp's connection handlers use (passed to the runner).
HTTP_LOG = logging.getLogger("lmbridge.server.http")
HTTP_LOG.addFilter(_MalformedIsNotOurs())
HTTP_LOG.addFilter(_ClientGoneIsNotAFailure())

# Seconds between two checks of a body's rate.
BODY_CHECK_EVERY = 1.0
# Seconds between two warnings that connections were refused.
WARN_EVERY = 60.0


class ClientLimits:
    """The limits of one running proxy, and its count of open connections."""

    def __init__(self, server: ServerSettings) -> None:
        self.header_timeout = server.client_header_timeout
        self.body_min_rate = server.client_body_min_rate
        self.idle_timeout = server.client_idle_timeout
        self.max_connections = server.max_connections
        self.open = 0
        self.refused = 0
        self._warned = float("-inf")

    def factory(
        self, inner: Callable[[], asyncio.Protocol]
    ) -> Callable[[], asyncio.Protocol]:
        """A protocol factory for `loop.create_server`: aiohttp's, wrapped."""
        return lambda: ClientConnection(inner(), self)

    def note_refused(self) -> None:
        self.refused += 1
        now = time.monotonic()
        if now - self._warned >= WARN_EVERY:
            self._warned = now
            log.warning(
                "%d client connections are open (server.max_connections);"
                " closing new ones until some end",
                self.open,
            )


CLIENT_LIMITS = web.AppKey("client_limits", ClientLimits)


class ClientConnection(asyncio.Protocol):
    """One client connection: aiohttp's protocol, counted and with its
    request heads timed."""

    def __init__(self, inner: asyncio.Protocol, limits: ClientLimits) -> None:
        self.inner = inner
        self.limits = limits
        self.transport: asyncio.Transport | None = None
        # The head being waited for must be in by `_deadline` (loop time;
        # None: no head is awaited). One timer serves many requests: it is
        # moved on when it fires early, not re-armed per request.
        self._deadline: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._busy = False
        self._refused = False

    # ------------------------------------------------------------ asyncio

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport; uvloop's (`lmbridge serve`) are not subclasses
        # of asyncio's classes, so this is a cast, not an isinstance check.
        transport = cast(asyncio.Transport, transport)
        limits = self.limits
        if limits.open >= limits.max_connections:
            self._refused = True
            limits.note_refused()
            transport.abort()
            return
        limits.open += 1
        self.transport = transport
        self.inner.connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if not self._busy and self._deadline is None:
            self._arm()  # the first byte of a new request's head
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self._refused:
            return None
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused:
            return
        self.limits.open -= 1
        self._stop_timer()
        self.transport = None
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    # ------------------------------------------------------------ requests

    def head_received(self) -> None:
        """A request's head is in (the middleware runs): no head is awaited."""
        self._busy = True
        self._disarm()

    def request_done(self) -> None:
        """The request was answered: the connection is idle (keep-alive)."""
        self._busy = False

    def _arm(self) -> None:
        loop = asyncio.get_running_loop()
        self._deadline = loop.time() + self.limits.header_timeout
        if self._timer is None:
            self._timer = loop.call_at(self._deadline, self._expired)

    def _disarm(self) -> None:
        self._deadline = None

    def _stop_timer(self) -> None:
        self._deadline = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        deadline = self._deadline
        if deadline is None or self._busy or self.transport is None:
            return
        loop = asyncio.get_running_loop()
        if loop.time() < deadline:  # armed again since: wait for that head
            self._timer = loop.call_at(deadline, self._expired)
            return
        log.info(
            "closed a client connection whose request head took over %g s"
            " (server.client_header_timeout)",
            self.limits.header_timeout,
        )
        self.transport.close()


def connection_of(request: web.Request) -> ClientConnection | None:
    """The `ClientConnection` a request came on (None in tests without one)."""
    transport = request.transport
    if transport is None:
        return None
    protocol = transport.get_protocol()
    return protocol if isinstance(protocol, ClientConnection) else None


def watch_body(request: web.Request, limits: ClientLimits) -> Callable[[], None]:
    """Close the connection when `request`'s body arrives slower than
    `limits.body_min_rate` on average, once `limits.header_timeout` has
    passed; returns the function that stops watching."""
    loop = asyncio.get_running_loop()
    content = request.content
    start = loop.time()
    grace = limits.header_timeout
    handle: list[asyncio.TimerHandle] = []

    def check() -> None:
        if content.is_eof():
            return
        elapsed = loop.time() - start
        if content.total_bytes < limits.body_min_rate * (elapsed - grace):
            transport = request.transport
            if transport is not None:
                log.info(
                    "closed a client whose body came slower than %d bytes/s"
                    " (server.client_body_min_rate)",
                    limits.body_min_rate,
                )
                transport.close()
            return
        handle[:] = [loop.call_later(BODY_CHECK_EVERY, check)]

    handle.append(loop.call_later(grace + BODY_CHECK_EVERY, check))

    def stop() -> None:
        for pending in handle:
            pending.cancel()

    return stop
