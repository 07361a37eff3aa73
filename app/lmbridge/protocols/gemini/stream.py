"""IR events -> `streamGenerateContent?alt=sse` frames.

Each frame is `data: <GenerateContentResponse>` with the parts the event
completes: text and thought deltas as they come, a function call whole
once its arguments are (Gemini streams a call in one part; a call
without a name, which only a broken upstream stream gives, is left out). The last
frame holds the finish reason and `usageMetadata`. A failure after the
headers is one `data: {"error": {...}}` frame in Google's shape, which
the SDKs raise as the API error it is. No SSE comments: the google-genai
SDK reads any line that is not `data:` as JSON.
"""

from __future__ import annotations

from typing import Any

import msgspec

from lmbridge.core import errors, ir
from lmbridge.protocols.gemini.response import (
    FINISH_REASONS,
    call_part,
    error_body,
    response_id,
    usage_metadata,
)

_encode = msgspec.json.Encoder()


class GeminiStreamEncoder:
    """Renders one answer's events as Gemini stream chunks."""

    content_type = "text/event-stream"

    def __init__(self, model: str, show_thoughts: bool) -> None:
        self._model = model
        self._show_thoughts = show_thoughts
        self._id = response_id()
        # Open function calls by block index: [id, name, argument text].
        self._calls: dict[int, list[str]] = {}
        self._done = False

    def _chunk(
        self, parts: list[dict[str, Any]], finish: ir.Finish | None = None
    ) -> bytes:
        candidate: dict[str, Any] = {
            "content": {"role": "model", "parts": parts},
            "index": 0,
        }
        body: dict[str, Any] = {"candidates": [candidate]}
        if finish is not None:
            candidate["finishReason"] = FINISH_REASONS[finish.stop_reason]
            body["usageMetadata"] = usage_metadata(finish.usage)
        body["modelVersion"] = self._model
        body["responseId"] = self._id
        return b"data: " + _encode.encode(body) + b"\r\n\r\n"

    def _close_calls(self) -> list[dict[str, Any]]:
        parts = [call_part(*call) for call in self._calls.values() if call[1]]
        self._calls.clear()
        return parts

    def encode(self, event: ir.Event) -> bytes:
        """The frames `event` completes (often none)."""
        if self._done:
            return b""
        match event:
            case ir.TextDelta(text=text) if text:
                return self._chunk([{"text": text}])
            case ir.ThinkingDelta(text=text) if text and self._show_thoughts:
                return self._chunk([{"text": text, "thought": True}])
            case ir.BlockStart(kind=ir.BlockKind.TOOL_CALL):
                self._calls[event.index] = [event.call_id, event.name, ""]
                return b""
            case ir.ToolArgsDelta():
                call = self._calls.get(event.index)
                if call is not None:
                    call[2] += event.partial_json
                return b""
            case ir.BlockStop() if event.index in self._calls:
                id_, name, arguments = self._calls.pop(event.index)
                if not name:  # a broken upstream's: no client can run it
                    return b""
                return self._chunk([call_part(id_, name, arguments)])
            case ir.Finish():
                self._done = True
                return self._chunk(self._close_calls(), event)
            case ir.StreamError():
                self._done = True
                error = errors.from_kind(event.kind, event.message, event.status)
                return b"data: " + _encode.encode(error_body(error)) + b"\r\n\r\n"
            case _:
                return b""
