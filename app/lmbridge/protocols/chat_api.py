"""The simple chat service's protocol: `{model_key?, messages, config?}` in,
one JSON answer or NDJSON fragments out, errors in the envelope.

Pure: no I/O. Every check names what it rejects (`messages[1].images[0]: ...`)
so a client can tell which part of its request to fix. `ChatApiCodec` is a
`FrontDoor`: the server builds one per route (`/chat`, `/chat/regular`,
`/chat/vision`, each whole or `/stream`) with the `[chat]` defaults.
"""

from __future__ import annotations

import base64
import binascii
from typing import Literal

import msgspec

from lmbridge.core import errors, ir
from lmbridge.protocols import envelope, jsonutil


class ImageIn(msgspec.Struct):
    data_base64: str
    mime_type: str


class MessageIn(msgspec.Struct):
    role: Literal["system", "user", "assistant"]
    content: str
    images: list[ImageIn] = msgspec.field(default_factory=list)


class ConfigIn(msgspec.Struct, kw_only=True):
    temperature: float | None = None
    max_tokens: int | None = msgspec.field(default=None, name="maxTokens")
    top_p: float | None = msgspec.field(default=None, name="topP")
    presence_penalty: float | None = msgspec.field(default=None, name="presencePenalty")
    frequency_penalty: float | None = msgspec.field(
        default=None, name="frequencyPenalty"
    )


class ChatIn(msgspec.Struct, kw_only=True):
    messages: list[MessageIn]
    model_key: str | None = None
    config: ConfigIn = msgspec.field(default_factory=ConfigIn)


class ChatOut(msgspec.Struct):
    model: str
    content: str
    stop_reason: str
    predicted_tokens: int


class Fragment(msgspec.Struct, tag="fragment", tag_field="type"):
    content: str


class Done(msgspec.Struct, tag="done", tag_field="type"):
    model: str
    predicted_tokens: int
    stop_reason: str


class StreamFailure(msgspec.Struct, tag="error", tag_field="type"):
    message: str


# LM Studio's names for why a prediction stopped.
STOP_REASONS = {
    ir.StopReason.END_TURN: "eosFound",
    ir.StopReason.MAX_TOKENS: "maxPredictedTokensReached",
    ir.StopReason.STOP_SEQUENCE: "stopStringFound",
    ir.StopReason.TOOL_USE: "toolCalls",
    ir.StopReason.REFUSAL: "failed",
    ir.StopReason.PAUSE: "userStopped",
}

# Accepted image types and the bytes their data starts with.
IMAGE_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WebP"}
_MIME_ALIASES = {"image/jpg": "image/jpeg"}


