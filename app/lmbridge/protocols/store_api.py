"""The conversation store's wire shapes and the answer codec of its replies.

`PUT /store/chat` appends a user message and streams the reply in Chat
Completions chunk shape (`data: {chat.completion.chunk}` frames, then
`data: [DONE]`); an error mid-reply is `data: {"status": "error", ...}`
before `[DONE]`. Every other answer and error is in the envelope.

Names and models are shown in terminals (`lmbridge chats list`) and logs:
one holding a control character (a terminal escape such as OSC 52, which
writes the clipboard, or a bidirectional override) is refused with a 400.
"""

from __future__ import annotations

import msgspec

from lmbridge.core import errors, ir
from lmbridge.core.redact import has_control
from lmbridge.protocols import envelope, jsonutil
from lmbridge.protocols.openai_chat.encode import ChatStreamEncoder


class CreateChatBody(msgspec.Struct, kw_only=True):
    name: str
    model: str
    temperature: float | None = None
    max_tokens: int | None = None


class IncomingMessage(msgspec.Struct):
    role: str
    content: str


class PutChatBody(msgspec.Struct):
    name: str
    message: IncomingMessage


class DeleteMessageBody(msgspec.Struct):
    name: str
    index: int


class NameBody(msgspec.Struct):
    name: str


def check_printable(value: str, param: str) -> None:
    """InvalidRequest when `value` holds a control character."""
    if has_control(value):
        char = next(c for c in value if has_control(c))
        raise errors.InvalidRequest(
            f"{param} contains the control character U+{ord(char):04X}; names"
            " and models are shown in terminals and logs, so they may hold none",
            param=param,
        )


def parse_create(body: bytes) -> CreateChatBody:
    """A `POST /store/chat` body: a chat's name and model, printable."""
    create = jsonutil.decode_as(body, CreateChatBody)
    check_printable(create.name, "name")
    check_printable(create.model, "model")
    return create


def parse_put(body: bytes) -> PutChatBody:
    """A `PUT /store/chat` body: a user message with text."""
    put = jsonutil.decode_as(body, PutChatBody)
    check_printable(put.name, "name")
    if put.message.role != "user":
        raise errors.InvalidRequest(
            f"message.role must be 'user', not {put.message.role!r}",
            param="message.role",
        )
    if not put.message.content.strip():
        raise errors.InvalidRequest("message.content is empty", param="message.content")
    return put


class StoreReplyEncoder:
    """A reply in Chat chunk frames; a failure in the envelope, then [DONE]."""

    content_type = "text/event-stream"

    def __init__(self, model: str) -> None:
        self._chat = ChatStreamEncoder(model, include_usage=False)
        self._done = False

    def encode(self, event: ir.Event) -> bytes:
        if self._done:
            return b""
        if isinstance(event, ir.StreamError):
            self._done = True
            failure = errors.from_kind(event.kind, event.message, event.status)
            return b"data: " + envelope.encode_error(failure) + b"\n\ndata: [DONE]\n\n"
        if isinstance(event, ir.Ping):
            return b""
        return self._chat.encode(event)


class StoreCodec:
    """Answers of the conversation store (its replies are always streamed)."""

    name = "store-api"
    passthrough = None
    remembers = False

    def encode_response(
        self, response: ir.Response, request: ir.Request | None = None
    ) -> bytes:
        text = "".join(p.text for p in response.parts if isinstance(p, ir.Text))
        return msgspec.json.encode(
            {"status": "success", "model": response.model, "content": text}
        )

    def stream_encoder(self, request: ir.Request) -> StoreReplyEncoder:
        return StoreReplyEncoder(request.model)

    def encode_error(self, error: errors.LMBridgeError) -> bytes:
        return envelope.encode_error(error)


STORE = StoreCodec()
