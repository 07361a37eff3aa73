"""The aiohttp application factory.

`create_app` wires the services (built here, or handed in by the desktop
app, which keeps them across proxy restarts), the pipeline and the routes;
`answer_failure` (the guard middleware's) is the one place where a failure
outside the pipeline becomes an answer, in the protocol of the path it came
in on.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from lmbridge.config import Settings
from lmbridge.core import errors
from lmbridge.core.events import EventBus
from lmbridge.protocols.base import AnswerCodec
from lmbridge.protocols.openai_chat import OPENAI_CHAT
from lmbridge.protocols.registry import door_for_path
from lmbridge.protocols.store_api import STORE
from lmbridge.server import chat_api, models_api, routes, security, store_api
from lmbridge.server.keys import PIPELINE, SERVICES
from lmbridge.server.pipeline import Pipeline, error_response
from lmbridge.server.services import Services

log = logging.getLogger(__name__)

# The simple services' paths answer errors in their envelope.
SIMPLE_PREFIXES = ("/store", "/chat", "/models", "/help")


def codec_for_path(path: str) -> AnswerCodec:
    """The codec whose error shape a path's clients understand."""
    door = door_for_path(path)
    if door is not None:
        return door
    if path.startswith(SIMPLE_PREFIXES):
        return STORE  # the envelope
    return OPENAI_CHAT


def payload_too_large(settings: Settings) -> errors.PayloadTooLarge:
    limit = settings.server.max_body_mb
    return errors.PayloadTooLarge(
        f"the request body is larger than {limit} MiB (server.max_body_mb)"
    )


def answer_failure(request: web.Request, failure: Exception) -> web.StreamResponse:
    """Render a failure in the client's protocol: never a traceback (the
    guard middleware's `failed`; redirects and other non-errors go on)."""
    if isinstance(failure, ConnectionResetError):
        # The client went away mid-answer (the record says so): nothing to
        # answer, and not a failure of ours; aiohttp ends the connection.
        raise failure
    if isinstance(failure, errors.LMBridgeError):
        error = failure
    elif isinstance(failure, web.HTTPRequestEntityTooLarge):
        error = payload_too_large(request.app[SERVICES].settings)
    elif isinstance(failure, web.HTTPException):
        if failure.status < 400:
            raise failure
        error = errors.from_status(
            failure.status, f"{failure.reason}: {request.method} {request.path}"
        )
    else:
        log.error(
            "unexpected failure serving %s %s",
            request.method,
            request.path,
            exc_info=failure,
        )
        error = errors.LMBridgeError(
            "LM Bridge failed unexpectedly; see its log for details"
        )
    return error_response(codec_for_path(request.path), error)


def create_app(
    settings: Settings,
    bus: EventBus | None = None,
    *,
    services: Services | None = None,
    capture_bodies: bool = False,
) -> web.Application:
    """Build the proxy app.

    Without `services`, the app builds its own and opens and closes them
    with itself; given ones belong to the caller.
    """
    guard = security.Guard(settings.server)
    app = web.Application(
        client_max_size=settings.server.max_body_mb * 1024 * 1024,
        middlewares=[security.guard_middleware(guard, answer_failure)],
    )
    if guard.origins:  # CORS headers go only to allowed origins
        app.on_response_prepare.append(security.add_cors)
    owned = services is None
    if services is None:
        services = Services(settings, bus)
    app[SERVICES] = services
    app[PIPELINE] = Pipeline(services, capture_bodies=capture_bodies)
    if owned:
        app.cleanup_ctx.append(_lifecycle)
    routes.add_routes(app)
    models_api.setup(app)
    chat_api.setup(app)
    store_api.setup(app)
    return app


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    services = app[SERVICES]
    await services.start()
    yield
    await services.close()
