"""Stream grammar validators: assert that a client would accept a stream.

Import from tests as `from validators import ...` (pytest puts `tests/` on
`sys.path`). Self-contained on purpose: stdlib only, no LM Bridge code, so
a bug in our SSE framing cannot hide a bug in our encoders.
"""

from __future__ import annotations

import itertools
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


CHAT_FINISH_REASONS = {
    "stop",
    "length",
    "tool_calls",
    "content_filter",
    "function_call",
}
RESPONSES_TERMINAL = {"response.completed", "response.incomplete", "response.failed"}


def _check_chat_error(data: dict[str, Any]) -> None:
    error = data["error"]
    assert isinstance(error, dict), data
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error.get("type"), str), error


def _check_chat_tool_calls(calls: Any, arguments: dict[int, str], where: str) -> None:
    assert isinstance(calls, list) and calls, f"{where}: tool_calls {calls!r}"
    for call in calls:
        index = call["index"]
        assert isinstance(index, int), f"{where}: tool call index {index!r}"
        function = call.get("function") or {}
        if index not in arguments:
            assert index == len(arguments), f"{where}: tool call index {index} skips"
            assert isinstance(call.get("id"), str) and call["id"], f"{where}: no id"
            assert call.get("type") == "function", f"{where}: {call!r}"
            assert isinstance(function.get("name"), str) and function["name"], call
            arguments[index] = ""
        else:
            assert not call.get("id"), f"{where}: call {index} got a second id"
            assert not function.get("name"), f"{where}: call {index} renamed"
        piece = function.get("arguments")
        if piece is not None:
            assert isinstance(piece, str), f"{where}: arguments {piece!r}"
            arguments[index] += piece


def validate_chat_stream(events: list[tuple[str, dict[str, Any]]]) -> None:
    """Assert Chat Completions stream grammar (`parse_sse` output).

    Every frame is a bare `data:` line holding a `chat.completion.chunk`
    with one id and model throughout, and at most one choice (index 0).
    The first choice delta carries `role: assistant`, and no other does.
    A tool call's first delta has its id, type and name, indexes count up
    from 0, and each call's arguments join to a JSON object. Exactly one
    chunk has a `finish_reason`; after it may come one usage chunk
    (`choices: []`), then `data: [DONE]` ends the stream. An error chunk
    (`{"error": {...}}`) may end the stream at any point instead, followed
    by nothing but an optional `[DONE]`.
    """
    assert events, "the stream is empty"
    state = "chunks"  # chunks -> finished -> usage -> done | error
    chunk_id: str | None = None
    model: str | None = None
    roles = 0
    arguments: dict[int, str] = {}
    for position, (name, data) in enumerate(events):
        where = f"event {position}"
        assert name == "", f"{where}: Chat streams have no event names ({name!r})"
        if data == {"[DONE]": True}:
            assert state != "done", f"{where}: a second [DONE]"
            assert state != "chunks", f"{where}: [DONE] before any finish_reason"
            state = "done"
            continue
        assert state not in ("done", "error"), f"{where}: data after the end"
        if "error" in data:
            _check_chat_error(data)
            state = "error"
            continue
        assert data["object"] == "chat.completion.chunk", f"{where}: {data!r}"
        assert isinstance(data["id"], str) and data["id"], f"{where}: id"
        assert isinstance(data["created"], int), f"{where}: created"
        assert isinstance(data["model"], str), f"{where}: model"
        chunk_id = chunk_id or data["id"]
        model = data["model"] if model is None else model
        assert data["id"] == chunk_id, f"{where}: the chunk id changed"
        assert data["model"] == model, f"{where}: the model changed"
        choices = data["choices"]
        assert isinstance(choices, list) and len(choices) <= 1, f"{where}: choices"
        if not choices:
            usage = data.get("usage")
            assert isinstance(usage, dict), f"{where}: a chunk with no choice or usage"
            assert state == "finished", f"{where}: usage chunk before finish_reason"
            assert isinstance(usage["prompt_tokens"], int), usage
            assert isinstance(usage["completion_tokens"], int), usage
            state = "usage"
            continue
        assert state == "chunks", f"{where}: a choice after the finish_reason"
        choice = choices[0]
        assert choice["index"] == 0, f"{where}: choice index {choice['index']}"
        delta = choice["delta"]
        assert isinstance(delta, dict), f"{where}: delta {delta!r}"
        if "role" in delta:
            assert delta["role"] == "assistant", f"{where}: role {delta['role']!r}"
            roles += 1
        assert roles == 1, f"{where}: {roles} role deltas so far (one, first)"
        for field in ("content", "reasoning_content", "refusal"):
            value = delta.get(field)
            assert value is None or isinstance(value, str), f"{where}: {field}"
        if delta.get("tool_calls") is not None:
            _check_chat_tool_calls(delta["tool_calls"], arguments, where)
        finish = choice.get("finish_reason")
        if finish is not None:
            assert finish in CHAT_FINISH_REASONS, f"{where}: finish {finish!r}"
            state = "finished"
    assert state in ("done", "error"), "the stream ended without [DONE]"
    if state == "done":
        for index, text in arguments.items():
            parsed = json.loads(text or "{}")
            assert isinstance(parsed, dict), f"tool call {index} arguments {text!r}"


