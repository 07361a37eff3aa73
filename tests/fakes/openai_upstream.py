"""A fake OpenAI-compatible upstream: a real aiohttp server on 127.0.0.1:0.

Tests set `fake.script` to decide what the next answers are, and flip fault
switches (status, slow first byte, close mid-stream, garbage SSE, stall).
Every request body and its headers are kept in `fake.requests`.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class ToolCallScript:
    name: str
    arguments: str
    id: str = ""


@dataclass
class Script:
    """What the fake answers with."""

    text: str = "Hello from the fake upstream."
    reasoning: str = ""
    tool_calls: list[ToolCallScript] = field(default_factory=list)
    finish_reason: str = ""  # default: "tool_calls" with calls, else "stop"
    prompt_tokens: int = 11
    completion_tokens: int = 7
    # Faults
    status: int = 0  # answer this HTTP status with an OpenAI error body
    error_message: str = "fake upstream failure"
    retry_after: str | None = None
    first_byte_delay: float = 0.0
    chunk_delay: float = 0.0
    close_after_chunks: int | None = None  # drop the connection mid-stream
    garbage_after_chunks: int | None = None  # send unparsable SSE
    stall_after_chunks: int | None = None  # stop sending, keep open
    error_in_stream: str | None = None  # a 200 stream carrying an error event
    models: list[str] = field(default_factory=lambda: ["fake-model", "other-model"])


@dataclass
class Seen:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    raw: bytes


class FakeOpenAIUpstream:
    """Serves /v1/models and /v1/chat/completions from a `Script`."""

    def __init__(self) -> None:
        self.script = Script()
        self.requests: list[Seen] = []
        self.cancelled = 0
        self.active = 0
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.app = web.Application()
        self.app.router.add_get("/v1/models", self._models)
        self.app.router.add_post("/v1/chat/completions", self._chat)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _models(self, request: web.Request) -> web.Response:
        data = [
            {"id": m, "object": "model", "created": 0, "owned_by": "fake"}
            for m in self.script.models
        ]
        return web.json_response({"object": "list", "data": data})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = json.loads(raw)
        self.requests.append(Seen(request.path, body, dict(request.headers), raw))
        s = self.script
        if s.first_byte_delay:
            await asyncio.sleep(s.first_byte_delay)
        if s.status:
            headers = {"Retry-After": s.retry_after} if s.retry_after else {}
            return web.json_response(
                {
                    "error": {
                        "message": s.error_message,
                        "type": "server_error",
                        "code": None,
                    }
                },
                status=s.status,
                headers=headers,
            )
        if body.get("stream"):
            return await self._stream(request, body)
        return web.json_response(self._completion(body))

    def _finish_reason(self) -> str:
        s = self.script
        return s.finish_reason or ("tool_calls" if s.tool_calls else "stop")

    def _usage(self) -> dict[str, int]:
        s = self.script
        return {
            "prompt_tokens": s.prompt_tokens,
            "completion_tokens": s.completion_tokens,
            "total_tokens": s.prompt_tokens + s.completion_tokens,
        }

    def _completion(self, body: dict[str, Any]) -> dict[str, Any]:
        s = self.script
        message: dict[str, Any] = {"role": "assistant", "content": s.text or None}
        if s.reasoning:
            message["reasoning_content"] = s.reasoning
        if s.tool_calls:
            message["tool_calls"] = [
                {
                    "id": c.id or f"call_{i}",
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for i, c in enumerate(s.tool_calls)
            ]
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", ""),
            "choices": [
                {"index": 0, "message": message, "finish_reason": self._finish_reason()}
            ],
            "usage": self._usage(),
        }

    def _chunks(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        s = self.script
        base = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body.get("model", ""),
        }
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        for piece in _pieces(s.reasoning):
            deltas.append({"reasoning_content": piece})
        for piece in _pieces(s.text):
            deltas.append({"content": piece})
        for i, call in enumerate(s.tool_calls):
            deltas.append(
                {
                    "tool_calls": [
                        {
                            "index": i,
                            "id": call.id or f"call_{i}",
                            "type": "function",
                            "function": {"name": call.name, "arguments": ""},
                        }
                    ]
                }
            )
            for piece in _pieces(call.arguments, 8):
                deltas.append(
                    {"tool_calls": [{"index": i, "function": {"arguments": piece}}]}
                )
        chunks = [
            {**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]}
            for d in deltas
        ]
        chunks.append(
            {
                **base,
                "choices": [
                    {"index": 0, "delta": {}, "finish_reason": self._finish_reason()}
                ],
            }
        )
        include_usage = (body.get("stream_options") or {}).get("include_usage")
        if include_usage:
            chunks.append({**base, "choices": [], "usage": self._usage()})
        return chunks

    async def _stream(
        self, request: web.Request, body: dict[str, Any]
    ) -> web.StreamResponse:
        s = self.script
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        self.active += 1
        try:
            for n, chunk in enumerate(self._chunks(body)):
                if s.close_after_chunks is not None and n >= s.close_after_chunks:
                    assert request.transport is not None
                    request.transport.close()
                    return resp
                if s.garbage_after_chunks is not None and n >= s.garbage_after_chunks:
                    await resp.write(b"data: {this is not json\n\n")
                    return resp
                if s.error_in_stream is not None and n >= 1:
                    err = {"error": {"message": s.error_in_stream}}
                    await resp.write(b"data: " + json.dumps(err).encode() + b"\n\n")
                    return resp
                if s.stall_after_chunks is not None and n >= s.stall_after_chunks:
                    await asyncio.sleep(3600)
                await resp.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                if s.chunk_delay:
                    await asyncio.sleep(s.chunk_delay)
            await resp.write(b"data: [DONE]\n\n")
            return resp
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.active -= 1


def _pieces(text: str, size: int = 0) -> list[str]:
    if not text:
        return []
    if size:
        return [text[i : i + size] for i in range(0, len(text), size)]
    words = text.split(" ")
    return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]
