"""LM Studio model management over HTTP.

`GET /models` (loaded), `GET /models/downloaded`, `POST /models/load`,
`POST /models/unload`. Errors use the simple service envelope
`{"status": "error", "message": ...}`.
"""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from lmbridge.core import errors
from lmbridge.lmstudio import LMStudioService, LoadedModel
from lmbridge.protocols import jsonutil
from lmbridge.server.keys import SERVICES


def _loaded(model: LoadedModel) -> dict[str, Any]:
    return {
        "identifier": model.identifier,
        "model_key": model.key,
        "context_length": model.context_length,
        "max_context_length": model.max_context_length,
        "ttl": model.ttl_seconds,
        "type": model.kind,
    }


def _service(request: web.Request) -> LMStudioService:
    svc = request.app[SERVICES].lmstudio
    if svc is None:
        raise errors.UpstreamUnavailable(
            "no LM Studio upstream is managed — add an upstream with kind ="
            ' "lmstudio" (and keep lmstudio.manage = true)'
        )
    return svc


class LoadBody(msgspec.Struct, forbid_unknown_fields=True):
    model_key: str
    context_length: int | None = None
    ttl: int | None = None
    exclusive: bool = False


class UnloadBody(msgspec.Struct, forbid_unknown_fields=True):
    model_key: str | None = None
    unload_all: bool = False


def _body(raw: bytes, kind: type[Any]) -> Any:
    try:
        return msgspec.convert(jsonutil.decode_object(raw), kind)
    except msgspec.ValidationError as exc:
        raise jsonutil.invalid(exc) from None


async def list_loaded(request: web.Request) -> web.Response:
    """The models LM Studio has loaded."""
    models = await _service(request).list_loaded()
    return web.json_response(
        {"status": "success", "models": [_loaded(m) for m in models]}
    )


async def list_downloaded(request: web.Request) -> web.Response:
    """The models LM Studio can load, and entries it could not read."""
    result = await _service(request).list_downloaded()
    return web.json_response(
        {
            "status": "success",
            "models": [msgspec.to_builtins(m) for m in result.models],
            "skipped": list(result.skipped),
        }
    )


async def load(request: web.Request) -> web.Response:
    """Load a model; `exclusive` unloads the others first."""
    body: LoadBody = _body(await request.read(), LoadBody)
    svc = _service(request)
    if body.exclusive:
        await svc.unload_all()
    model = await svc.load(
        body.model_key, context_length=body.context_length, ttl=body.ttl
    )
    return web.json_response({"status": "success", "loaded": True, **_loaded(model)})


async def unload(request: web.Request) -> web.Response:
    """Unload one model (`model_key`) or every model (`unload_all`)."""
    body: UnloadBody = _body(await request.read(), UnloadBody)
    svc = _service(request)
    if body.unload_all:
        keys = await svc.unload_all()
        return web.json_response({"status": "success", "unloaded": list(keys)})
    if not body.model_key:
        raise errors.InvalidRequest(
            "send model_key, or unload_all: true", param="model_key"
        )
    await svc.unload(body.model_key)
    return web.json_response({"status": "success", "unloaded": [body.model_key]})


def setup(app: web.Application) -> None:
    """Add the model routes (LM Studio's service is the app's)."""
    app.router.add_get("/models", list_loaded)
    app.router.add_get("/models/downloaded", list_downloaded)
    app.router.add_post("/models/load", load)
    app.router.add_post("/models/unload", unload)