def validate_responses_stream(events: list[dict[str, Any]]) -> None:
    """Check the Responses SSE grammar on a list of decoded events.

    `response.created` first, exactly one terminal event last,
    `sequence_number` strictly increasing, every item added before its
    deltas and done after them, done texts equal to their deltas, and the
    terminal response listing the items in order.
    """
    assert events, "empty stream"
    assert events[0]["type"] == "response.created"
    assert events[-1]["type"] in RESPONSES_TERMINAL
    assert sum(e["type"] in RESPONSES_TERMINAL for e in events) == 1
    numbers = [e["sequence_number"] for e in events]
    assert all(a < b for a, b in itertools.pairwise(numbers)), numbers
    items: dict[int, dict[str, Any]] = {}
    for position, event in enumerate(events):
        kind = event["type"]
        if kind == "error":
            assert events[position + 1]["type"] == "response.failed"
            continue
        if kind in RESPONSES_TERMINAL or kind in (
            "response.created",
            "response.in_progress",
        ):
            continue
        index = event["output_index"]
        if kind == "response.output_item.added":
            assert index == len(items), "output indexes must count up from 0"
            items[index] = {
                "id": event["item"]["id"],
                "type": event["item"]["type"],
                "done": False,
                "parts": {},
                "args": "",
            }
            continue
        state = items[index]  # KeyError: an event before its item was added
        assert not state["done"], f"{kind} after output_item.done"
        item_id = event["item"]["id"] if "item" in event else event["item_id"]
        assert item_id == state["id"]
        parts: dict[int, dict[str, Any]] = state["parts"]
        if kind == "response.output_item.done":
            assert all(p["closed"] for p in parts.values()), "part left open"
            _check_done_item(event["item"], state)
            state["done"] = True
        elif kind in (
            "response.content_part.added",
            "response.reasoning_summary_part.added",
        ):
            number = _part_number(event)
            assert number not in parts
            parts[number] = {"text": "", "closed": False, "text_done": False}
        elif kind in (
            "response.output_text.delta",
            "response.reasoning_summary_text.delta",
        ):
            part = parts[_part_number(event)]
            assert not part["text_done"]
            part["text"] += event["delta"]
        elif kind in (
            "response.output_text.done",
            "response.reasoning_summary_text.done",
        ):
            part = parts[_part_number(event)]
            assert part["text"] == event["text"]
            part["text_done"] = True
        elif kind in (
            "response.content_part.done",
            "response.reasoning_summary_part.done",
        ):
            part = parts[_part_number(event)]
            assert part["text_done"] and part["text"] == event["part"]["text"]
            part["closed"] = True
        elif kind == "response.function_call_arguments.delta":
            assert state["type"] == "function_call"
            state["args"] += event["delta"]
        elif kind == "response.function_call_arguments.done":
            assert event["arguments"] == (state["args"] or "{}")
        elif kind == "response.custom_tool_call_input.delta":
            assert state["type"] == "custom_tool_call"
            assert not state.get("input_done")
            state["args"] += event["delta"]
        elif kind == "response.custom_tool_call_input.done":
            assert event["input"] == state["args"]
            state["input_done"] = True
        else:
            raise AssertionError(f"unexpected event {kind}")
    final = events[-1]["response"]
    status = {"response.completed": "completed", "response.incomplete": "incomplete"}
    assert final["status"] == status.get(events[-1]["type"], "failed")
    assert [i["id"] for i in final["output"]] == [s["id"] for s in items.values()]
    if final["status"] != "failed":
        assert all(s["done"] for s in items.values())


