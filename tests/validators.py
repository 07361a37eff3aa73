"""Stream grammar validators: assert that a client would accept a stream.

Import from tests as `from validators import ...` (pytest puts `tests/` on
`sys.path`). Self-contained on purpose: stdlib only, no LM Bridge code, so
a bug in our SSE framing cannot hide a bug in our encoders.
"""

from __future__ import annotations

import json
from typing import Any

ANTHROPIC_STOP_REASONS = {
    "end_turn",
    "max_tokens",
    "stop_sequence",
    "tool_use",
    "pause_turn",
    "refusal",
    "model_context_window_exceeded",
}
ANTHROPIC_ERROR_TYPES = {
    "invalid_request_error",
    "authentication_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "api_error",
    "timeout_error",
    "overloaded_error",
}
_DELTAS_FOR_BLOCK = {
    "text": {"text_delta"},
    "thinking": {"thinking_delta", "signature_delta"},
    "tool_use": {"input_json_delta"},
    "redacted_thinking": set(),
}


def parse_sse(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """Split an SSE body into `(event name, parsed data)` pairs.

    Frames without an `event:` line get the name "". A `data: [DONE]`
    frame is returned as `("", {"[DONE]": True})`.
    """
    events: list[tuple[str, dict[str, Any]]] = []
    text = raw.decode("utf-8").replace("\r\n", "\n")
    assert text == "" or text.endswith("\n\n"), "the stream must end with a blank line"
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        name = ""
        data: list[str] = []
        for line in block.split("\n"):
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
        payload = "\n".join(data)
        if payload == "[DONE]":
            events.append((name, {"[DONE]": True}))
        else:
            events.append((name, json.loads(payload)))
    return events


def _check_anthropic_error(data: dict[str, Any]) -> None:
    assert data["type"] == "error", data
    error = data["error"]
    assert error["type"] in ANTHROPIC_ERROR_TYPES, error
    assert isinstance(error["message"], str), error


def _check_message_start(data: dict[str, Any]) -> None:
    message = data["message"]
    assert isinstance(message["id"], str) and message["id"], message
    assert message["type"] == "message", message
    assert message["role"] == "assistant", message
    assert message["content"] == [], message
    assert isinstance(message["model"], str), message
    assert message["stop_reason"] is None, message
    assert message["stop_sequence"] is None, message
    usage = message["usage"]
    assert isinstance(usage["input_tokens"], int), usage
    assert isinstance(usage["output_tokens"], int), usage


def _check_block_start(block: dict[str, Any]) -> None:
    kind = block["type"]
    assert kind in _DELTAS_FOR_BLOCK, block
    if kind == "text":
        assert block["text"] == "", block
    elif kind == "thinking":
        assert isinstance(block["thinking"], str), block
        assert isinstance(block["signature"], str), block
    elif kind == "tool_use":
        assert isinstance(block["id"], str) and block["id"], block
        assert isinstance(block["name"], str), block
        assert block["input"] == {}, block
    else:
        assert isinstance(block["data"], str), block


def _check_delta(kind: str, delta: dict[str, Any]) -> None:
    assert delta["type"] in _DELTAS_FOR_BLOCK[kind], (kind, delta)
    field = {
        "text_delta": "text",
        "thinking_delta": "thinking",
        "signature_delta": "signature",
        "input_json_delta": "partial_json",
    }[delta["type"]]
    assert isinstance(delta[field], str), delta


def validate_anthropic_stream(events: list[tuple[str, dict[str, Any]]]) -> None:
    """Assert Anthropic Messages stream grammar, exactly.

    `message_start`, then blocks one at a time with indexes 0, 1, 2, ...
    (`content_block_start`, deltas of the block's kind,
    `content_block_stop`), then `message_delta` and `message_stop`. An
    `error` event may end the stream at any point; `ping` may come at any
    point before the end. Nothing follows the end. Every event's `data.type`
    equals its event name, and every tool_use block's JSON is an object.
    """
    assert events, "the stream is empty"
    state = "start"  # start -> blocks -> delta -> end
    open_kind: str | None = None
    next_index = 0
    tool_json = ""
    for position, (name, data) in enumerate(events):
        where = f"event {position} ({name})"
        assert state != "end", f"{where}: nothing may follow the end of the stream"
        assert data.get("type") == name, f"{where}: data.type is {data.get('type')!r}"
        if name == "ping":
            continue
        if name == "error":
            _check_anthropic_error(data)
            state = "end"
            continue
        if state == "start":
            assert name == "message_start", f"{where}: expected message_start"
            _check_message_start(data)
            state = "blocks"
        elif name == "content_block_start":
            assert state == "blocks", f"{where}: block after message_delta"
            assert open_kind is None, f"{where}: previous block still open"
            assert data["index"] == next_index, f"{where}: index {data['index']}"
            _check_block_start(data["content_block"])
            open_kind = data["content_block"]["type"]
            tool_json = ""
        elif name == "content_block_delta":
            assert open_kind is not None, f"{where}: no open block"
            assert data["index"] == next_index, f"{where}: index {data['index']}"
            _check_delta(open_kind, data["delta"])
            tool_json += data["delta"].get("partial_json", "")
        elif name == "content_block_stop":
            assert open_kind is not None, f"{where}: no open block"
            assert data["index"] == next_index, f"{where}: index {data['index']}"
            if open_kind == "tool_use":
                parsed = json.loads(tool_json or "{}")
                assert isinstance(parsed, dict), f"{where}: tool input {tool_json!r}"
            open_kind = None
            next_index += 1
        elif name == "message_delta":
            assert state == "blocks", f"{where}: second message_delta"
            assert open_kind is None, f"{where}: a block is still open"
            delta = data["delta"]
            assert delta["stop_reason"] in ANTHROPIC_STOP_REASONS, delta
            assert "stop_sequence" in delta, delta
            assert isinstance(data["usage"]["output_tokens"], int), data
            state = "delta"
        elif name == "message_stop":
            assert state == "delta", f"{where}: message_stop without message_delta"
            state = "end"
        else:
            raise AssertionError(f"{where}: unknown event")
    assert state == "end", "the stream ended without message_stop or error"
