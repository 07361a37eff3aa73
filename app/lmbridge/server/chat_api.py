"""The simple chat service: text and vision chat with NDJSON streaming.

    POST /chat                  {model_key?, messages, config?} -> one answer
    POST /chat/stream           the same, as NDJSON fragments then "done"
    POST /chat/regular[/stream] model_key defaults to chat.default_text_model
    POST /chat/vision[/stream]  model_key defaults to chat.default_vision_model
    GET  /help                  every route of this server, from the route table

`/chat` without `model_key` takes the default vision model when a message
carries images, else the default text model. Images (JPEG, PNG or WebP,
base64, at most `chat.max_image_bytes` each) are checked before anything is
sent upstream. Whether a model can see images is asked of `supports_vision`
(the LM Studio model manager, once wired in); "unknown" lets the request
through. `setup(app)` also mounts the conversation store (store_api).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Literal

import msgspec
from aiohttp import web

from lmbridge.config import ChatSettings
from lmbridge.core import errors, ir
from lmbridge.server import proxy, store_api
from lmbridge.server.chat_common import (
    Envelope,
    Handler,
    ModelCall,
    encode,
    enveloped,
    json_body,
    read_body,
)
from lmbridge.server.chat_wire import (
    STOP_REASONS,
    ChatIn,
    ChatOut,
    Done,
    Fragment,
    StreamFailure,
    to_request,
)
from lmbridge.server.state import STATE

PROTOCOL = "chat-api"

VisionCheck = Callable[[str], Awaitable[bool | None]]
"""Whether a model (the upstream's model name) takes images; None if unknown."""


async def vision_unknown(model: str) -> bool | None:
    """The vision check used until a model manager provides a real one."""
    return None


class Endpoint(msgspec.Struct):
    method: str
    path: str
    description: str


class HelpOut(Envelope, kw_only=True):
    endpoints: list[Endpoint]


# --------------------------------------------------------------- the service


class ChatService:
    """Defaults from `[chat]` settings and the pluggable vision check."""

    def __init__(
        self, settings: ChatSettings, supports_vision: VisionCheck = vision_unknown
    ) -> None:
        self.settings = settings
        self.supports_vision = supports_vision


CHAT_SERVICE = web.AppKey("chat_service", ChatService)

Mode = Literal["auto", "text", "vision"]


def setup(app: web.Application, supports_vision: VisionCheck = vision_unknown) -> None:
    """Add both chat APIs and the shared database to `app`."""
    store_api.setup(app)
    app[CHAT_SERVICE] = ChatService(app[STATE].settings.chat, supports_vision)
    app.router.add_get("/help", help_)
    modes: tuple[tuple[str, Mode], ...] = (
        ("/chat", "auto"),
        ("/chat/regular", "text"),
        ("/chat/vision", "vision"),
    )
    for path, mode in modes:
        app.router.add_post(path, _answer(mode))
        app.router.add_post(f"{path}/stream", _stream(mode))


def set_vision_check(app: web.Application, supports_vision: VisionCheck) -> None:
    """Replace the vision check (e.g. once the LM Studio model manager runs)."""
    app[CHAT_SERVICE].supports_vision = supports_vision


# --------------------------------------------------------------- routes


@enveloped
async def help_(request: web.Request) -> web.Response:
    """This list: every route with its method and what it does."""
    endpoints = []
    for route in request.app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if route.method == "HEAD" or not path:
            continue
        doc = (route.handler.__doc__ or "").strip().splitlines()
        endpoints.append(Endpoint(route.method, path, doc[0] if doc else ""))
    endpoints.sort(key=lambda e: (e.path, e.method))
    return json_body(HelpOut(status="success", endpoints=endpoints))


async def _prepare(request: web.Request, mode: Mode) -> tuple[ModelCall, ir.Request]:
    """Parse, choose the model, check images: everything before the upstream."""
    service = request.app[CHAT_SERVICE]
    body = await read_body(request, ChatIn)
    has_images = any(m.images for m in body.messages)
    if mode == "text" and has_images:
        raise errors.InvalidRequest(
            "/chat/regular takes no images; send them to /chat/vision",
            param="messages",
        )
    vision = mode == "vision" or has_images
    model = body.model_key or (
        service.settings.default_vision_model
        if vision
        else service.settings.default_text_model
    )
    if not model:
        key = "default_vision_model" if vision else "default_text_model"
        raise errors.InvalidRequest(
            f"no model: send model_key, or set chat.{key} in the config file",
            param="model_key",
        )
    req = to_request(body, model, service.settings.max_image_bytes)
    return ModelCall(request.app[STATE], request, PROTOCOL), req


async def _open(
    call: ModelCall, service: ChatService, req: ir.Request, mode: Mode
) -> AsyncGenerator[ir.Event, None]:
    """Route `req`, check the model can see any images, and send it."""
    resolved = call.resolve(req.model)
    has_images = any(isinstance(p, ir.Image) for m in req.messages for p in m.parts)
    if (mode == "vision" or has_images) and (
        await service.supports_vision(resolved.target) is False
    ):
        raise errors.InvalidRequest(
            f"model {req.model!r} does not support images (no vision)"
            " — pick a vision model, or set chat.default_vision_model",
            param="model_key",
        )
    return await call.open(req, resolved)


def _answer(mode: Mode) -> Handler:
    @enveloped
    async def answer(request: web.Request) -> web.Response:
        call, req = await _prepare(request, mode)
        async with call:
            events = await _open(call, request.app[CHAT_SERVICE], req, mode)
            response = await proxy.assemble(events, req, call.record)
            content = "".join(p.text for p in response.parts if isinstance(p, ir.Text))
            body = encode(
                ChatOut(
                    model=req.model,
                    content=content,
                    stop_reason=STOP_REASONS[response.stop_reason],
                    predicted_tokens=response.usage.output_tokens,
                )
            )
            return web.Response(body=call.sent(body), content_type="application/json")

    answer.__doc__ = _DOCS[mode][0]
    return answer


def _stream(mode: Mode) -> Handler:
    @enveloped
    async def stream(request: web.Request) -> web.StreamResponse:
        call, req = await _prepare(request, mode)
        async with call:
            events = await _open(call, request.app[CHAT_SERVICE], req, mode)
            out = web.StreamResponse(
                headers={
                    "Content-Type": "application/x-ndjson",
                    "Cache-Control": "no-cache",
                    "X-Accel-Buffering": "no",
                }
            )
            try:
                await out.prepare(request)
                await _relay(call, events, out, req.model)
                await out.write_eof()
            except ConnectionResetError:
                call.record.client_gone = True
                call.record.error = "the client went away"
            return out

    stream.__doc__ = _DOCS[mode][1]
    return stream


async def _relay(
    call: ModelCall,
    events: AsyncGenerator[ir.Event, None],
    out: web.StreamResponse,
    model: str,
) -> None:
    """Write the answer as NDJSON: fragments, then done (or error)."""
    finish: ir.Finish | None = None
    failure = "the upstream ended its answer early"
    async with contextlib.aclosing(events):
        async for event in events:
            call.observe(event)
            if isinstance(event, ir.TextDelta) and event.text:
                await _line(call, out, Fragment(event.text))
            elif isinstance(event, ir.Finish):
                finish = event
            elif isinstance(event, ir.StreamError):
                failure = event.message
                finish = None
                break
    if finish is None:
        call.record.error = failure
        await _line(call, out, StreamFailure(failure))
        return
    done = Done(
        model=model,
        predicted_tokens=finish.usage.output_tokens,
        stop_reason=STOP_REASONS[finish.stop_reason],
    )
    await _line(call, out, done)


async def _line(call: ModelCall, out: web.StreamResponse, item: msgspec.Struct) -> None:
    await out.write(call.sent(encode(item) + b"\n"))


_DOCS: dict[Mode, tuple[str, str]] = {
    "auto": (
        "Chat {model_key?, messages, config?}: the whole answer as JSON.",
        "Chat {model_key?, messages, config?}: NDJSON fragments, then done.",
    ),
    "text": (
        "Chat with the default text model: the whole answer as JSON.",
        "Chat with the default text model: NDJSON fragments, then done.",
    ),
    "vision": (
        "Chat with images, default vision model: the whole answer as JSON.",
        "Chat with images, default vision model: NDJSON fragments, then done.",
    ),
}
