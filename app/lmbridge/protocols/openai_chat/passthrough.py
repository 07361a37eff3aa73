"""Relaying Chat Completions unchanged to a Chat upstream.

The body keeps everything the client sent; LM Bridge renames the model,
lowers `max_tokens` / `max_completion_tokens` to the route's limit and
filters the tools by name when a session allows only some. The stream is
complete at `data: [DONE]`; usage rides in the last chunk (sent when the
client asked with `stream_options.include_usage`).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from lmbridge.core import ir
from lmbridge.core.errors import DECODE_ERRORS
from lmbridge.protocols.base import BodyEdit
from lmbridge.protocols.bodyedit import edit_body
from lmbridge.protocols.openai_chat import wire
from lmbridge.protocols.openai_chat.decode import (
    usage_from_timings,
    usage_from_wire,
    with_timings,
)
from lmbridge.protocols.openai_chat.encode import ChatStreamEncoder
from lmbridge.protocols.relaywatch import unreadable
from lmbridge.protocols.sse import SSEEvent

MAX_TOKENS_FIELDS = ("max_tokens", "max_completion_tokens")


class _WithUsage(msgspec.Struct):
    usage: wire.UsageWire | None = None
    timings: Any = None


_USAGE = msgspec.json.Decoder(_WithUsage)


def tool_name(tool: Any) -> str | None:
    """A Chat tool's function name."""
    if not isinstance(tool, dict):
        return None
    fn = tool.get("function")
    name = fn.get("name") if isinstance(fn, dict) else None
    return name if isinstance(name, str) else None


class ChatRelayRules:
    """A relayed Chat stream: JSON chunks, then `data: [DONE]`."""

    __slots__ = ("_model", "_timings", "ended", "error", "usage")

    def __init__(self, request: ir.Request) -> None:
        self._model = request.model
        self.ended = False
        self.usage: ir.Usage | None = None
        self._timings: object = None
        self.error: str | None = None

    def check(self, event: SSEEvent) -> str | None:
        data = event.data
        if data == b"[DONE]":
            self.ended = True
            return None
        if not data:
            return None
        try:
            chunk = _USAGE.decode(data)
        except DECODE_ERRORS:
            return unreadable(data)
        if chunk.timings is not None:
            self._timings = chunk.timings
            self.usage = with_timings(self.usage, chunk.timings)
        if chunk.usage is not None:
            self.usage = usage_from_wire(chunk.usage, self._timings)
        return None

    @property
    def produced(self) -> list[str]:
        return []

    def fail(self, error: ir.StreamError) -> bytes:
        if self.ended:
            return b""
        return ChatStreamEncoder(self._model, include_usage=False).encode(error)


def accepted_forms(body: dict[str, Any]) -> None:
    """Rewrite, in place, the message forms that the OpenAI spec allows but
    some servers refuse (llama-cpp-python answers 500): an assistant's
    `content: null` beside tool calls becomes `""`, and a tool, system or
    developer message given as text parts becomes one string (joined by
    `ir.join_text`). Every server accepts the result."""
    messages = body.get("messages")
    for msg in messages if isinstance(messages, list) else ():
        if not isinstance(msg, dict):
            continue
        content = msg.get("content")
        if content is None and msg.get("role") == "assistant":
            if msg.get("tool_calls"):
                msg["content"] = ""
        elif (
            isinstance(content, list)
            and msg.get("role") in ("tool", "system", "developer")
            and all(isinstance(p, dict) and p.get("type") == "text" for p in content)
        ):
            msg["content"] = ir.join_text(str(p.get("text") or "") for p in content)


_REFUSED_FORMS = re.compile(rb'"content"\s*:\s*null|"role"\s*:\s*"tool"')


class ChatPassthrough:
    """Chat Completions relayed to a Chat Completions upstream."""

    api = "openai"

    def edit(self, body: dict[str, Any], edit: BodyEdit) -> None:
        edit_body(body, edit, MAX_TOKENS_FIELDS, tool_name)
        accepted_forms(body)

    def needs_edit(self, body: bytes) -> bool:
        # A null content, or a tool message (whose content may be parts):
        # other bodies are relayed without being decoded. `in` first: a
        # byte search in C, where the pattern tries each of the body's bytes
        # (~10 instructions a byte); it can only match where either is.
        if b"null" not in body and b'"tool"' not in body:
            return False
        return _REFUSED_FORMS.search(body) is not None

    def relayable(self, request: ir.Request) -> bool:
        return True

    def whole_usage(self, body: bytes) -> ir.Usage | None:
        answer = _USAGE.decode(body)
        if answer.usage is None:
            return usage_from_timings(answer.timings)
        return usage_from_wire(answer.usage, answer.timings)

    def whole_produced(self, body: bytes) -> list[str]:
        return []  # Chat Completions carries no opaque reasoning

    def rules(self, request: ir.Request) -> ChatRelayRules:
        return ChatRelayRules(request)