def _part_number(event: dict[str, Any]) -> int:
    number = event.get("content_index", event.get("summary_index"))
    assert isinstance(number, int)
    return number


def _check_done_item(item: dict[str, Any], state: dict[str, Any]) -> None:
    parts = state["parts"]
    if item["type"] == "message":
        assert [c["text"] for c in item["content"]] == [
            parts[n]["text"] for n in sorted(parts)
        ]
    elif item["type"] == "function_call":
        assert item["arguments"] == (state["args"] or "{}")
    elif item["type"] == "custom_tool_call":
        assert state.get("input_done"), "custom_tool_call_input.done missing"
        assert item["input"] == state["args"]
    else:
        assert [s["text"] for s in item["summary"]] == [
            parts[n]["text"] for n in sorted(parts)
        ]


GEMINI_FINISH_REASONS = {"STOP", "MAX_TOKENS", "SAFETY", "RECITATION", "OTHER"}
GEMINI_PART_KEYS = {"text", "thought", "functionCall"}


def _check_gemini_error(data: dict[str, Any]) -> None:
    assert set(data) == {"error"}, data
    error = data["error"]
    assert set(error) == {"code", "message", "status"}, error
    assert isinstance(error["code"], int) and error["code"] >= 400, error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["status"], str) and error["status"].isupper(), error


def validate_gemini_stream(raw: bytes) -> None:
    """A `streamGenerateContent?alt=sse` body: `data:` lines only (Google's
    SDK reads any other line as JSON), every frame a GenerateContentResponse
    of one candidate, the last holding the finish reason and usage, or one
    error frame in Google's shape last."""
    text = raw.decode("utf-8")
    lines = [line for line in text.replace("\r\n", "\n").split("\n") if line]
    assert lines, "an empty stream"
    assert all(line.startswith("data: ") for line in lines), lines
    frames = [data for name, data in parse_sse(raw)]
    for data in frames[:-1]:
        assert "error" not in data, "an error frame must end the stream"
        assert "finishReason" not in data["candidates"][0], "a frame after the end"
    for data in frames:
        if "error" in data:
            continue
        (candidate,) = data["candidates"]
        assert candidate["index"] == 0, candidate
        content = candidate["content"]
        assert content["role"] == "model", content
        for part in content["parts"]:
            assert set(part) <= GEMINI_PART_KEYS and part, part
            call = part.get("functionCall")
            if call is not None:
                assert isinstance(call["name"], str) and call["name"], call
                assert isinstance(call["args"], dict), call
    last = frames[-1]
    if "error" in last:
        _check_gemini_error(last)
        return
    assert last["candidates"][0]["finishReason"] in GEMINI_FINISH_REASONS, last
    usage = last["usageMetadata"]
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage[
        "candidatesTokenCount"
    ] + usage.get("thoughtsTokenCount", 0), usage