def sniff_image(data: bytes) -> str | None:
    """The MIME type `data` really has, if it is one we accept."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def checked_image(image: ImageIn, where: str, limit: int) -> ir.Image:
    """A checked image; InvalidRequest naming it (`where`) otherwise."""
    mime = image.mime_type.strip().lower()
    mime = _MIME_ALIASES.get(mime, mime)
    if mime not in IMAGE_TYPES:
        raise errors.InvalidRequest(
            f"{where}: mime_type {image.mime_type!r} is not supported;"
            " send JPEG, PNG or WebP",
            param=f"{where}.mime_type",
        )
    text = image.data_base64
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    text = "".join(text.split())
    if len(text) * 3 // 4 > limit + 2:
        raise _too_large(where, len(text) * 3 // 4, limit)
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise errors.InvalidRequest(
            f"{where}: data_base64 is not valid base64",
            param=f"{where}.data_base64",
        ) from None
    if not data:
        raise errors.InvalidRequest(
            f"{where}: data_base64 is empty", param=f"{where}.data_base64"
        )
    if len(data) > limit:
        raise _too_large(where, len(data), limit)
    actual = sniff_image(data)
    if actual is None:
        raise errors.InvalidRequest(
            f"{where}: the data is not a JPEG, PNG or WebP image",
            param=f"{where}.data_base64",
        )
    if actual != mime:
        raise errors.InvalidRequest(
            f"{where}: mime_type says {IMAGE_TYPES[mime]} but the data is"
            f" {IMAGE_TYPES[actual]}",
            param=f"{where}.mime_type",
        )
    return ir.Image(media_type=mime, data=text)


def to_request(body: ChatIn, model: str, max_image_bytes: int) -> ir.Request:
    """The IR request for `body`; InvalidRequest naming what is wrong."""
    if not body.messages:
        raise errors.InvalidRequest("messages is empty", param="messages")
    system: list[ir.Text] = []
    messages: list[ir.Message] = []
    for i, m in enumerate(body.messages):
        where = f"messages[{i}]"
        if m.images and m.role != "user":
            raise errors.InvalidRequest(
                f"{where}: only user messages can carry images",
                param=f"{where}.images",
            )
        if m.role == "system":
            system.append(ir.Text(m.content))
            continue
        parts: list[ir.Text | ir.Image] = [ir.Text(m.content)] if m.content else []
        parts += [
            checked_image(image, f"{where}.images[{j}]", max_image_bytes)
            for j, image in enumerate(m.images)
        ]
        if not parts:
            raise errors.InvalidRequest(
                f"{where}: content is empty", param=f"{where}.content"
            )
        messages.append(ir.Message(ir.Role(m.role), tuple(parts)))
    config = body.config
    _check_config(config)
    extras = {
        key: value
        for key, value in (
            ("presence_penalty", config.presence_penalty),
            ("frequency_penalty", config.frequency_penalty),
        )
        if value is not None
    }
    return ir.Request(
        model=model,
        messages=tuple(messages),
        system=tuple(system),
        temperature=config.temperature,
        max_tokens=config.max_tokens,
        top_p=config.top_p,
        extras=extras,
        stream=True,
    )


def _too_large(where: str, size: int, limit: int) -> errors.InvalidRequest:
    return errors.InvalidRequest(
        f"{where} is {size / 1048576:.1f} MiB, more than the"
        f" {limit / 1048576:.1f} MiB allowed (chat.max_image_bytes)",
        param=f"{where}.data_base64",
    )


def _check_config(config: ConfigIn) -> None:
    for name, value, low, high in (
        ("temperature", config.temperature, 0, 2),
        ("topP", config.top_p, 0, 1),
        ("presencePenalty", config.presence_penalty, -2, 2),
        ("frequencyPenalty", config.frequency_penalty, -2, 2),
    ):
        if value is not None and not low <= value <= high:
            raise errors.InvalidRequest(
                f"config.{name} must be between {low} and {high}",
                param=f"config.{name}",
            )
    if config.max_tokens is not None and config.max_tokens < 1:
        raise errors.InvalidRequest(
            "config.maxTokens must be a positive integer", param="config.maxTokens"
        )


# ------------------------------------------------------------------ the codec

Mode = Literal["auto", "text", "vision"]


class ChatDefaults(msgspec.Struct, frozen=True):
    """The `[chat]` settings the codec needs."""

    text_model: str = ""
    vision_model: str = ""
    max_image_bytes: int = 10 * 1024 * 1024


_ENCODE = msgspec.json.Encoder().encode


class NDJSONEncoder:
    """IR events -> `{"type": "fragment"}` lines, then `done` (or `error`)."""

    content_type = "application/x-ndjson"

    def __init__(self, model: str) -> None:
        self._model = model
        self._done = False

    def encode(self, event: ir.Event) -> bytes:
        if self._done:
            return b""
        match event:
            case ir.TextDelta(text=text) if text:
                return _ENCODE(Fragment(text)) + b"\n"
            case ir.Finish():
                self._done = True
                done = Done(
                    model=self._model,
                    predicted_tokens=event.usage.output_tokens,
                    stop_reason=STOP_REASONS[event.stop_reason],
                )
                return _ENCODE(done) + b"\n"
            case ir.StreamError():
                self._done = True
                return _ENCODE(StreamFailure(event.message)) + b"\n"
            case _:
                return b""


class ChatApiCodec:
    """One route of the chat service: its mode, whole or streamed."""

    name = "chat-api"
    paths: tuple[str, ...] = ()
    passthrough = None
    remembers = False

    def __init__(self, mode: Mode, stream: bool, defaults: ChatDefaults) -> None:
        self.mode = mode
        self.stream = stream
        self.defaults = defaults

    def parse_request(self, body: bytes) -> ir.Request:
        """Parse, choose the model, check the images."""
        chat = jsonutil.decode_as(body, ChatIn)
        has_images = any(m.images for m in chat.messages)
        if self.mode == "text" and has_images:
            raise errors.InvalidRequest(
                "/chat/regular takes no images; send them to /chat/vision",
                param="messages",
            )
        vision = self.wants_vision(has_images)
        defaults = self.defaults
        model = chat.model_key or (
            defaults.vision_model if vision else defaults.text_model
        )
        if not model:
            key = "default_vision_model" if vision else "default_text_model"
            raise errors.InvalidRequest(
                f"no model: send model_key, or set chat.{key} in the config file",
                param="model_key",
            )
        req = to_request(chat, model, defaults.max_image_bytes)
        return msgspec.structs.replace(req, stream=self.stream)

    def wants_vision(self, has_images: bool) -> bool:
        """Whether the model must see images (the vision route, or images)."""
        return self.mode == "vision" or has_images

    def encode_response(
        self, response: ir.Response, request: ir.Request | None = None
    ) -> bytes:
        content = "".join(p.text for p in response.parts if isinstance(p, ir.Text))
        return _ENCODE(
            ChatOut(
                model=response.model,
                content=content,
                stop_reason=STOP_REASONS[response.stop_reason],
                predicted_tokens=response.usage.output_tokens,
            )
        )

    def stream_encoder(self, request: ir.Request) -> NDJSONEncoder:
        return NDJSONEncoder(request.model)

    def encode_error(self, error: errors.LMBridgeError) -> bytes:
        return envelope.encode_error(error)
