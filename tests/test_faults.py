"""Faults: whatever the upstream does, every client gets a well-formed answer
or error in its own protocol within the configured timeout, and nothing is
left behind (asyncio tasks, sockets)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from fakes.openai_upstream import FakeOpenAIUpstream, Script
from support import RunningProxy, settings_for, start_proxy
from validators import (
    parse_sse,
    validate_anthropic_stream,
    validate_chat_stream,
    validate_responses_stream,
)

IDLE = 1.0  # the upstream's idle_timeout in these tests
FAULTS: dict[str, Script] = {
    "500": Script(status=500),
    "429": Script(status=429, retry_after="7"),
    "garbage": Script(garbage_body=b"<html><body>Bad Gateway</body></html>"),
    "invalid-sse": Script(text="a b c d", garbage_after_chunks=2),
    "closed-mid-stream": Script(text="a b c d", close_after_chunks=2),
    "error-in-stream": Script(text="a b c d", error_in_stream="model crashed"),
    "stall": Script(text="a b c d", stall_after_chunks=2),
}
DOORS: dict[str, tuple[str, dict[str, Any]]] = {
    "openai": (
        "/v1/chat/completions",
        {"messages": [{"role": "user", "content": "hi"}]},
    ),
    "anthropic": (
        "/v1/messages",
        {"max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]},
    ),
    "responses": ("/v1/responses", {"input": "hi"}),
}


@pytest.fixture
async def fault_proxy(fake_upstream: FakeOpenAIUpstream) -> AsyncIterator[RunningProxy]:
    settings = settings_for(fake_upstream.url, upstream_extra=f"idle_timeout = {IDLE}")
    running = await start_proxy(settings)
    yield running
    await running.server.stop()


def check_error_body(door: str, status: int, payload: Any) -> None:
    assert status >= 400
    if door == "anthropic":
        assert payload["type"] == "error"
        assert payload["error"]["type"] and payload["error"]["message"]
    else:
        assert payload["error"]["message"]


def check_stream(door: str, raw: bytes) -> None:
    events = parse_sse(raw)
    if door == "openai":
        validate_chat_stream(events)
        assert any("error" in data for _, data in events), "no error event"
    elif door == "anthropic":
        validate_anthropic_stream(events)
        assert events[-1][0] == "error"
    else:
        validate_responses_stream([data for _, data in events])
        assert events[-1][1]["type"] == "response.failed"


async def run_case(proxy: RunningProxy, door: str, stream: bool) -> bool:
    """Send one request; check what came back; whether it was an error."""
    path, body = DOORS[door]
    started = time.monotonic()
    async with (
        aiohttp.ClientSession() as s,
        s.post(proxy.url + path, json={"model": "m", **body, "stream": stream}) as r,
    ):
        raw = await asyncio.wait_for(r.read(), IDLE + 4)
        status = r.status
        content_type = r.content_type
    assert time.monotonic() - started < IDLE + 4
    if status == 200 and content_type == "application/json":
        # Faults of a stream do not touch a whole answer from the fake.
        payload = json.loads(raw)
        assert not payload.get("error")
        return False
    if status != 200:
        check_error_body(door, status, json.loads(raw))
        return True
    assert stream
    check_stream(door, raw)
    return True


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("door", list(DOORS))
@pytest.mark.parametrize("fault", list(FAULTS))
async def test_fault_gives_well_formed_error(
    fault_proxy: RunningProxy,
    fake_upstream: FakeOpenAIUpstream,
    fault: str,
    door: str,
    stream: bool,
) -> None:
    fake_upstream.script = FAULTS[fault]
    failed = await run_case(fault_proxy, door, stream)
    record = await fault_proxy.record()
    assert bool(record.error or record.status >= 400) == failed


def open_sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                count += 1
        except OSError:
            pass
    return count


async def test_nothing_is_left_behind(
    fault_proxy: RunningProxy, fake_upstream: FakeOpenAIUpstream
) -> None:
    async def settle() -> tuple[int, int]:
        await asyncio.sleep(0.3)
        return len(asyncio.all_tasks()), open_sockets()

    # Warm up connection pools, then take the baseline.
    fake_upstream.script = Script()
    for door in DOORS:
        await run_case_ok(fault_proxy, door)
    before = await settle()
    for script in FAULTS.values():
        fake_upstream.script = script
        for door in DOORS:
            for stream in (False, True):
                await run_case(fault_proxy, door, stream)
    fake_upstream.script = Script()
    for door in DOORS:
        await run_case_ok(fault_proxy, door)
    after = await settle()
    assert fake_upstream.active == 0
    assert after[0] <= before[0], f"tasks {before[0]} -> {after[0]}"
    assert after[1] <= before[1] + 2, f"sockets {before[1]} -> {after[1]}"


async def run_case_ok(proxy: RunningProxy, door: str) -> None:
    path, body = DOORS[door]
    async with (
        aiohttp.ClientSession() as s,
        s.post(proxy.url + path, json={"model": "m", **body}) as r,
    ):
        assert r.status == 200
        await r.read()


@pytest.mark.parametrize("door", list(DOORS))
async def test_client_disconnect_cancels_upstream_within_1s(
    fault_proxy: RunningProxy, fake_upstream: FakeOpenAIUpstream, door: str
) -> None:
    fake_upstream.script = Script(text="a b c d e f", stall_after_chunks=3)
    fault_proxy.server.settings.upstream[0].idle_timeout = None
    path, body = DOORS[door]
    async with aiohttp.ClientSession() as s:
        resp = await s.post(
            fault_proxy.url + path, json={"model": "m", **body, "stream": True}
        )
        await resp.content.readline()
        resp.close()
    started = time.monotonic()
    while fake_upstream.active and time.monotonic() - started < 1.0:
        await asyncio.sleep(0.02)
    assert fake_upstream.active == 0
    record = await fault_proxy.record()
    assert record.client_gone
    assert record.error == "the client went away"


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("door", list(DOORS))
async def test_first_byte_timeout_then_the_next_turn_answers(
    fake_upstream: FakeOpenAIUpstream, door: str, stream: bool
) -> None:
    """An upstream silent past `first_byte_timeout` is a timeout error in
    the door's protocol that names the setting, in time; the next turn, the
    upstream answering again, is served as if nothing happened."""
    settings = settings_for(
        fake_upstream.url, upstream_extra="first_byte_timeout = 0.5"
    )
    proxy = await start_proxy(settings)
    path, body = DOORS[door]
    try:
        async with aiohttp.ClientSession() as s:
            fake_upstream.script = Script(first_byte_delay=3.0)
            started = time.monotonic()
            request = {"model": "m", **body, "stream": stream}
            async with s.post(proxy.url + path, json=request) as r:
                payload = await r.json()
                status = r.status
            assert time.monotonic() - started < 2.5
            check_error_body(door, status, payload)
            assert status == 504
            assert "first_byte_timeout" in json.dumps(payload)
            record = await proxy.record()
            assert record.status == 504 and record.model == "m"
            fake_upstream.script = Script()
            await run_case_ok(proxy, door)
    finally:
        await proxy.server.stop()
