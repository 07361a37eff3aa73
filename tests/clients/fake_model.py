"""A scripted model server for the real-CLI tests: a real aiohttp server on
127.0.0.1:0 that records every request and answers from a `responder`.

The CLIs send more requests than the conversation itself (titles, quota
probes, warm-ups), so the fake does not answer from a fixed queue: the test
gives it a function that looks at each request and returns a `Reply`.

It speaks three wire formats, written from the public API references:

* OpenAI Chat Completions (`/v1/chat/completions`): what LM Bridge sends
  upstream in the tests.
* Anthropic Messages (`/v1/messages`, `/v1/messages/count_tokens`) and
  OpenAI Responses (`/v1/responses`): used by `capture.py` to record exactly
  what Claude Code and Codex send, with no proxy in between.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Call:
    """A tool call the model makes.

    `kind` is "function" or, for Responses freeform tools, "custom" (then
    `arguments` is the raw input). `namespace` is set on a Responses
    `function_call` item for a tool that came from a `namespace` tool.
    """

    name: str
    arguments: str
    call_id: str = ""
    namespace: str | None = None
    kind: str = "function"


@dataclass
class Reply:
    text: str = ""
    calls: list[Call] = field(default_factory=list)
    reasoning: str = ""
    # Responses only: output items sent as they are (research, see capture.py)
    raw_items: list[dict[str, Any]] = field(default_factory=list)
    # Responses only, research: "full" events, "done_only" (no
    # output_item.added, no deltas) or "no_item_done" (no output_item.done)
    stream_shape: str = "full"


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    query: dict[str, str] = field(default_factory=dict)

    def dump(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "body": self.body,
        }


Responder = Callable[[str, dict[str, Any]], Reply]


def _sse(data: dict[str, Any], event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + json.dumps(data).encode() + b"\n\n"


def _chunks(text: str, size: int = 12) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] if text else []


class ScriptedModel:
    """One server for all three APIs; `responder(api, body)` decides answers.

    `api` is "chat", "messages" or "responses".
    """

    def __init__(self, responder: Responder) -> None:
        self.responder = responder
        self.requests: list[Seen] = []
        self.errors: list[str] = []
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_route("*", "/{tail:.*}", self._any)
        self._counter = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [s.body for s in self.requests if s.path == path]

    def _next_id(self) -> int:
        self._counter += 1
        return self._counter

    async def _any(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = {"_raw": raw.decode("utf-8", "replace")}
        seen = Seen(
            request.method,
            request.path,
            dict(request.headers),
            body,
            dict(request.query),
        )
        self.requests.append(seen)
        path = request.path.rstrip("/")
        if request.method == "GET" and path.endswith("/models"):
            return web.json_response(self._models(path))
        if request.method != "POST" or not isinstance(body, dict):
            return web.json_response({"error": "not found"}, status=404)
        try:
            if path.endswith("/chat/completions"):
                return await self._chat(request, body)
            if path.endswith("/messages/count_tokens"):
                return web.json_response({"input_tokens": 42})
            if path.endswith("/messages"):
                return await self._messages(request, body)
            if path.endswith("/responses"):
                return await self._responses(request, body)
        except Exception as exc:  # a responder bug: make the test fail clearly
            self.errors.append(f"{type(exc).__name__}: {exc}")
            raise
        return web.json_response({"error": "not found"}, status=404)

    @staticmethod
    def _models(path: str) -> dict[str, Any]:
        if "/v1/" in path or path == "/v1/models":
            return {
                "object": "list",
                "data": [
                    {
                        "id": "fake-model",
                        "object": "model",
                        "created": 0,
                        "owned_by": "x",
                    }
                ],
            }
        return {"data": []}

    async def _stream(
        self, request: web.Request, frames: list[bytes]
    ) -> web.StreamResponse:
        resp = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await resp.prepare(request)
        for frame in frames:
            await resp.write(frame)
        await resp.write_eof()
        return resp

    # -------------------------------------------------------------- chat

    async def _chat(
        self, request: web.Request, body: dict[str, Any]
    ) -> web.StreamResponse:
        reply = self.responder("chat", body)
        n = self._next_id()
        finish = "tool_calls" if reply.calls else "stop"
        usage = {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}
        tool_calls: list[dict[str, Any]] = [
            {
                "id": c.call_id or f"call_{n}_{i}",
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments},
            }
            for i, c in enumerate(reply.calls)
        ]
        base = {
            "id": f"chatcmpl-{n}",
            "created": int(time.time()),
            "model": body.get("model", ""),
        }
        if not body.get("stream"):
            message: dict[str, Any] = {
                "role": "assistant",
                "content": reply.text or None,
            }
            if tool_calls:
                message["tool_calls"] = tool_calls
            return web.json_response(
                {
                    **base,
                    "object": "chat.completion",
                    "choices": [
                        {"index": 0, "message": message, "finish_reason": finish}
                    ],
                    "usage": usage,
                }
            )
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        deltas += [{"reasoning_content": p} for p in _chunks(reply.reasoning)]
        deltas += [{"content": p} for p in _chunks(reply.text)]
        for i, call in enumerate(tool_calls):
            head = {
                **call,
                "function": {"name": call["function"]["name"], "arguments": ""},
            }
            deltas.append({"tool_calls": [{"index": i, **head}]})
            for p in _chunks(call["function"]["arguments"], 10):
                deltas.append(
                    {"tool_calls": [{"index": i, "function": {"arguments": p}}]}
                )
        chunk = {**base, "object": "chat.completion.chunk"}
        frames = [
            _sse(
                {**chunk, "choices": [{"index": 0, "delta": d, "finish_reason": None}]}
            )
            for d in deltas
        ]
        frames.append(
            _sse(
                {
                    **chunk,
                    "choices": [{"index": 0, "delta": {}, "finish_reason": finish}],
                }
            )
        )
        if (body.get("stream_options") or {}).get("include_usage"):
            frames.append(_sse({**chunk, "choices": [], "usage": usage}))
        frames.append(b"data: [DONE]\n\n")
        return await self._stream(request, frames)

    # ---------------------------------------------------------- messages

    async def _messages(
        self, request: web.Request, body: dict[str, Any]
    ) -> web.StreamResponse:
        reply = self.responder("messages", body)
        n = self._next_id()
        content: list[dict[str, Any]] = []
        if reply.text:
            content.append({"type": "text", "text": reply.text})
        for i, c in enumerate(reply.calls):
            content.append(
                {
                    "type": "tool_use",
                    "id": c.call_id or f"toolu_{n}_{i}",
                    "name": c.name,
                    "input": json.loads(c.arguments or "{}"),
                }
            )
        stop = "tool_use" if reply.calls else "end_turn"
        usage = {"input_tokens": 20, "output_tokens": 5}
        message = {
            "id": f"msg_{n}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", ""),
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": usage,
        }
        if not body.get("stream"):
            return web.json_response(message)
        frames = [
            _sse(
                {
                    "type": "message_start",
                    "message": {
                        **message,
                        "content": [],
                        "stop_reason": None,
                        "usage": {"input_tokens": 20, "output_tokens": 1},
                    },
                },
                "message_start",
            )
        ]
        for index, block in enumerate(content):
            if block["type"] == "text":
                start: dict[str, Any] = {"type": "text", "text": ""}
                deltas = [
                    {"type": "text_delta", "text": p} for p in _chunks(block["text"])
                ]
            else:
                start = {**block, "input": {}}
                deltas = [
                    {"type": "input_json_delta", "partial_json": p}
                    for p in _chunks(json.dumps(block["input"]), 10)
                ]
            frames.append(
                _sse(
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": start,
                    },
                    "content_block_start",
                )
            )
            for d in deltas:
                frames.append(
                    _sse(
                        {"type": "content_block_delta", "index": index, "delta": d},
                        "content_block_delta",
                    )
                )
            frames.append(
                _sse(
                    {"type": "content_block_stop", "index": index}, "content_block_stop"
                )
            )
        frames.append(
            _sse(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": 5},
                },
                "message_delta",
            )
        )
        frames.append(_sse({"type": "message_stop"}, "message_stop"))
        return await self._stream(request, frames)

    # --------------------------------------------------------- responses

    async def _responses(
        self, request: web.Request, body: dict[str, Any]
    ) -> web.StreamResponse:
        reply = self.responder("responses", body)
        n = self._next_id()
        resp_id = f"resp_{n}"
        output: list[dict[str, Any]] = []
        if reply.text:
            output.append(
                {
                    "type": "message",
                    "id": f"msg_{n}",
                    "role": "assistant",
                    "status": "completed",
                    "content": [
                        {"type": "output_text", "text": reply.text, "annotations": []}
                    ],
                }
            )
        for i, c in enumerate(reply.calls):
            call_id = c.call_id or f"call_{n}_{i}"
            if c.kind == "custom":
                item: dict[str, Any] = {
                    "type": "custom_tool_call",
                    "id": f"ctc_{n}_{i}",
                    "call_id": call_id,
                    "name": c.name,
                    "input": c.arguments,
                    "status": "completed",
                }
            else:
                item = {
                    "type": "function_call",
                    "id": f"fc_{n}_{i}",
                    "call_id": call_id,
                    "name": c.name,
                    "arguments": c.arguments,
                    "status": "completed",
                }
            if c.namespace is not None:
                item["namespace"] = c.namespace
            output.append(item)
        output += reply.raw_items
        usage = {
            "input_tokens": 20,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 5,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 25,
        }
        response = {
            "id": resp_id,
            "object": "response",
            "created_at": int(time.time()),
            "status": "completed",
            "model": body.get("model", ""),
            "output": output,
            "usage": usage,
        }
        if not body.get("stream"):
            return web.json_response(response)
        seq = iter(range(100_000))

        kinds: dict[bytes, str] = {}

        def ev(kind: str, **data: Any) -> bytes:
            frame = _sse({"type": kind, "sequence_number": next(seq), **data}, kind)
            kinds[frame] = kind
            return frame

        start = {**response, "status": "in_progress", "output": [], "usage": None}
        frames = [
            ev("response.created", response=start),
            ev("response.in_progress", response=start),
        ]
        for index, item in enumerate(output):
            if item["type"] == "message":
                text = item["content"][0]["text"]
                frames.append(
                    ev(
                        "response.output_item.added",
                        output_index=index,
                        item={**item, "status": "in_progress", "content": []},
                    )
                )
                part = {"type": "output_text", "text": "", "annotations": []}
                frames.append(
                    ev(
                        "response.content_part.added",
                        item_id=item["id"],
                        output_index=index,
                        content_index=0,
                        part=part,
                    )
                )
                for p in _chunks(text):
                    frames.append(
                        ev(
                            "response.output_text.delta",
                            item_id=item["id"],
                            output_index=index,
                            content_index=0,
                            delta=p,
                        )
                    )
                frames.append(
                    ev(
                        "response.output_text.done",
                        item_id=item["id"],
                        output_index=index,
                        content_index=0,
                        text=text,
                    )
                )
                frames.append(
                    ev(
                        "response.content_part.done",
                        item_id=item["id"],
                        output_index=index,
                        content_index=0,
                        part={**part, "text": text},
                    )
                )
            elif item["type"] not in ("function_call", "custom_tool_call"):
                frames.append(
                    ev("response.output_item.added", output_index=index, item=item)
                )
            else:
                custom = item["type"] == "custom_tool_call"
                field_name = "input" if custom else "arguments"
                kind = (
                    "response.custom_tool_call_input"
                    if custom
                    else "response.function_call_arguments"
                )
                frames.append(
                    ev(
                        "response.output_item.added",
                        output_index=index,
                        item={**item, "status": "in_progress", field_name: ""},
                    )
                )
                for p in _chunks(item[field_name], 10):
                    frames.append(
                        ev(
                            kind + ".delta",
                            item_id=item["id"],
                            call_id=item["call_id"],
                            output_index=index,
                            delta=p,
                        )
                    )
                frames.append(
                    ev(
                        kind + ".done",
                        item_id=item["id"],
                        call_id=item["call_id"],
                        output_index=index,
                        **{field_name: item[field_name]},
                    )
                )
            frames.append(
                ev("response.output_item.done", output_index=index, item=item)
            )
        frames.append(ev("response.completed", response=response))
        if reply.stream_shape == "done_only":
            keep = (
                "response.created",
                "response.in_progress",
                "response.output_item.done",
            )
            frames = [f for f in frames if kinds[f] in (*keep, "response.completed")]
        elif reply.stream_shape == "no_item_done":
            frames = [f for f in frames if kinds[f] != "response.output_item.done"]
        return await self._stream(request, frames)


# ------------------------------------------------- reading Chat requests


def chat_tools(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The function tools of a Chat Completions request, by name."""
    tools = body.get("tools") or []
    return {
        t["function"]["name"]: t["function"]
        for t in tools
        if t.get("type") == "function" and "function" in t
    }


def chat_text(message: dict[str, Any]) -> str:
    """The text of a Chat message, whether its content is a string or parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def chat_tool_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The `tool` messages of a Chat request."""
    return [m for m in body.get("messages", []) if m.get("role") == "tool"]


def chat_tool_result(body: dict[str, Any], call_id: str) -> str:
    """The text of the tool result for `call_id` (the test fails without one)."""
    found = [
        chat_text(m)
        for m in chat_tool_results(body)
        if m.get("tool_call_id") == call_id
    ]
    assert found, (
        f"no tool result for {call_id}: {json.dumps(body['messages'])[-2000:]}"
    )
    return found[0]


def chat_tool_calls(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every tool call of the assistant messages of a Chat request."""
    calls: list[dict[str, Any]] = []
    for m in body.get("messages", []):
        if m.get("role") == "assistant":
            calls += m.get("tool_calls") or []
    return calls
