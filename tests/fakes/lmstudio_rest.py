"""The fake LM Studio's OpenAI-compatible REST surface (kept deliberately small).

`/v1/models` lists the downloaded models; `/v1/chat/completions` answers
"Hello from fake LM Studio", whole or as an SSE stream, and records each
request in `fake.chat_requests`.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from fakes.lmstudio_server import FakeLMStudio


def add_openai_routes(app: web.Application, fake: FakeLMStudio) -> None:
    """Serve `/v1/models` and `/v1/chat/completions` from `fake`'s state."""

    async def models(request: web.Request) -> web.Response:
        return await openai_models(fake, request)

    async def chat(request: web.Request) -> web.StreamResponse:
        return await openai_chat(fake, request)

    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/chat/completions", chat)


async def openai_models(fake: FakeLMStudio, request: web.Request) -> web.Response:
    """`GET /v1/models`: the downloaded models."""
    data = [
        {"id": m["modelKey"], "object": "model", "owned_by": "organization_owner"}
        for m in fake.downloaded
    ]
    return web.json_response({"object": "list", "data": data})


async def openai_chat(fake: FakeLMStudio, request: web.Request) -> web.StreamResponse:
    """`POST /v1/chat/completions`: one canned reply, whole or streamed."""
    body = await request.json()
    fake.chat_requests.append(body)
    model = str(body.get("model", ""))
    reply = "Hello from fake LM Studio"
    completion_id = f"chatcmpl-{uuid.uuid4().hex[:12]}"
    created = int(time.time())
    if not body.get("stream"):
        return web.json_response(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": 10,
                    "completion_tokens": 5,
                    "total_tokens": 15,
                },
            }
        )
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)

    def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
        payload = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {json.dumps(payload)}\n\n".encode()

    await response.write(chunk({"role": "assistant", "content": ""}, None))
    for piece in ("Hello", " from", " fake", " LM Studio"):
        await response.write(chunk({"content": piece}, None))
    await response.write(chunk({}, "stop"))
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response
