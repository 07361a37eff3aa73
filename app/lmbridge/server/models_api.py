"""LM Studio model management over HTTP, and the service's lifecycle.

`GET /models` (loaded), `GET /models/downloaded`, `POST /models/load`,
`POST /models/unload`. Errors use the simple service envelope
`{"status": "error", "message": ...}`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import msgspec
from aiohttp import web

from lmbridge.config import Settings
from lmbridge.core import errors
from lmbridge.core.events import EventBus
from lmbridge.lmstudio import (
    ConnectionState,
    ContextPolicy,
    LMStudioOptions,
    LMStudioService,
    LoadedModel,
)
from lmbridge.protocols import jsonutil
from lmbridge.server import chat_api
from lmbridge.server.chat_common import enveloped
from lmbridge.server.state import STATE
from lmbridge.upstreams.modelprep import ModelPreparer


def service_for(
    settings: Settings, bus: EventBus
) -> tuple[LMStudioService, str] | None:
    """The model service for the first lmstudio upstream, if it is managed."""
    if not settings.lmstudio.manage:
        return None
    upstream = next((u for u in settings.upstream if u.kind == "lmstudio"), None)
    if upstream is None:
        return None
    lm = settings.lmstudio
    address = lm.address or urlsplit(upstream.base_url).netloc or None
    options = LMStudioOptions(
        address=address,
        min_context=lm.min_context,
        context_policy=ContextPolicy(lm.context_policy),
        load_context_length=lm.load_context_length,
        load_ttl_seconds=lm.load_ttl_seconds,
        load_timeout=lm.load_timeout,
    )
    return LMStudioService(bus, options), upstream.name


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
    svc = request.app[STATE].lmstudio
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


async def supports_vision(svc: LMStudioService, model: str) -> bool | None:
    """Whether LM Studio's model `model` takes images (None: unknown)."""
    if svc.status.state is not ConnectionState.CONNECTED:
        return None
    loaded = svc.loaded_model(model)
    key = loaded.key if loaded is not None else model
    downloaded = await svc.list_downloaded()
    for info in downloaded.models:
        if info.key == key:
            return info.vision
    return None


def setup(app: web.Application) -> None:
    """Run the model service with the app and add the model routes."""
    state = app[STATE]
    found = service_for(state.settings, state.bus)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        if found is not None:
            svc, upstream = found
            state.lmstudio = svc
            state.models = ModelPreparer(svc, state.settings.lmstudio)
            state.models_upstream = upstream
            svc.start()
            chat_api.set_vision_check(app, lambda model: supports_vision(svc, model))
        yield
        if state.lmstudio is not None:
            await state.lmstudio.aclose()
            state.lmstudio = state.models = None

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/models", enveloped(list_loaded))
    app.router.add_get("/models/downloaded", enveloped(list_downloaded))
    app.router.add_post("/models/load", enveloped(load))
    app.router.add_post("/models/unload", enveloped(unload))
