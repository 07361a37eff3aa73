"""The aiohttp application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from lmbridge.config import Settings
from lmbridge.core import errors
from lmbridge.core.events import EventBus
from lmbridge.protocols.registry import front_door
from lmbridge.server import chat_api, chat_common, models_api, routes, security
from lmbridge.server.state import STATE, ProxyState
from lmbridge.store.sessions import SqliteSessionStore

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def protocol_for_path(path: str) -> str:
    """The protocol whose error shape a path's clients understand."""
    if path.startswith("/v1/messages"):
        return "anthropic"
    if path.startswith("/v1/responses"):
        return "responses"
    if path.startswith(SIMPLE_PREFIXES):
        return "simple"
    return "openai"


# The simple service's paths answer errors in its envelope.
SIMPLE_PREFIXES = ("/store", "/chat", "/models", "/help")


@web.middleware
async def error_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """Render every failure in the client's protocol: never a traceback."""
    try:
        return await handler(request)
    except errors.LMBridgeError as err:
        error = err
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[STATE].settings.server.max_body_mb
        error = errors.PayloadTooLarge(
            f"the request body is larger than {limit} MiB (server.max_body_mb)"
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        error = errors.from_status(
            exc.status, f"{exc.reason}: {request.method} {request.path}"
        )
    except Exception:
        log.exception("unexpected failure serving %s %s", request.method, request.path)
        error = errors.LMBridgeError(
            "LM Bridge failed unexpectedly; see its log for details"
        )
    protocol = protocol_for_path(request.path)
    if protocol == "simple":
        return chat_common.error_response(error)
    door = front_door(protocol)
    return web.Response(
        status=error.status,
        body=door.encode_error(error),
        content_type="application/json",
    )


def create_app(settings: Settings, bus: EventBus | None = None) -> web.Application:
    """Build the proxy app; upstream sessions open and close with it."""
    guard = security.Guard(settings.server)
    app = web.Application(
        client_max_size=settings.server.max_body_mb * 1024 * 1024,
        middlewares=[error_middleware, security.guard_middleware(guard)],
    )
    app.on_response_prepare.append(security.add_cors)
    state = ProxyState(settings, bus or EventBus())
    app[STATE] = state

    async def upstream_sessions(app: web.Application) -> AsyncIterator[None]:
        for upstream in state.upstreams.values():
            await upstream.start()
        yield
        for upstream in state.upstreams.values():
            await upstream.close()

    app.cleanup_ctx.append(upstream_sessions)
    routes.add_routes(app)
    models_api.setup(app)
    chat_api.setup(app)  # opens state.db
    app.cleanup_ctx.append(_persistent_sessions)
    return app


async def _persistent_sessions(app: web.Application) -> AsyncIterator[None]:
    """Keep sessions in the database once it is open (else in memory)."""
    state = app[STATE]
    if state.db is not None and state.db.is_open:
        state.sessions.store = SqliteSessionStore(state.db)
    await state.sessions.start()
    yield
