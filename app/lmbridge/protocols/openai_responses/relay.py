"""Following a Responses stream that is relayed unchanged to a client.

Same-API requests are relayed byte for byte. If the upstream breaks off,
the proxy must end the client's stream itself, and a Responses stream
numbers its events and names its response: the end has to continue them.
"""

from __future__ import annotations

from typing import Any

import msgspec

from lmbridge.core import ir
from lmbridge.protocols import sse
from lmbridge.protocols.openai_responses import events as ev
from lmbridge.protocols.openai_responses.response import stream_error_code
from lmbridge.protocols.openai_responses.stream import ResponsesStreamEncoder


class _Relayed(msgspec.Struct):
    """The parts of a relayed event that `RelayedStream` follows."""

    type: str = ""
    sequence_number: int | None = None
    output_index: int | None = None
    response: dict[str, Any] | None = None
    item: dict[str, Any] | None = None


_RELAYED = msgspec.json.Decoder(_Relayed)
_TERMINAL = {"response.completed", "response.incomplete", "response.failed"}


class RelayedStream:
    """Follows an upstream's Responses stream relayed unchanged to a client.

    If the upstream breaks off, `fail()` ends the client's stream in kind:
    `error` and `response.failed` numbered after the relayed events, for the
    response and items the upstream began. A fresh encoder would start a
    second response (`response.created` again, numbers from 0).
    """

    def __init__(self, request: ir.Request) -> None:
        self._request = request
        self._parser = sse.SSEParser()
        self._response: dict[str, Any] | None = None
        self._items: dict[int, dict[str, Any]] = {}
        self._done_items: set[int] = set()
        self._sequence = -1
        self._errored = False  # the upstream sent `error`, not yet its end
        self._ended = False

    def feed(self, data: bytes) -> None:
        """Follow relayed bytes."""
        for frame in self._parser.feed(data):
            try:
                event = _RELAYED.decode(frame.data)
            except (
                msgspec.DecodeError,
                msgspec.ValidationError,
                UnicodeError,
                RecursionError,
            ):
                continue  # not ours to judge; the client sees it as relayed
            if event.sequence_number is not None:
                self._sequence = max(self._sequence, event.sequence_number)
            if event.type in _TERMINAL:
                self._ended = True
            elif event.type == "error":
                self._errored = True
            elif event.response is not None:
                self._response = event.response
            elif event.item is not None and event.output_index is not None:
                self._items[event.output_index] = event.item
                if event.type == "response.output_item.done":
                    self._done_items.add(event.output_index)

    def fail(self, error: ir.StreamError) -> bytes:
        """The frames that end the relayed stream with `error`."""
        if self._ended:
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
        self._ended = True
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
