"""The routes of front doors that say part of a request in its URL.

An `AddressedDoor` (protocols/base.py; Gemini's door is one) lists its
`endpoints`; each is served here by what it does, never by the door's
name: a model call goes through the one pipeline with the URL's
parameters handed to the door's parser, token counts and model lists are
answered locally in the door's shape. Errors on these paths take the
door's shape in the app's error middleware (`registry.door_for_path`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from lmbridge.core import errors
from lmbridge.protocols.base import (
    Action,
    Address,
    AddressedDoor,
    Endpoint,
    ListedModel,
)
from lmbridge.protocols.registry import addressed_doors
from lmbridge.server.keys import PIPELINE, SERVICES
from lmbridge.server.services import Services
from lmbridge.server.simple import Handler

Lister = Callable[[Services], Awaitable[dict[str, str]]]
"""Every model LM Bridge serves, id -> owner (routes.listed_models)."""


def address_of(request: web.Request) -> Address:
    """The URL's route parameters and query, as the door reads them."""
    return Address(params=dict(request.match_info), query=dict(request.query))


def _json(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="application/json")


def endpoint_handler(
    door: AddressedDoor, endpoint: Endpoint, lister: Lister
) -> Handler:
    """The aiohttp handler serving one endpoint of `door`."""

    async def generate(request: web.Request) -> web.StreamResponse:
        address = address_of(request)
        return await request.app[PIPELINE].serve(
            request, door, parse=lambda body: door.parse_call(body, address)
        )

    async def count(request: web.Request) -> web.StreamResponse:
        return _json(door.count_tokens(await request.read(), address_of(request)))

    async def list_models(request: web.Request) -> web.StreamResponse:
        owners = await lister(request.app[SERVICES])
        return _json(door.encode_models([ListedModel(i, o) for i, o in owners.items()]))

    async def get_model(request: web.Request) -> web.StreamResponse:
        services = request.app[SERVICES]
        model = request.match_info.get("model", "")
        owners = await lister(services)
        # Every name is routed somewhere (the default upstream at least).
        owner = owners.get(model) or services.router.resolve(model).upstream.name
        return _json(door.encode_model(ListedModel(model, owner)))

    handlers: dict[Action, Handler] = {
        Action.GENERATE: generate,
        Action.COUNT: count,
        Action.LIST_MODELS: list_models,
        Action.GET_MODEL: get_model,
    }
    handler = handlers[endpoint.action]
    if endpoint.shared:
        handler = _claimed(door, handler)
    handler.__doc__ = f"{endpoint.action} in the {door.name} protocol."
    return handler


def _claimed(door: AddressedDoor, handler: Handler) -> Handler:
    """`handler`, for the requests `door` claims; a 404 for the others."""

    async def serve(request: web.Request) -> web.StreamResponse:
        if not door.claims(request.headers, request.query):
            raise errors.NotFound(f"{request.method} {request.path} is not served")
        return await handler(request)

    return serve


def add_routes(app: web.Application, lister: Lister) -> None:
    """Serve every addressed door's endpoints."""
    for door in addressed_doors():
        for endpoint in door.endpoints:
            app.router.add_route(
                endpoint.method, endpoint.path, endpoint_handler(door, endpoint, lister)
            )
