"""Relaying Responses unchanged to a Responses upstream (LM Studio, Azure).

LM Bridge renames the model, lowers `max_output_tokens` to the route's limit
and filters tools by name for a session that allows only some. A Responses
stream numbers its events and names its response, so if the upstream
breaks off, the end LM Bridge writes must continue them: `error` and
`response.failed` numbered after the relayed events, for the response and
items the upstream began. A fresh encoder would start a second response
(`response.created` again, numbers from 0).
"""

from __future__ import annotations

from typing import Any

import msgspec

from lmbridge.core import ir
from lmbridge.core.errors import DECODE_ERRORS
from lmbridge.protocols import overflow, sse
from lmbridge.protocols.base import BodyEdit
from lmbridge.protocols.bodyedit import edit_body, named
from lmbridge.protocols.openai_responses import events as ev
from lmbridge.protocols.openai_responses.decode import usage_from_wire
from lmbridge.protocols.openai_responses.response import stream_error_code
from lmbridge.protocols.openai_responses.stream import ResponsesStreamEncoder
from lmbridge.protocols.openai_responses.tools import needs_translation
from lmbridge.protocols.relaywatch import unreadable


class _Relayed(msgspec.Struct):
    """The parts of a relayed event that the rules follow."""

    type: str = ""
    sequence_number: int | None = None
    output_index: int | None = None
    response: dict[str, Any] | None = None
    item: dict[str, Any] | None = None
    message: str | None = None  # of an `error` event


class _WithUsage(msgspec.Struct):
    usage: ev.SeenUsage | None = None


class _WithOutput(msgspec.Struct):
    output: list[dict[str, Any]] = msgspec.field(default_factory=list)


_RELAYED = msgspec.json.Decoder(_Relayed)
_USAGE = msgspec.json.Decoder(_WithUsage)
_OUTPUT = msgspec.json.Decoder(_WithOutput)


def encrypted_reasoning(items: list[dict[str, Any]]) -> list[str]:
    """The `encrypted_content` of the reasoning items among `items`."""
    return [
        data
        for item in items
        if item.get("type") == "reasoning"
        and isinstance(data := item.get("encrypted_content"), str)
        and data
    ]


_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})


class ResponsesRelayRules:
    """Follows a relayed Responses stream, to end it in kind if it breaks."""

    def __init__(self, request: ir.Request) -> None:
        self._request = request
        self._response: dict[str, Any] | None = None
        self._items: dict[int, dict[str, Any]] = {}
        self._done_items: set[int] = set()
        self._sequence = -1
        self._errored = False  # the upstream sent `error`, not yet its end
        self.ended = False
        self.usage: ir.Usage | None = None
        self.error: str | None = None

    def check(self, event: sse.SSEEvent) -> str | None:
        data = event.data
        if not data or data == b"[DONE]":
            return None
        try:
            relayed = _RELAYED.decode(data)
        except DECODE_ERRORS:
            return unreadable(data)
        if relayed.sequence_number is not None:
            self._sequence = max(self._sequence, relayed.sequence_number)
        kind = relayed.type or event.event
        if (restated := self._overflow(kind, relayed)) is not None:
            return restated
        if kind in _TERMINAL:
            self.ended = True
            self._note_end(relayed.response, kind)
        elif kind == "error":
            self._errored = True
        elif relayed.response is not None:
            self._response = relayed.response
        elif relayed.item is not None and relayed.output_index is not None:
            self._items[relayed.output_index] = relayed.item
            if kind == "response.output_item.done":
                self._done_items.add(relayed.output_index)
        return None

    @staticmethod
    def _overflow(kind: str, relayed: _Relayed) -> str | None:
        """An overflow the upstream reported (its `error` event, or
        `response.failed`), to be restated with its counts by the relay."""
        if kind == "error":
            message = relayed.message
        elif kind == "response.failed" and relayed.response is not None:
            error = relayed.response.get("error")
            message = error.get("message") if isinstance(error, dict) else None
        else:
            return None
        if isinstance(message, str) and overflow.error(message) is not None:
            return message
        return None

    @property
    def produced(self) -> list[str]:
        return encrypted_reasoning(list(self._items.values()))

    def _note_end(self, response: dict[str, Any] | None, kind: str) -> None:
        if response is None:
            return
        usage = response.get("usage")
        if isinstance(usage, dict):
            try:
                seen = msgspec.convert(usage, ev.SeenUsage)
            except msgspec.ValidationError:
                seen = None
            if seen is not None:
                self.usage = usage_from_wire(seen)
        error = response.get("error")
        if kind == "response.failed" and isinstance(error, dict):
            message = error.get("message")
            self.error = message if isinstance(message, str) else "upstream error"

    def fail(self, error: ir.StreamError) -> bytes:
        if self.ended:
            return b""  # the upstream's stream already ended; nothing may follow
        if self._response is None:
            return ResponsesStreamEncoder(self._request).encode(error)
        code = stream_error_code(error.kind)
        output = [
            item
            if index in self._done_items or "status" not in item
            else {**item, "status": "incomplete"}
            for index, item in sorted(self._items.items())
        ]
        response = {
            **self._response,
            "status": "failed",
            "output": output,
            "error": {"code": code, "message": error.message},
        }
        self.ended = True
        out = b""
        if not self._errored:
            self._sequence += 1
            error_event = ev.ErrorEvent(self._sequence, error.message, code)
            out = sse.frame(msgspec.json.encode(error_event), "error")
        failed = {
            "type": "response.failed",
            "sequence_number": self._sequence + 1,
            "response": response,
        }
        return out + sse.frame(msgspec.json.encode(failed), "response.failed")


class ResponsesPassthrough:
    """Responses relayed to a Responses upstream."""

    api = "responses"

    def edit(self, body: dict[str, Any], edit: BodyEdit) -> None:
        edit_body(body, edit, ("max_output_tokens",), named)

    def whole_usage(self, body: bytes) -> ir.Usage | None:
        usage = _USAGE.decode(body).usage
        return usage_from_wire(usage) if usage is not None else None

    def whole_produced(self, body: bytes) -> list[str]:
        try:
            return encrypted_reasoning(_OUTPUT.decode(body).output)
        except DECODE_ERRORS:
            return []

    def rules(self, request: ir.Request) -> ResponsesRelayRules:
        return ResponsesRelayRules(request)

    def needs_edit(self, body: bytes) -> bool:
        return False

    def relayable(self, request: ir.Request) -> bool:
        """Not with namespace or freeform tools (or such calls in the
        history): LM Studio's `/v1/responses` knows neither, so those
        requests are translated, which flattens them (tools.py)."""
        return not needs_translation(request)
