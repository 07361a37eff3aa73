"""Slow, idle and too many clients (issue 25, item 6), over raw sockets:
a head must arrive in time, a body at a minimum rate, an idle keep-alive
connection is closed, and connections are capped; a long answer to a
client that asked in time is never cut."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator

import aiohttp
import pytest

from fakes.openai_upstream import FakeOpenAIUpstream, Script
from security.rawhttp import closed_within, post
from support import RunningProxy, running, settings_for

CHAT = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]})


@pytest.fixture
async def strict(fake_upstream: FakeOpenAIUpstream) -> AsyncIterator[RunningProxy]:
    settings = settings_for(fake_upstream.url)
    server = settings.server
    server.client_header_timeout = 0.5
    server.client_idle_timeout = 1.0
    server.client_body_min_rate = 1000
    server.max_connections = 4
    async with running(settings) as proxy:
        yield proxy


async def connect(
    proxy: RunningProxy,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", proxy.server.port)


async def test_a_connection_that_sends_nothing_is_closed(strict: RunningProxy) -> None:
    reader, writer = await connect(strict)
    assert await closed_within(reader, 3.0)
    writer.close()


async def test_a_head_that_never_ends_is_closed(strict: RunningProxy) -> None:
    reader, writer = await connect(strict)
    writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n")

    async def dribble() -> None:
        for _ in range(30):  # a header byte every 0.1 s, for 3 s
            writer.write(b"X")
            await asyncio.sleep(0.1)

    feeding = asyncio.create_task(dribble())
    try:
        assert await closed_within(reader, 2.5)
    finally:
        feeding.cancel()
        writer.close()


@pytest.mark.parametrize("pause", [0.0, 0.8])
async def test_a_later_head_on_a_kept_alive_connection_is_timed_too(
    fake_upstream: FakeOpenAIUpstream, pause: float
) -> None:
    # Answered at once, then a head that never ends: closed after the header
    # timeout, whether it starts before the connection's first timer is due
    # (pause 0) or after (0.8 s), and long before the idle timeout.
    settings = settings_for(fake_upstream.url)
    settings.server.client_header_timeout = 0.5
    settings.server.client_idle_timeout = 10.0
    async with running(settings) as proxy:
        reader, writer = await connect(proxy)
        request = post("/v1/chat/completions", CHAT.encode()).replace(
            b"Connection: close", b"Connection: keep-alive"
        )
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        length = re.search(rb"(?i)content-length: (\d+)", head)
        assert length is not None
        await reader.readexactly(int(length[1]))
        await asyncio.sleep(pause)
        writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n")

        async def dribble() -> None:
            for _ in range(40):  # a header byte every 0.1 s, for 4 s
                writer.write(b"X")
                await asyncio.sleep(0.1)

        feeding = asyncio.create_task(dribble())
        try:
            assert await closed_within(reader, 2.0)
        finally:
            feeding.cancel()
            writer.close()


async def test_a_body_slower_than_the_minimum_rate_is_closed(
    strict: RunningProxy, fake_upstream: FakeOpenAIUpstream
) -> None:
    reader, writer = await connect(strict)
    head = post("/v1/chat/completions", b"").replace(
        b"Content-Length: 0", b"Content-Length: 100000"
    )
    writer.write(head)

    async def dribble() -> None:
        for _ in range(100):  # 10 bytes a second
            writer.write(b" ")
            await asyncio.sleep(0.1)

    feeding = asyncio.create_task(dribble())
    try:
        assert await closed_within(reader, 5.0)
    finally:
        feeding.cancel()
        writer.close()
    assert fake_upstream.requests == []


async def test_an_idle_keep_alive_connection_is_closed(strict: RunningProxy) -> None:
    reader, writer = await connect(strict)
    request = post("/v1/chat/completions", CHAT.encode()).replace(
        b"Connection: close", b"Connection: keep-alive"
    )
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    # The answer's body, then silence: closed after client_idle_timeout,
    # not before the header timeout.
    assert not await closed_within(reader, 0.7)
    assert await closed_within(reader, 2.0)
    writer.close()


async def test_connections_are_capped(strict: RunningProxy) -> None:
    assert strict.server.limits is not None
    strict.server.limits.header_timeout = 5.0
    held = [await connect(strict) for _ in range(4)]
    await asyncio.sleep(0.1)
    reader, writer = await connect(strict)
    assert await closed_within(reader, 1.0)  # the fifth is closed at once
    writer.close()
    assert strict.server.limits.refused >= 1
    for _, w in held:
        w.close()
        await w.wait_closed()
    await asyncio.sleep(0.1)
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            strict.url + "/v1/chat/completions",
            data=CHAT,
            headers={"Content-Type": "application/json"},
        ) as r,
    ):
        assert r.status == 200


async def test_a_long_answer_is_not_cut(
    strict: RunningProxy, fake_upstream: FakeOpenAIUpstream
) -> None:
    # Three seconds of answer: longer than every client limit above.
    fake_upstream.script = Script(text="word " * 30, chunk_delay=0.1)
    body = {**json.loads(CHAT), "stream": True}
    async with aiohttp.ClientSession() as s:
        for _ in range(2):  # twice on one keep-alive connection
            async with s.post(strict.url + "/v1/chat/completions", json=body) as r:
                text = await r.text()
            assert text.rstrip().endswith("data: [DONE]")
            await asyncio.sleep(0.7)  # idle, but less than client_idle_timeout
