"""A fast fake upstream for benchmarks, run as its own process.

Serves OpenAI Chat Completions (`/v1/chat/completions`) and Anthropic
Messages (`/v1/messages`, so the floor relay and direct calls have an
Anthropic-speaking target too), plus `/v1/models`. Answers are canned and
cached per model name: non-streaming JSON at once; streams of `--chunks`
frames carrying `--chunk-size` characters each, written one frame per
write, with no delay unless asked.

The model name overrides the defaults per request, so that the proxy (which
forwards the model) can ask for any shape: `...-chunks-1000`, `...-size-64`,
`...-delay-20` (milliseconds between frames), e.g. `fake-chunks-100-delay-20`.

Run: python bench/fake_upstream_server.py --port 0   (prints "listening PORT")
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import re

import msgspec
from aiohttp import web


class _Head(msgspec.Struct):
    model: str = ""
    stream: bool = False


_head = msgspec.json.Decoder(_Head)
_OPTION = re.compile(r"(chunks|size|delay)-(\d+)")


class Shape(msgspec.Struct, frozen=True):
    chunks: int
    size: int
    delay: float  # seconds between frames


DEFAULT = Shape(chunks=20, size=8, delay=0.0)


@functools.lru_cache(maxsize=256)
def shape_of(model: str) -> Shape:
    opts = {k: int(v) for k, v in _OPTION.findall(model)}
    return Shape(
        chunks=opts.get("chunks", DEFAULT.chunks),
        size=opts.get("size", DEFAULT.size),
        delay=opts["delay"] / 1000 if "delay" in opts else DEFAULT.delay,
    )


def _piece(i: int, size: int) -> str:
    return (f"tok{i} " * size)[:size]


def _sse(obj: object, event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


@functools.lru_cache(maxsize=256)
def chat_json(model: str) -> bytes:
    s = shape_of(model)
    text = "".join(_piece(i, s.size) for i in range(s.chunks))
    return json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 1700000000,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": 1000,
                "completion_tokens": s.chunks,
                "total_tokens": 1000 + s.chunks,
            },
        },
        separators=(",", ":"),
    ).encode()


@functools.lru_cache(maxsize=256)
def chat_frames(model: str) -> tuple[bytes, ...]:
    s = shape_of(model)
    base = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": model,
    }
    frames = []
    for i in range(s.chunks):
        delta = {"content": _piece(i, s.size)}
        if i == 0:
            delta = {"role": "assistant", **delta}
        frames.append(
            _sse(
                {
                    **base,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
                }
            )
        )
    frames.append(
        _sse({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    )
    usage = {
        "prompt_tokens": 1000,
        "completion_tokens": s.chunks,
        "total_tokens": 1000 + s.chunks,
    }
    frames.append(_sse({**base, "choices": [], "usage": usage}))
    frames.append(b"data: [DONE]\n\n")
    return tuple(frames)


@functools.lru_cache(maxsize=256)
def messages_json(model: str) -> bytes:
    s = shape_of(model)
    text = "".join(_piece(i, s.size) for i in range(s.chunks))
    return json.dumps(
        {
            "id": "msg_bench",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 1000, "output_tokens": s.chunks},
        },
        separators=(",", ":"),
    ).encode()


@functools.lru_cache(maxsize=256)
def messages_frames(model: str) -> tuple[bytes, ...]:
    s = shape_of(model)
    start = {
        "type": "message_start",
        "message": {
            "id": "msg_bench",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 1000, "output_tokens": 1},
        },
    }
    frames = [
        _sse(start, "message_start"),
        _sse(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
            "content_block_start",
        ),
    ]
    for i in range(s.chunks):
        delta = {"type": "text_delta", "text": _piece(i, s.size)}
        frames.append(
            _sse(
                {"type": "content_block_delta", "index": 0, "delta": delta},
                "content_block_delta",
            )
        )
    frames += [
        _sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        _sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": s.chunks},
            },
            "message_delta",
        ),
        _sse({"type": "message_stop"}, "message_stop"),
    ]
    return tuple(frames)


async def _stream(
    request: web.Request, frames: tuple[bytes, ...], delay: float
) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    # A client may hang up once it has what it needs (LM Bridge stops
    # reading at the finish event): not an error here.
    with contextlib.suppress(ConnectionResetError):
        for frame in frames:
            await resp.write(frame)
            if delay:
                await asyncio.sleep(delay)
        await resp.write_eof()
    return resp


async def chat(request: web.Request) -> web.StreamResponse:
    head = _head.decode(await request.read())
    if head.stream:
        return await _stream(
            request, chat_frames(head.model), shape_of(head.model).delay
        )
    return web.Response(body=chat_json(head.model), content_type="application/json")


async def messages(request: web.Request) -> web.StreamResponse:
    head = _head.decode(await request.read())
    if head.stream:
        frames = messages_frames(head.model)
        return await _stream(request, frames, shape_of(head.model).delay)
    return web.Response(body=messages_json(head.model), content_type="application/json")


async def models(request: web.Request) -> web.Response:
    data = [{"id": "fake-model", "object": "model", "created": 0, "owned_by": "fake"}]
    return web.json_response({"object": "list", "data": data})


async def main() -> None:
    global DEFAULT
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--chunks", type=int, default=DEFAULT.chunks)
    parser.add_argument("--chunk-size", type=int, default=DEFAULT.size)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    args = parser.parse_args()
    DEFAULT = Shape(args.chunks, args.chunk_size, args.delay_ms / 1000)
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/v1/messages", messages)
    app.router.add_get("/v1/models", models)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", args.port, backlog=1024)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"listening {port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
