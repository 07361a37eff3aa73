"""Routes: the model front doors, /v1/models and /health."""

from __future__ import annotations

import asyncio
import time

import msgspec
from aiohttp import web

from lmbridge import __version__
from lmbridge.protocols.registry import front_door
from lmbridge.server import proxy
from lmbridge.server.state import STATE

_encode = msgspec.json.Encoder().encode


async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await proxy.handle(request, front_door("openai"))


async def messages(request: web.Request) -> web.StreamResponse:
    return await proxy.handle(request, front_door("anthropic"))


async def responses(request: web.Request) -> web.StreamResponse:
    return await proxy.handle(request, front_door("responses"))


async def count_tokens(request: web.Request) -> web.Response:
    """Anthropic token counting, answered locally without the upstream.

    Claude Code's IDE extensions call this dozens of times a second at
    start-up; see protocols/tokens.py for how the estimate is made.
    """
    from lmbridge.protocols import jsonutil, tokens

    raw = jsonutil.decode_object(await request.read())
    # count_tokens bodies carry no max_tokens; the Messages parser wants one.
    raw.setdefault("max_tokens", 1)
    req = front_door("anthropic").parse_request(_encode(raw))
    return web.json_response({"input_tokens": tokens.count_request(req)})


async def models(request: web.Request) -> web.Response:
    """Every upstream's models plus route aliases, each listed once.

    Answers in Anthropic's list shape when the client sends
    `anthropic-version`, else in OpenAI's.
    """
    state = request.app[STATE]
    upstreams = list(state.upstreams.values())
    listed = await asyncio.gather(*(u.list_models() for u in upstreams))
    owners: dict[str, str] = {}
    for alias in state.router.aliases():
        owners.setdefault(alias, "lmbridge")
    for upstream, ids in zip(upstreams, listed, strict=True):
        for model_id in ids:
            owners.setdefault(model_id, upstream.name)
    if "anthropic-version" in request.headers:
        data = [
            {
                "type": "model",
                "id": model_id,
                "display_name": model_id,
                "created_at": "2025-01-01T00:00:00Z",
            }
            for model_id in owners
        ]
        ids = list(owners)
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
    state = request.app[STATE]
    checks = await asyncio.gather(*(u.check() for u in state.upstreams.values()))
    return web.json_response(
        {
            "status": "ok",
            "version": __version__,
            "uptime_s": round(time.time() - state.started, 1),
            "upstreams": checks,
        }
    )


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/chat/completions", chat_completions)
    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/v1/messages/count_tokens", count_tokens)
    app.router.add_post("/v1/responses", responses)
    app.router.add_post("/responses", responses)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/health", health)
