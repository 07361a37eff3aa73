"""A fake upstream: a real aiohttp server on 127.0.0.1:0.

It serves OpenAI Chat Completions, OpenAI Responses and Anthropic Messages
from one `Script`. Tests set `fake.script` to decide what the next answers
are, and flip fault switches (status, slow first byte, close mid-stream,
garbage SSE, stall). Stop sequences in a request are honoured the way each
API does (Chat `stop`, Messages `stop_sequences`; Responses has none).
Every request body and its headers are kept in `fake.requests`. Responses
ids are remembered so `previous_response_id` works; `forget_responses()`
acts like a restarted LM Studio.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from fakes import wire_formats


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
    # Responses: the reasoning item's opaque `encrypted_content`.
    encrypted_reasoning: str = ""
    tool_calls: list[ToolCallScript] = field(default_factory=list)
    finish_reason: str = ""  # default: "tool_calls" with calls, else "stop"
    # Chat streams: send the calls' argument pieces round-robin (index 0,
    # 1, 0, 1, ...) after all their first chunks, as a valid server may.
    interleave_tool_calls: bool = False
    prompt_tokens: int = 11
    completion_tokens: int = 7
    # Of prompt_tokens, how many the server reused from its cache
    # (`prompt_tokens_details.cached_tokens`, as llama.cpp and OpenAI say).
    cached_tokens: int = 0
    # Faults
    status: int = 0  # answer this HTTP status with an OpenAI error body
    error_message: str = "fake upstream failure"
    error_fields: dict[str, Any] = field(default_factory=dict)  # beside message
    retry_after: str | None = None
    first_byte_delay: float = 0.0
    chunk_delay: float = 0.0
    close_after_chunks: int | None = None  # drop the connection mid-stream
    garbage_after_chunks: int | None = None  # send unparsable SSE
    stall_after_chunks: int | None = None  # stop sending, keep open
    error_in_stream: str | None = None  # a 200 stream carrying an error event
    # Raw SSE frames sent instead of the rest of a 200 stream after its
    # first event (a Messages or Responses server's own error events).
    frames_in_stream: list[bytes] | None = None
    garbage_body: bytes | None = None  # a 200 answer that is not JSON nor SSE
    models: list[str] = field(default_factory=lambda: ["fake-model", "other-model"])
    # Refuse a larger max_tokens with OpenAI's (or Anthropic's) 400 wording.
    max_tokens_cap: int | None = None
    # Refuse prompt (its `prompt_tokens`) + max_tokens above this window,
    # in vLLM's words.
    context_window: int | None = None
    # llama.cpp's server: Chat cache figures in `timings` (`cache_n`,
    # `prompt_n`), not in the usage; with `include_usage` off, none there.
    llama_timings: bool = False
    # Sent verbatim where the cached count goes, in every API (nonsense tests).
    cached_figure: Any = None


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
        # Answers for the next requests, in turn (then `script` stays the
        # last one): a model that calls a tool, then reads its result.
        self.scripts: list[Script] = []
        self.requests: list[Seen] = []
        self.cancelled = 0
        self.active = 0
        self.model_lists = 0  # GET /v1/models answered
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.app = web.Application()
        self.app.router.add_get("/v1/models", self._models)
        self.app.router.add_post("/v1/chat/completions", self._chat)
        self.app.router.add_post("/v1/responses", self._responses)
        self.app.router.add_post("/v1/messages", self._messages)
        self.known_responses: set[str] = set()
        self.disabled: set[str] = set()  # paths answering 404, e.g. old servers

    def forget_responses(self) -> None:
        """Forget every response id, as a restarted server would."""
        self.known_responses.clear()

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
        self.model_lists += 1
        data = [
            {"id": m, "object": "model", "created": 0, "owned_by": "fake"}
            for m in self.script.models
        ]
        return web.json_response({"object": "list", "data": data})

    async def _intake(
        self, request: web.Request
    ) -> tuple[dict[str, Any], web.Response | None]:
        raw = await request.read()
        body = json.loads(raw)
        self.requests.append(Seen(request.path, body, dict(request.headers), raw))
        if self.scripts:
            self.script = self.scripts.pop(0)
        s = self.script
        if s.first_byte_delay:
            await asyncio.sleep(s.first_byte_delay)
        if s.garbage_body is not None:
            return body, web.Response(body=s.garbage_body, content_type="text/html")
        if request.path in self.disabled:
            return body, web.json_response(
                {"error": "Unexpected endpoint or method."}, status=404
            )
        asked = next(
            (
                body[k]
                for k in ("max_completion_tokens", "max_tokens", "max_output_tokens")
                if isinstance(body.get(k), int)
            ),
            None,
        )
        if (
            s.max_tokens_cap is not None
            and asked is not None
            and asked > s.max_tokens_cap
        ):
            if request.path == "/v1/messages":
                message = (
                    f"max_tokens: {asked} > {s.max_tokens_cap}, which is the maximum"
                    " allowed number of output tokens for fake-model"
                )
                refusal: dict[str, Any] = {
                    "type": "error",
                    "error": {"type": "invalid_request_error", "message": message},
                }
            else:
                message = (
                    f"max_tokens is too large: {asked}. This model supports at most"
                    f" {s.max_tokens_cap} completion tokens, whereas you provided"
                    f" {asked}."
                )
                refusal = {
                    "error": {
                        "message": message,
                        "type": "invalid_request_error",
                        "param": "max_tokens",
                        "code": "invalid_value",
                    }
                }
            return body, web.json_response(refusal, status=400)
        window = s.context_window
        if (
            window is not None
            and asked is not None
            and s.prompt_tokens + asked > window
        ):
            message = (
                f"This model's maximum context length is {window} tokens. However,"
                f" you requested {s.prompt_tokens + asked} tokens ({s.prompt_tokens} in"
                f" the messages, {asked} in the completion). Please reduce the length"
                " of the messages or completion."
            )
            refused = {"object": "error", "message": message, "type": "BadRequestError"}
            return body, web.json_response(refused, status=400)
        if s.status:
            headers = {"Retry-After": s.retry_after} if s.retry_after else {}
            if request.path == "/v1/messages":
                error: dict[str, Any] = {
                    "type": "error",
                    "error": {"type": "api_error", "message": s.error_message},
                }
            else:
                error = {
                    "error": {
                        "message": s.error_message,
                        "type": "server_error",
                        "code": None,
                        **s.error_fields,
                    }
                }
            return body, web.json_response(error, status=s.status, headers=headers)
        return body, None

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body, failed = await self._intake(request)
        if failed is not None:
            return failed
        s = self.script
        text, stop = wire_formats.cut_at_stop(s.text, body.get("stop"))
        if stop is not None:  # the model ends there: no tool calls follow
            s = dataclasses.replace(s, text=text, tool_calls=[], finish_reason="stop")
        if body.get("stream"):
            return await self._stream(request, self._chat_frames(s, body))
        return web.json_response(self._completion(s, body))

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        body, failed = await self._intake(request)
        if failed is not None:
            return failed
        previous = body.get("previous_response_id")
        if previous and previous not in self.known_responses:
            return web.json_response(
                {
                    "error": {
                        "message": f"Previous response with id '{previous}' not found.",
                        "type": "invalid_request_error",
                        "param": "previous_response_id",
                        "code": "previous_response_not_found",
                    }
                },
                status=400,
            )
        resp_id = f"resp_{len(self.requests)}"
        self.known_responses.add(resp_id)
        if body.get("stream"):
            frames = wire_formats.responses_frames(self.script, body, resp_id)
            return await self._stream(request, frames)
        return web.json_response(
            wire_formats.responses_object(self.script, body, resp_id)
        )

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body, failed = await self._intake(request)
        if failed is not None:
            return failed
        s = self.script
        finish = self._finish_reason(s)
        text, stop = wire_formats.cut_at_stop(s.text, body.get("stop_sequences"))
        if stop is not None:
            s = dataclasses.replace(s, text=text, tool_calls=[])
            finish = "stop_sequence"
        if body.get("stream"):
            frames = wire_formats.messages_frames(s, body, finish, stop)
            return await self._stream(request, frames)
        return web.json_response(wire_formats.messages_object(s, body, finish, stop))

    @staticmethod
    def _finish_reason(s: Script) -> str:
        return s.finish_reason or ("tool_calls" if s.tool_calls else "stop")

    def _usage(self) -> dict[str, Any]:
        s = self.script
        usage: dict[str, Any] = {
            "prompt_tokens": s.prompt_tokens,
            "completion_tokens": s.completion_tokens,
            "total_tokens": s.prompt_tokens + s.completion_tokens,
        }
        if s.cached_tokens:
            usage["prompt_tokens_details"] = {"cached_tokens": s.cached_tokens}
        return usage

    def _completion(self, s: Script, body: dict[str, Any]) -> dict[str, Any]:
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
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": self._finish_reason(s),
                }
            ],
            "usage": self._chat_usage(),
            **self._timings(s),
        }

    def _chat_usage(self) -> dict[str, Any]:
        """`_usage`, with the cache figure where the script's server puts it."""
        s = self.script
        usage = self._usage()
        if s.llama_timings:
            usage.pop("prompt_tokens_details", None)
        elif s.cached_figure is not None:
            usage["prompt_tokens_details"] = {"cached_tokens": s.cached_figure}
        return usage

    @staticmethod
    def _timings(s: Script) -> dict[str, Any]:
        """llama.cpp's `timings` object, when the script asks for it."""
        if not s.llama_timings:
            return {}
        cached = wire_formats.cached_figure(s)
        return {
            "timings": {
                "cache_n": cached,
                "prompt_n": s.prompt_tokens - s.cached_tokens,
                "prompt_ms": 12.5,
                "predicted_n": s.completion_tokens,
                "predicted_ms": 30.0,
            }
        }

    def _chat_frames(self, s: Script, body: dict[str, Any]) -> list[bytes]:
        base = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body.get("model", ""),
        }
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        for piece in wire_formats.pieces(s.reasoning):
            deltas.append({"reasoning_content": piece})
        for piece in wire_formats.pieces(s.text):
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
            if s.interleave_tool_calls:
                continue
            for piece in wire_formats.pieces(call.arguments, 8):
                deltas.append(
                    {"tool_calls": [{"index": i, "function": {"arguments": piece}}]}
                )
        if s.interleave_tool_calls:
            queues = [wire_formats.pieces(c.arguments, 5) for c in s.tool_calls]
            while any(queues):
                for i, queue in enumerate(queues):
                    if queue:
                        piece = queue.pop(0)
                        delta = {"index": i, "function": {"arguments": piece}}
                        deltas.append({"tool_calls": [delta]})
        chunks = [
            {**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]}
            for d in deltas
        ]
        chunks.append(
            {
                **base,
                "choices": [
                    {"index": 0, "delta": {}, "finish_reason": self._finish_reason(s)}
                ],
                **self._timings(s),
            }
        )
        include_usage = (body.get("stream_options") or {}).get("include_usage")
        if include_usage:
            chunks.append({**base, "choices": [], "usage": self._chat_usage()})
        frames = [b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks]
        return [*frames, b"data: [DONE]\n\n"]

    async def _stream(
        self, request: web.Request, frames: list[bytes]
    ) -> web.StreamResponse:
        s = self.script
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        self.active += 1
        try:
            for n, frame in enumerate(frames):
                if s.close_after_chunks is not None and n >= s.close_after_chunks:
                    assert request.transport is not None
                    request.transport.close()
                    return resp
                if s.garbage_after_chunks is not None and n >= s.garbage_after_chunks:
                    await resp.write(b"data: {this is not json\n\n")
                    return resp
                if s.frames_in_stream is not None and n >= 1:
                    for raw in s.frames_in_stream:
                        await resp.write(raw)
                    return resp
                if s.error_in_stream is not None and n >= 1:
                    err = {"error": {"message": s.error_in_stream, **s.error_fields}}
                    await resp.write(b"data: " + json.dumps(err).encode() + b"\n\n")
                    return resp
                if s.stall_after_chunks is not None and n >= s.stall_after_chunks:
                    await asyncio.sleep(3600)
                await resp.write(frame)
                if s.chunk_delay:
                    await asyncio.sleep(s.chunk_delay)
            return resp
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.active -= 1
