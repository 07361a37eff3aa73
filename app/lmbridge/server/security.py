"""Only the user's own tools may use the proxy.

A web page in the user's browser can send requests to 127.0.0.1 too; it
must not be able to spend Azure quota, load models or read chats. So, before
any route runs:

- `Origin`: a request carrying one is refused (403) unless the origin is in
  `server.allowed_origins`; CORS headers go only to those origins, and
  preflights from others are refused.
- `Host` must name the bound address or localhost (DNS rebinding: a page on
  evil.example whose name resolves to 127.0.0.1 sends `Host: evil.example`).
  It is parsed strictly: one host (a name, an IPv4 address or a bracketed
  IPv6 address), an optional port, nothing else (`127.0.0.1:1@evil.com`,
  `localhost, evil.com` and `127.0.0.1/x` are refused like a foreign host).
- Requests with a body must say `Content-Type: application/json`, so no
  CORS-simple `text/plain` or form POST reaches a route.
- With an access token configured (required when binding a non-loopback
  address, and then at least 16 characters without spaces), clients send it
  as `Authorization: Bearer` or `x-api-key`; compared in constant time,
  whatever bytes the headers hold (anything but the token is a 401 in the
  client's protocol). Repeated failures from one address are answered
  more and more slowly (`FailedLogins`).
- `/health` answers everyone, but only with `{"status": "ok"}`; its
  details (upstreams, their addresses and errors) need the token.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from lmbridge.config import ServerSettings
from lmbridge.core import errors
from lmbridge.core.redact import SECRETS
from lmbridge.protocols.registry import FRONT_DOORS, addressed_doors
from lmbridge.server.clients import CLIENT_LIMITS, connection_of, watch_body

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})
# RFC 9110 Host: uri-host [ ":" port ]; no userinfo, path, list or spaces.
_HOST = re.compile(
    r"(?P<name>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)"
    r"(?::(?P<port>[0-9]{1,5}))?"
)
# How many distinct Host headers `Guard.check_host` remembers its verdict on.
HOSTS_REMEMBERED = 64
_CORS_METHODS = "GET, POST, PUT, DELETE, OPTIONS"
_CORS_OWN_HEADERS = ("X-Session-Id", "X-Claude-Code-Session-Id")


def cors_allowed_headers() -> str:
    """The request headers a browser may send: each front door's own (key
    header, version and feature headers) and the session headers."""
    names = ["Authorization", "Content-Type"]
    for door in FRONT_DOORS.values():
        wire = door.wire
        for name in (wire.key_header, *wire.headers, *wire.forwarded):
            if name.lower() not in (n.lower() for n in names):
                names.append(name)
    return ", ".join([*names, *_CORS_OWN_HEADERS])


class Guard:
    """Checks every request against the server settings."""

    def __init__(self, server: ServerSettings) -> None:
        self.origins = frozenset(o.rstrip("/") for o in server.allowed_origins)
        self.hosts = set(_LOCAL_NAMES) | {server.host, f"[{server.host}]"}
        token = server.token()
        SECRETS.add(token)
        self.token = token.encode()
        self.failures = FailedLogins()
        # Host headers already judged: clients send the same one every time,
        # so the parse runs once per value (bounded: anyone may send any).
        self._hosts_seen: dict[str, bool] = {}

    def check_host(self, request: web.Request) -> None:
        host = request.headers.get("Host", "")
        allowed = self._hosts_seen.get(host)
        if allowed is None:
            allowed = host_allowed(host, self.hosts)
            if len(self._hosts_seen) < HOSTS_REMEMBERED:
                self._hosts_seen[host] = allowed
        if not allowed:
            raise errors.PermissionDenied(
                f"Host {host!r} is not this proxy's address; LM Bridge answers"
                " only requests addressed to localhost or its bound address"
            )

    def check_origin(self, request: web.Request) -> str | None:
        origin = request.headers.get("Origin")
        if origin is None:
            return None
        if origin.rstrip("/") not in self.origins:
            raise errors.PermissionDenied(
                f"requests from web pages ({origin}) are refused; add the origin"
                " to server.allowed_origins to allow it"
            )
        return origin

    def check_content_type(self, request: web.Request) -> None:
        if request.method in ("GET", "HEAD", "OPTIONS") or not request.body_exists:
            return
        # What the SDKs send, taken as it is; anything else is parsed.
        if request.headers.get("Content-Type") == "application/json":
            return
        if request.content_type != "application/json":
            raise errors.InvalidRequest(
                f"send the body as JSON with Content-Type: application/json"
                f" (got {request.content_type!r})",
                status=415,
            )

    def authorized(self, request: web.Request) -> bool:
        """Whether `request` carries the access token (True when none is
        set). Header bytes that are not UTF-8 are compared as they came."""
        if not self.token:
            return True
        given = request.headers.get("x-api-key", "")
        auth = request.headers.get("Authorization", "")
        if auth[:7].lower() == "bearer ":
            given = auth[7:].strip()
        for door in addressed_doors():  # a protocol's own way (x-goog-api-key)
            given = door.presented_key(request.headers, request.query) or given
        try:
            presented = given.encode("utf-8", "surrogateescape")
        except UnicodeError:  # lone surrogates that no byte made
            presented = b""
        return hmac.compare_digest(presented, self.token)

    def admit(self, request: web.Request) -> web.StreamResponse | None:
        """The checks on a request's head (an `LMBridgeError` if it fails):
        a preflight's answer, `REFUSED` without the access token, or None
        for the route to answer."""
        self.check_host(request)
        origin = self.check_origin(request)
        if request.method == "OPTIONS" and origin is not None:
            return web.Response(status=204, headers=cors_headers(origin))
        self.check_content_type(request)
        if request.path == "/health":
            request[AUTHORIZED] = self.authorized(request)
        elif not self.authorized(request):
            return REFUSED
        if origin is not None:
            request[CORS_ORIGIN] = origin
        return None

    async def refuse(self, request: web.Request) -> None:
        """Raise `AuthenticationFailed` for a request without the token,
        after a growing delay when its address keeps failing."""
        peer = request.remote or ""
        delay = self.failures.failed(peer)
        if delay:
            await asyncio.sleep(delay)
        raise errors.AuthenticationFailed(
            "this proxy requires its access token: send it as"
            " Authorization: Bearer <token> or x-api-key (or as the API key"
            " of the client's own protocol)"
        )


class FailedLogins:
    """Wrong tokens per client address: after `free` failures within
    `window` seconds, each 401 waits longer (doubling up to `longest`
    seconds), so guessing the token gets slow. Any address, loopback too."""

    def __init__(
        self,
        free: int = 5,
        window: float = 60.0,
        longest: float = 4.0,
        first: float = 0.25,
        capacity: int = 4096,
    ) -> None:
        self.free = free
        self.window = window
        self.longest = longest
        self.first = first
        self.capacity = capacity
        self._seen: dict[str, tuple[int, float]] = {}

    def failed(self, peer: str) -> float:
        """Count a failure from `peer`; the seconds to wait before answering."""
        now = time.monotonic()
        count, since = self._seen.get(peer, (0, now))
        if now - since > self.window:
            count, since = 0, now
        count += 1
        self._seen[peer] = (count, since)
        if len(self._seen) > self.capacity:
            self._prune(now)
        if count <= self.free:
            return 0.0
        if count == self.free + 1:
            log.warning(
                "%d wrong access tokens from %s within %.0f s; answering it slowly",
                count,
                peer or "an unknown address",
                self.window,
            )
        return min(self.longest, self.first * 2.0 ** (count - self.free - 1))

    def _prune(self, now: float) -> None:
        for peer, (_count, since) in list(self._seen.items()):
            if now - since > self.window:
                del self._seen[peer]
        while len(self._seen) > self.capacity:
            del self._seen[next(iter(self._seen))]


def host_allowed(host: str, names: set[str]) -> bool:
    """Whether `host` (a Host header) is exactly one of `names`, with an
    optional port and nothing else."""
    found = _HOST.fullmatch(host)
    if found is None:
        return False
    port = found["port"]
    if port is not None and int(port) > 65535:
        return False
    return found["name"].lower() in names


def cors_headers(origin: str) -> dict[str, str]:
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": _CORS_METHODS,
        "Access-Control-Allow-Headers": cors_allowed_headers(),
        "Access-Control-Max-Age": "600",
        "Vary": "Origin",
    }


# What `Guard.admit` returns for a request without the access token.
REFUSED = web.Response(status=401)

# Answers a failure of a guarded request (or raises it again): the app's
# error rendering, in the client's protocol (server/app.py).
Failed = Callable[[web.Request, Exception], web.StreamResponse]


def guard_middleware(guard: Guard, failed: Failed) -> Middleware:
    """The proxy's one aiohttp middleware: `guard`'s checks before any route,
    the client connection's bookkeeping around it, and every failure
    answered by `failed` (one coroutine layer for all of it: this runs for
    every request)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        connection = connection_of(request)
        if connection is not None:
            connection.head_received()
        limits = request.app.get(CLIENT_LIMITS)
        watching = None
        # A small body came with its head: nothing to watch.
        if limits is not None and request.body_exists and not request.content.is_eof():
            watching = watch_body(request, limits)
        try:
            early = guard.admit(request)
            if early is REFUSED:
                await guard.refuse(request)
            if early is not None:
                return early
            return await handler(request)
        except Exception as exc:  # answered below, once the connection is free
            failure = exc
        finally:
            if watching is not None:
                watching()
            if connection is not None:
                connection.request_done()
        return failed(request, failure)

    return middleware


CORS_ORIGIN = web.RequestKey("cors_origin", str)
# Set on /health: whether the caller showed the access token (or none is set).
AUTHORIZED = web.RequestKey("authorized", bool)


async def add_cors(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: CORS headers for allowed origins, streams included."""
    origin = request.get(CORS_ORIGIN)
    if isinstance(origin, str):
        response.headers.update(cors_headers(origin))
