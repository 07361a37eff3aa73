"""Once an answer's headers are sent, a failure is an error event in the
client's own protocol: never a second HTTP response in the same body.

Every door, streamed and whole, over a raw socket read to the end
(`faults.doors.call` fails on any byte after the one response). The
failures come after the headers: the upstream breaking off mid-stream, and
a state write (the store's reply) failing on a lock taken by another
process mid-answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from fakes.openai_upstream import FakeOpenAIUpstream, Script
from faults.dbfaults import held_lock, raw_call
from faults.doors import DOORS, MODEL, call
from support import RunningProxy, settings_for, start_proxy
from validators import parse_sse


@pytest.fixture
async def proxy(fake_upstream: FakeOpenAIUpstream) -> AsyncIterator[RunningProxy]:
    running = await start_proxy(settings_for(fake_upstream.url))
    yield running
    await running.server.stop()


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("door", DOORS)
async def test_an_upstream_breaking_off_is_one_answer_in_the_door_s_protocol(
    proxy: RunningProxy, fake_upstream: FakeOpenAIUpstream, door: str, stream: bool
) -> None:
    fake_upstream.script = Script(text="a b c d e f", close_after_chunks=3)
    # `call` reads to the end and fails on anything after the one response.
    out = await call(proxy.url, door, stream)
    if stream:
        assert out.status == 200  # the headers were out: an error event
        assert out.error, out.raw.body[-300:]
    else:
        # A whole answer is asked for whole upstream: it is one answer, or
        # one error answer in the door's shape (`call` checked it).
        assert out.status == 200 or out.error


async def test_a_store_reply_that_cannot_be_kept_ends_in_an_error_event(
    proxy: RunningProxy, fake_upstream: FakeOpenAIUpstream, lmbridge_home: Path
) -> None:
    async with aiohttp.ClientSession() as http:
        body = {"name": "c", "model": MODEL}
        async with http.post(proxy.url + "/store/chat", json=body) as r:
            assert r.status == 201
    fake_upstream.script = Script(
        text=" ".join(f"word{i}" for i in range(30)), chunk_delay=0.02
    )
    taken, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with held_lock(lmbridge_home / "data" / "lmbridge.db"):
            taken.set()
            await release.wait()

    holder = asyncio.ensure_future(hold())

    async def take_the_lock() -> None:
        await taken.wait()

    try:
        put = {"name": "c", "message": {"role": "user", "content": "hi"}}
        raw = await raw_call(
            proxy.url, "/store/chat", put, when=(b"word1", take_the_lock)
        )
    finally:
        release.set()
        await holder
    assert raw.status == 200 and raw.trailing == b""
    assert b"HTTP/1.1 " not in raw.body
    events = [data for _, data in parse_sse(raw.body)]
    assert events[-1] == {"[DONE]": True}
    assert "locked" in str(events[-2]), events[-2]
    record = await proxy.record(1)
    assert record.error and "locked" in record.error
