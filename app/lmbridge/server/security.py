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
  address), clients send it as `Authorization: Bearer` or `x-api-key`;
  compared in constant time.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from lmbridge.config import ServerSettings
from lmbridge.core import errors

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})
# RFC 9110 Host: uri-host [ ":" port ]; no userinfo, path, list or spaces.
_HOST = re.compile(
    r"(?P<name>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)"
    r"(?::(?P<port>[0-9]{1,5}))?"
)
_CORS_METHODS = "GET, POST, PUT, DELETE, OPTIONS"
_CORS_HEADERS = (
    "Authorization, Content-Type, x-api-key, anthropic-version, anthropic-beta,"
    " X-Session-Id, X-Claude-Code-Session-Id"
)


class Guard:
    """Checks every request against the server settings."""

    def __init__(self, server: ServerSettings) -> None:
        self.origins = frozenset(o.rstrip("/") for o in server.allowed_origins)
        self.hosts = set(_LOCAL_NAMES) | {server.host, f"[{server.host}]"}
        self.token = server.token().encode()

    def check_host(self, request: web.Request) -> None:
        host = request.headers.get("Host", "")
        if not host_allowed(host, self.hosts):
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
        if request.content_type != "application/json":
            raise errors.InvalidRequest(
                f"send the body as JSON with Content-Type: application/json"
                f" (got {request.content_type!r})",
                status=415,
            )

    def check_token(self, request: web.Request) -> None:
        if not self.token:
            return
        given = request.headers.get("x-api-key", "")
        auth = request.headers.get("Authorization", "")
        if auth[:7].lower() == "bearer ":
            given = auth[7:].strip()
        if not hmac.compare_digest(given.encode(), self.token):
            raise errors.AuthenticationFailed(
                "this proxy requires its access token: send it as"
                " Authorization: Bearer <token> or x-api-key"
            )


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
        "Access-Control-Allow-Headers": _CORS_HEADERS,
        "Access-Control-Max-Age": "600",
        "Vary": "Origin",
    }


def guard_middleware(guard: Guard) -> Middleware:
    """The aiohttp middleware enforcing `guard`; it runs before any route."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        guard.check_host(request)
        origin = guard.check_origin(request)
        if request.method == "OPTIONS" and origin is not None:
            return web.Response(status=204, headers=cors_headers(origin))
        guard.check_content_type(request)
        if request.path != "/health":
            guard.check_token(request)
        if origin is not None:
            request[CORS_ORIGIN] = origin
        return await handler(request)

    return middleware


CORS_ORIGIN = web.RequestKey("cors_origin", str)


async def add_cors(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: CORS headers for allowed origins, streams included."""
    origin = request.get(CORS_ORIGIN)
    if isinstance(origin, str):
        response.headers.update(cors_headers(origin))
