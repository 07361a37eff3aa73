"""Routes with `fallback`: the next upstream answers when the first cannot."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from fakes.openai_upstream import FakeOpenAIUpstream, Script
from lmbridge import config
from support import RunningProxy, start_proxy


@pytest.fixture
async def second_upstream() -> AsyncIterator[FakeOpenAIUpstream]:
    fake = FakeOpenAIUpstream()
    fake.script = Script(text="from the second upstream")
    await fake.start()
    yield fake
    await fake.stop()


def _settings(first_url: str, second_url: str) -> config.Settings:
    return config.parse(f"""
[server]
port = 0

[[upstream]]
name = "primary"
kind = "openai"
base_url = "{first_url}"

[[upstream]]
name = "backup"
kind = "openai"
base_url = "{second_url}"

[[route]]
model = "coder"
upstream = "primary"
target = "big-model"
fallback = ["backup"]

[[route]]
model = "coder"
upstream = "backup"
target = "small-model"
""")


async def _ask(proxy: RunningProxy, stream: bool) -> str:
    async with openai.AsyncOpenAI(
        base_url=proxy.url + "/v1", api_key="x", max_retries=0
    ) as client:
        messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
        if not stream:
            reply = await client.chat.completions.create(
                model="coder",
                messages=messages,
            )
            return reply.choices[0].message.content or ""
        parts = []
        chunks = await client.chat.completions.create(
            model="coder",
            messages=messages,
            stream=True,
        )
        async for chunk in chunks:
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
        return "".join(parts)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("status", [500, 503, 429])
async def test_error_status_falls_back(
    fake_upstream: FakeOpenAIUpstream,
    second_upstream: FakeOpenAIUpstream,
    status: int,
    stream: bool,
) -> None:
    fake_upstream.script = Script(status=status)
    proxy = await start_proxy(_settings(fake_upstream.url, second_upstream.url))
    try:
        text = await _ask(proxy, stream)
    finally:
        await proxy.server.stop()
    assert text == "from the second upstream"
    assert fake_upstream.requests[-1].body["model"] == "big-model"
    assert second_upstream.requests[-1].body["model"] == "small-model"
    record = proxy.records[-1]
    assert record.upstream == "backup"
    assert record.note_texts == [f"fallback primary -> backup ({status})"]


async def test_unreachable_falls_back(second_upstream: FakeOpenAIUpstream) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    proxy = await start_proxy(_settings(dead, second_upstream.url))
    try:
        assert await _ask(proxy, False) == "from the second upstream"
    finally:
        await proxy.server.stop()
    assert proxy.records[-1].note_texts == ["fallback primary -> backup (503)"]


async def test_client_errors_do_not_fall_back(
    fake_upstream: FakeOpenAIUpstream, second_upstream: FakeOpenAIUpstream
) -> None:
    fake_upstream.script = Script(status=400, error_message="bad thing")
    proxy = await start_proxy(_settings(fake_upstream.url, second_upstream.url))
    try:
        with pytest.raises(openai.BadRequestError, match="bad thing"):
            await _ask(proxy, False)
    finally:
        await proxy.server.stop()
    assert not second_upstream.requests


async def test_last_upstream_error_is_relayed(
    fake_upstream: FakeOpenAIUpstream, second_upstream: FakeOpenAIUpstream
) -> None:
    fake_upstream.script = Script(status=500)
    second_upstream.script = Script(status=503, error_message="backup down too")
    proxy = await start_proxy(_settings(fake_upstream.url, second_upstream.url))
    try:
        with pytest.raises(openai.APIStatusError, match="backup down too") as info:
            await _ask(proxy, False)
    finally:
        await proxy.server.stop()
    assert info.value.status_code == 503


def test_fallback_must_name_an_upstream() -> None:
    with pytest.raises(config.ConfigError, match="fallback names no upstream 'x'"):
        config.parse(
            b'[[upstream]]\nname="a"\nbase_url="http://h"\n'
            b'[[route]]\nmodel="m"\nupstream="a"\nfallback=["x"]\n'
        )
