"""Every front door, streamed and whole: the request, and what came back.

`call(url, door, stream, session)` sends one turn through a door over a raw
socket (`dbfaults.raw_call`) and returns an `Outcome`: the HTTP status,
the answer's text or its error in the door's own protocol, and whatever the
server wrote after its one response (must be nothing). Streams are checked
against the protocol's grammar (`validators`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from faults.dbfaults import RawAnswer, raw_call
from validators import (
    parse_sse,
    validate_anthropic_stream,
    validate_chat_stream,
    validate_responses_stream,
)

DOORS = ("anthropic", "openai-chat", "responses", "chat")
MODEL = "claude-sonnet-4-6"  # routed to the fake by the test settings
SESSION_HEADER = "X-Claude-Code-Session-Id"


@dataclass
class Outcome:
    status: int
    text: str
    error: str | None
    raw: RawAnswer


def request(door: str, stream: bool, prompt: str = "hi") -> tuple[str, dict[str, Any]]:
    """The path and body of one turn through `door`."""
    user = {"role": "user", "content": prompt}
    if door == "anthropic":
        return "/v1/messages", {
            "model": MODEL,
            "max_tokens": 50,
            "messages": [user],
            "stream": stream,
        }
    if door == "openai-chat":
        return "/v1/chat/completions", {
            "model": MODEL,
            "messages": [user],
            "stream": stream,
        }
    if door == "responses":
        return "/v1/responses", {"model": MODEL, "input": prompt, "stream": stream}
    assert door == "chat"
    return ("/chat/stream" if stream else "/chat"), {
        "model_key": MODEL,
        "messages": [user],
    }


async def call(
    url: str, door: str, stream: bool, session: str | None = None, prompt: str = "hi"
) -> Outcome:
    """One turn through `door`; with `session`, as a keyed session's turn."""
    path, body = request(door, stream, prompt)
    headers = {SESSION_HEADER: session} if session else {}
    raw = await raw_call(url, path, body, headers)
    assert raw.trailing == b"", f"bytes after the response: {raw.trailing[:200]!r}"
    assert b"HTTP/1.1 " not in raw.body, "a second HTTP response inside the body"
    if raw.status != 200:
        return Outcome(raw.status, "", error_message(door, raw.json()), raw)
    if not stream:
        return Outcome(200, *_whole(door, raw.json()), raw)
    return Outcome(200, *_stream(door, raw.body), raw)


def error_message(door: str, payload: dict[str, Any]) -> str:
    """The message of an error answer, checked to be in `door`'s shape."""
    if door == "anthropic":
        assert payload["type"] == "error", payload
        return str(payload["error"]["message"])
    if door == "chat":
        assert payload["status"] == "error", payload
        return str(payload["message"])
    return str(payload["error"]["message"])


def _whole(door: str, data: dict[str, Any]) -> tuple[str, str | None]:
    if door == "anthropic":
        return "".join(b["text"] for b in data["content"] if b["type"] == "text"), None
    if door == "openai-chat":
        return data["choices"][0]["message"]["content"] or "", None
    if door == "responses":
        texts = [
            c["text"]
            for item in data["output"]
            if item["type"] == "message"
            for c in item["content"]
            if c["type"] == "output_text"
        ]
        return "".join(texts), None
    return data["content"], None


def _stream(door: str, body: bytes) -> tuple[str, str | None]:
    if door == "chat":
        lines = [json.loads(line) for line in body.decode().splitlines()]
        assert lines and lines[-1]["type"] in ("done", "error"), lines
        text = "".join(line["content"] for line in lines if line["type"] == "fragment")
        error = lines[-1]["message"] if lines[-1]["type"] == "error" else None
        return text, error
    events = parse_sse(body)
    if door == "anthropic":
        validate_anthropic_stream(events)
        text = "".join(
            d["delta"].get("text", "")
            for name, d in events
            if name == "content_block_delta"
        )
        error = events[-1][1]["error"]["message"] if events[-1][0] == "error" else None
        return text, error
    if door == "openai-chat":
        validate_chat_stream(events)
        text = "".join(
            (c.get("delta") or {}).get("content") or ""
            for _, d in events
            for c in d.get("choices", [])
        )
        errors = [d["error"]["message"] for _, d in events if "error" in d]
        return text, errors[-1] if errors else None
    datas = [d for _, d in events]
    validate_responses_stream(datas)
    text = "".join(
        d["delta"] for d in datas if d.get("type") == "response.output_text.delta"
    )
    last = datas[-1]
    error = None
    if last["type"] == "response.failed":
        error = last["response"]["error"]["message"]
    return text, error
