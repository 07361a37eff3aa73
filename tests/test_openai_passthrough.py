"""The OpenAI front door in pass-through mode, driven by the official SDK."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import aiohttp
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from fakes.openai_upstream import FakeOpenAIUpstream, Script
from support import RunningProxy, settings_for, start_proxy


def client(proxy: RunningProxy) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=proxy.url + "/v1", api_key="sk-test", max_retries=0
    )


MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Hi"}]


async def test_non_streaming_completion_renames_model_per_route(
    proxy: RunningProxy, fake_upstream: FakeOpenAIUpstream
) -> None:
    async with client(proxy) as c:
        reply = await c.chat.completions.create(
            model="claude-sonnet-4-5",
            messages=MESSAGES,
        )
    assert reply.choices[0].message.content == "Hello from the fake upstream."
    assert reply.usage is not None and reply.usage.completion_tokens == 7
    assert fake_upstream.requests[-1].body["model"] == "fake-model"
    record = proxy.records[-1]
    assert (record.protocol, record.upstream, record.target) == (
        "openai",
        "fake",
        "fake-model",
    )
    assert record.status == 200
    assert (record.tokens_in, record.tokens_out) == (11, 7)


async def test_unrouted_model_goes_to_first_upstream_unchanged(
    proxy: RunningProxy, fake_upstream: FakeOpenAIUpstream
) -> None:
    async with client(proxy) as c:
        await c.chat.completions.create(model="other-model", messages=MESSAGES)
    assert fake_upstream.requests[-1].body["model"] == "other-model"


async def test_request_body_is_forwarded_with_unknown_fields(
    proxy: RunningProxy, fake_upstream: FakeOpenAIUpstream
) -> None:
    async with aiohttp.ClientSession() as s:
        body = {
            "model": "m",
            "messages": MESSAGES,
            "presence_penalty": 0.5,
            "logit_bias": {"1": 2},
        }
        async with s.post(proxy.url + "/v1/chat/completions", json=body) as r:
            assert r.status == 200
    seen = fake_upstream.requests[-1].body
    assert seen["presence_penalty"] == 0.5
    assert seen["logit_bias"] == {"1": 2}


async def test_relayed_history_gets_forms_every_server_accepts(
    proxy: RunningProxy, fake_upstream: FakeOpenAIUpstream
) -> None:
    """OpenAI SDKs send `content: null` beside tool calls and tool results as
    text parts; llama-cpp-python's server answers both with a 500, so the
    relay sends `""` and one string instead (everything else unchanged)."""
    call = {
        "id": "c1",
        "type": "function",
        "function": {"name": "f", "arguments": "{}"},
    }
    body = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {
                "role": "tool",
                "tool_call_id": "c1",
                "content": [
                    {"type": "text", "text": "Exit code: 0\nOutput:"},
                    {"type": "text", "text": "done"},
                ],
            },
        ],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
        "presence_penalty": 0.5,
    }
    async with (
        aiohttp.ClientSession() as s,
        s.post(proxy.url + "/v1/chat/completions", json=body) as r,
    ):
        assert r.status == 200
    seen = fake_upstream.requests[-1].body
    assert seen["messages"][1] == {
        "role": "assistant",
        "content": "",
        "tool_calls": [call],
    }
    assert seen["messages"][2]["content"] == "Exit code: 0\nOutput:\ndone"
    assert seen["presence_penalty"] == 0.5


async def test_streaming_relays_chunks_as_they_arrive(
    proxy: RunningProxy, fake_upstream: FakeOpenAIUpstream
) -> None:
    fake_upstream.script = Script(text="one two three four five", chunk_delay=0.15)
    t0 = time.perf_counter()
    first: float | None = None
    parts: list[str] = []
    async with client(proxy) as c:
        stream = await c.chat.completions.create(
            model="claude-haiku-4-5",
            messages=MESSAGES,
            stream=True,
        )
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                first = first or time.perf_counter() - t0
                parts.append(chunk.choices[0].delta.content)
    total = time.perf_counter() - t0
    assert "".join(parts) == "one two three four five"
    assert first is not None
    # No buffering: the first token reaches the client long before the end.
    assert first < total - 0.5
    assert (await proxy.record()).first_token is not None


async def test_models_lists_upstream_models_and_route_aliases(
    proxy: RunningProxy,
) -> None:
    async with client(proxy) as c:
        ids = [m.id async for m in c.models.list()]
    assert "fake-model" in ids and "other-model" in ids
    assert "claude-sonnet-4-6" in ids  # alias from the claude-* route
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("status", [500, 429, 400])
async def test_upstream_errors_keep_status_and_body(
    proxy: RunningProxy, fake_upstream: FakeOpenAIUpstream, status: int
) -> None:
    fake_upstream.script = Script(status=status, error_message=f"boom {status}")
    async with client(proxy) as c:
        with pytest.raises(openai.APIStatusError) as info:
            await c.chat.completions.create(model="m", messages=MESSAGES)
    assert info.value.status_code == status
    assert f"boom {status}" in str(info.value)
    assert proxy.records[-1].status == status


async def test_unreachable_upstream_is_503_naming_address_within_2s() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    running = await start_proxy(settings_for(f"http://127.0.0.1:{port}"))
    try:
        t0 = time.perf_counter()
        async with client(running) as c:
            with pytest.raises(openai.APIStatusError) as info:
                await c.chat.completions.create(model="m", messages=MESSAGES)
        assert time.perf_counter() - t0 < 2
    finally:
        await running.server.stop()
    assert info.value.status_code == 503
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message
    assert "check that it is running" in message


async def test_client_disconnect_closes_upstream_within_1s(
    proxy: RunningProxy, fake_upstream: FakeOpenAIUpstream
) -> None:
    fake_upstream.script = Script(text="a b c", stall_after_chunks=2)
    async with aiohttp.ClientSession() as s:
        resp = await s.post(
            proxy.url + "/v1/chat/completions",
            json={"model": "m", "messages": MESSAGES, "stream": True},
        )
        await resp.content.readline()
        assert fake_upstream.active == 1
        resp.close()
    deadline = time.perf_counter() + 1.0
    while fake_upstream.active and time.perf_counter() < deadline:
        await asyncio.sleep(0.02)
    assert fake_upstream.active == 0
    assert fake_upstream.cancelled == 1
    assert (await proxy.record()).client_gone


async def test_upstream_dropping_mid_stream_ends_with_error_event(
    proxy: RunningProxy, fake_upstream: FakeOpenAIUpstream
) -> None:
    fake_upstream.script = Script(text="a b c d", close_after_chunks=2)
    async with client(proxy) as c:
        stream = await c.chat.completions.create(
            model="m",
            messages=MESSAGES,
            stream=True,
        )
        with pytest.raises(openai.APIError):
            async for _ in stream:
                pass


async def test_health_reports_each_upstream(proxy: RunningProxy) -> None:
    async with aiohttp.ClientSession() as s, s.get(proxy.url + "/health") as r:
        body = await r.json()
    assert body["status"] == "ok"
    assert body["version"]
    assert body["upstreams"][0]["name"] == "fake"
    assert body["upstreams"][0]["reachable"] is True


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "JSON object"),
        (b'{"model": "m"}', "messages"),
        (b'{"model": "m", "messages": "hi"}', "messages"),
        (b'{"model": "m", "messages": [{"role": "user", "content": 5}]}', "content"),
        (b'{"model": 5, "messages": []}', "model"),
        (b'{"model": "m", "messages": [{"role": "wizard", "content": "x"}]}', "role"),
        (b"", "empty"),
    ],
)
async def test_bad_input_is_400_in_openai_shape_naming_the_field(
    proxy: RunningProxy, fake_upstream: FakeOpenAIUpstream, body: bytes, needle: str
) -> None:
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            proxy.url + "/v1/chat/completions",
            data=body,
            headers={"Content-Type": "application/json"},
        ) as r,
    ):
        assert r.status == 400
        payload = await r.json()
    assert payload["error"]["type"] == "invalid_request_error"
    assert needle in payload["error"]["message"]
    assert not fake_upstream.requests


async def test_unknown_route_is_404_json(proxy: RunningProxy) -> None:
    async with aiohttp.ClientSession() as s, s.get(proxy.url + "/v1/nope") as r:
        assert r.status == 404
        payload = await r.json()
    assert "error" in payload


async def test_bodies_are_captured_only_when_asked(
    fake_upstream: FakeOpenAIUpstream,
) -> None:
    settings = settings_for(fake_upstream.url)
    quiet = await start_proxy(settings)
    try:
        async with client(quiet) as c:
            await c.chat.completions.create(model="m", messages=MESSAGES)
        assert (await quiet.record()).request_body == ""
    finally:
        await quiet.server.stop()
    from lmbridge.core.events import REQUEST_FINISHED, EventBus
    from lmbridge.server.runner import ProxyServer

    bus = EventBus()
    records: list[Any] = []
    bus.subscribe(REQUEST_FINISHED, lambda _t, r: records.append(r))
    server = ProxyServer(settings, bus, capture_bodies=True)
    await server.start()
    try:
        async with openai.AsyncOpenAI(
            base_url=server.url + "/v1", api_key="sk-secret-123", max_retries=0
        ) as c:
            stream = await c.chat.completions.create(
                model="m",
                messages=MESSAGES,
                stream=True,
            )
            async for _ in stream:
                pass
        await asyncio.sleep(0.05)
    finally:
        await server.stop()
    record = records[-1]
    assert '"messages"' in record.request_body
    assert record.request_headers["Authorization"] == "***"
    assert "sk-secret-123" not in repr(record)
    assert "data: [DONE]" in record.response_body
