"""The simple chat service: text and vision chat with NDJSON streaming.

    POST /chat                  {model_key?, messages, config?} -> one answer
    POST /chat/stream           the same, as NDJSON fragments then "done"
    POST /chat/regular[/stream] model_key defaults to chat.default_text_model
    POST /chat/vision[/stream]  model_key defaults to chat.default_vision_model
    GET  /help                  every route of this server, from the route table

`/chat` without `model_key` takes the default vision model when a message
carries images, else the default text model. Images (JPEG, PNG or WebP,
base64, at most `chat.max_image_bytes` each) are checked before anything is
sent upstream (protocols/chat_api.py). Whether a model can see images is
asked of LM Studio's model service; "unknown" lets the request through.
Every call goes through the one pipeline (routing with fallback, LM Studio
preparation, the request record).
"""

from __future__ import annotations

import msgspec
from aiohttp import web

from lmbridge.core import errors, ir
from lmbridge.protocols.chat_api import ChatApiCodec, ChatDefaults, Mode
from lmbridge.protocols.envelope import Envelope
from lmbridge.server.exchange import Exchange
from lmbridge.server.keys import PIPELINE, SERVICES
from lmbridge.server.services import Services
from lmbridge.server.simple import Handler, json_body
from lmbridge.upstreams.router import Resolved


class Endpoint(msgspec.Struct):
    method: str
    path: str
    description: str


class HelpOut(Envelope, kw_only=True):
    endpoints: list[Endpoint]


class VisionCheck(Exchange):
    """Refuses images (or the vision route) for a model that cannot see."""

    def __init__(self, services: Services, codec: ChatApiCodec) -> None:
        self.services = services
        self.codec = codec

    async def routed(self, req: ir.Request, resolved: Resolved) -> None:
        has_images = any(isinstance(p, ir.Image) for m in req.messages for p in m.parts)
        if not self.codec.wants_vision(has_images):
            return
        if await self.services.supports_vision(resolved.target) is False:
            raise errors.InvalidRequest(
                f"model {req.model!r} does not support images (no vision)"
                " — pick a vision model, or set chat.default_vision_model",
                param="model_key",
            )


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


def _route(codec: ChatApiCodec, doc: str) -> Handler:
    async def chat(request: web.Request) -> web.StreamResponse:
        services = request.app[SERVICES]
        return await request.app[PIPELINE].serve(
            request, codec, exchange=VisionCheck(services, codec)
        )

    chat.__doc__ = doc
    return chat


def setup(app: web.Application) -> None:
    """Add the chat routes and `/help`."""
    chat = app[SERVICES].settings.chat
    defaults = ChatDefaults(
        chat.default_text_model, chat.default_vision_model, chat.max_image_bytes
    )
    app.router.add_get("/help", help_)
    modes: tuple[tuple[str, Mode], ...] = (
        ("/chat", "auto"),
        ("/chat/regular", "text"),
        ("/chat/vision", "vision"),
    )
    for path, mode in modes:
        whole_doc, stream_doc = _DOCS[mode]
        app.router.add_post(
            path, _route(ChatApiCodec(mode, False, defaults), whole_doc)
        )
        app.router.add_post(
            f"{path}/stream", _route(ChatApiCodec(mode, True, defaults), stream_doc)
        )


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
