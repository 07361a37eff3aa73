"""Routes: the model front doors, /v1/models and /health.

Every front door in the protocol registry is served on its paths through
the one pipeline; adding a protocol adds its routes. `/health` tells
anyone that LM Bridge runs; its details need the access token, and its
upstream probes are cached (`upstreams/health.py`).
"""

from __future__ import annotations

import asyncio
import logging
import time

import msgspec
from aiohttp import web

from lmbridge import __version__
from lmbridge.core import errors
from lmbridge.protocols import jsonutil, tokens
from lmbridge.protocols.anthropic import ANTHROPIC
from lmbridge.protocols.base import FrontDoor, ListedModel
from lmbridge.protocols.registry import FRONT_DOORS, addressed_doors
from lmbridge.server import door_endpoints
from lmbridge.server.keys import HEALTH, PIPELINE, SERVICES
from lmbridge.server.security import AUTHORIZED
from lmbridge.server.services import Services
from lmbridge.server.simple import Handler
from lmbridge.upstreams.health import HealthProbes
from lmbridge.upstreams.router import picker_id

log = logging.getLogger(__name__)

_encode = msgspec.json.Encoder()


def door_handler(door: FrontDoor) -> Handler:
    """The route serving `door` through the pipeline."""

    async def serve(request: web.Request) -> web.StreamResponse:
        return await request.app[PIPELINE].serve(request, door)

    serve.__doc__ = f"A model request in the {door.name} protocol."
    return serve


async def count_tokens(request: web.Request) -> web.Response:
    """Anthropic token counting, answered locally without the upstream.

    Claude Code's IDE extensions call this dozens of times a second at
    start-up; see protocols/tokens.py for how the estimate is made.
    """
    raw = jsonutil.decode_object(await request.read())
    # count_tokens bodies carry no max_tokens; the Messages parser wants one.
    raw.setdefault("max_tokens", 1)
    req = ANTHROPIC.parse_request(_encode.encode(raw))
    return web.json_response({"input_tokens": tokens.count_request(req)})


async def listed_models(services: Services) -> dict[str, str]:
    """Every upstream's models plus route aliases, each once: id -> owner."""
    upstreams = list(services.upstreams.values())
    listed = await asyncio.gather(
        *(u.list_models() for u in upstreams), return_exceptions=True
    )
    owners: dict[str, str] = {}
    for alias in services.router.aliases():
        owners.setdefault(alias, "lmbridge")
    for upstream, ids in zip(upstreams, listed, strict=True):
        if isinstance(ids, BaseException):
            if not isinstance(ids, errors.LMBridgeError):
                raise ids
            # The other upstreams' models are still worth listing.
            log.warning("models of %s not listed: %s", upstream.name, ids.message)
            continue
        for model_id in ids:
            owners.setdefault(model_id, upstream.name)
    return owners


async def models(request: web.Request) -> web.Response:
    """Every upstream's models plus route aliases, each listed once.

    Answers in the shape of a door that claims the request
    (`AddressedDoor.claims`: Gemini's SDK by its headers), in Anthropic's
    list shape when the client sends `anthropic-version` (model ids as
    Claude Code's picker keeps them), else in OpenAI's.
    """
    owners = await listed_models(request.app[SERVICES])
    for door in addressed_doors():
        if door.claims(request.headers, request.query):
            listed = [ListedModel(i, owner) for i, owner in owners.items()]
            body = door.encode_models(listed)
            return web.Response(body=body, content_type="application/json")
    if any(name in request.headers for name in ANTHROPIC.wire.headers):
        # Claude Code's picker keeps only ids naming claude or anthropic:
        # the others are offered as `claude/<id>` (upstreams/router.py).
        names: dict[str, str] = {}
        for model_id in owners:
            names.setdefault(picker_id(model_id), model_id)
        ids = list(names)
        data = [
            {
                "type": "model",
                "id": listed_id,
                "display_name": model_id,
                "created_at": "2025-01-01T00:00:00Z",
            }
            for listed_id, model_id in names.items()
        ]
        return web.json_response(
            {
                "data": data,
                "has_more": False,
                "first_id": ids[0] if ids else None,
                "last_id": ids[-1] if ids else None,
            }
        )
    return web.json_response(
        {
            "object": "list",
            "data": [
                {"id": model_id, "object": "model", "created": 0, "owned_by": owner}
                for model_id, owner in owners.items()
            ],
        }
    )


async def health(request: web.Request) -> web.Response:
    """Whether LM Bridge runs; with the access token (or none set), also
    its version and whether each upstream answers (probes cached)."""
    if not request.get(AUTHORIZED, False):
        return web.json_response({"status": "ok"})
    services = request.app[SERVICES]
    probes = [u.check for u in services.upstreams.values()]
    checks = await request.app[HEALTH].checks(probes)
    upstreams = [msgspec.to_builtins(check) for check in checks]
    return web.json_response(
        {
            "status": "ok",
            "version": __version__,
            "uptime_s": round(time.time() - services.started, 1),
            "upstreams": upstreams,
        }
    )


def add_routes(app: web.Application) -> None:
    for door in FRONT_DOORS.values():
        handler = door_handler(door)
        for path in door.paths:
            app.router.add_post(path, handler)
    app.router.add_post("/v1/messages/count_tokens", count_tokens)
    app.router.add_get("/v1/models", models)
    app[HEALTH] = HealthProbes()
    app.router.add_get("/health", health)
    door_endpoints.add_routes(app, listed_models)
