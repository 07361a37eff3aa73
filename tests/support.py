"""Helpers shared by the tests: a running proxy and settings for the fakes.

Fixtures live in conftest.py; import these helpers from here (never import
a conftest module by name: tests/gui has its own).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import anthropic
import openai
import pytest

from lmbridge import config
from lmbridge.core.events import REQUEST_FINISHED, EventBus, RequestRecord
from lmbridge.server.runner import ProxyServer
from validators import parse_sse


@dataclass
class RunningProxy:
    server: ProxyServer
    bus: EventBus
    records: list[RequestRecord] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    async def record(self, count: int = 1, timeout: float = 2.0) -> RequestRecord:
        """The latest finished record, once `count` requests have finished.

        A record is published when the handler returns, which can be just
        after the client has read the last byte.
        """
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.records) < count:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"only {len(self.records)} requests finished")
            await asyncio.sleep(0.01)
        return self.records[-1]


def settings_for(upstream_url: str, **extra: Any) -> config.Settings:
    """Settings with one OpenAI-compatible upstream named "fake"."""
    text = f"""
[server]
port = 0
ping_interval = {extra.pop("ping_interval", 10.0)}

[[upstream]]
name = "fake"
kind = "{extra.pop("kind", "openai")}"
base_url = "{upstream_url}"
{extra.pop("upstream_extra", "")}

[[route]]
model = "claude-*"
upstream = "fake"
target = "fake-model"
{extra.pop("routes", "")}
"""
    assert not extra, extra
    return config.parse(text)


async def start_proxy(settings: config.Settings) -> RunningProxy:
    bus = EventBus()
    running = RunningProxy(ProxyServer(settings, bus), bus)
    bus.subscribe(REQUEST_FINISHED, lambda _t, rec: running.records.append(rec))
    await running.server.start()
    return running


@contextlib.asynccontextmanager
async def running(settings: config.Settings) -> AsyncIterator[RunningProxy]:
    """A proxy for the duration of a `with` block."""
    proxy = await start_proxy(settings)
    try:
        yield proxy
    finally:
        await proxy.server.stop()


def oai(proxy: RunningProxy) -> openai.AsyncOpenAI:
    """The official OpenAI SDK pointed at `proxy`, without retries."""
    return openai.AsyncOpenAI(base_url=proxy.url + "/v1", api_key="x", max_retries=0)


def claude(proxy: RunningProxy) -> anthropic.AsyncAnthropic:
    """The official Anthropic SDK pointed at `proxy`, without retries."""
    return anthropic.AsyncAnthropic(base_url=proxy.url, api_key="k", max_retries=0)


async def claude_refused(
    proxy: RunningProxy,
    messages: list[anthropic.types.MessageParam],
    stream: bool = False,
    max_tokens: int = 100,
) -> dict[str, Any]:
    """The `error` object of the 400 a Messages request gets, whole or
    streamed (the refusal comes before the stream's headers)."""

    async def ask(client: anthropic.AsyncAnthropic) -> None:
        create: Any = {
            "model": "claude-sonnet-4-6",
            "max_tokens": max_tokens,
            "messages": messages,
        }
        if not stream:
            await client.messages.create(**create)
            return
        async with client.messages.stream(**create) as events:
            await events.get_final_message()

    async with claude(proxy) as client:
        with pytest.raises(anthropic.BadRequestError) as info:
            await ask(client)
    body: Any = info.value.body
    return dict(body["error"])


async def stream_events(
    url: str, body: dict[str, Any]
) -> list[tuple[str, dict[str, Any]]]:
    """POST `body` to `url` and read the whole SSE answer as `(event name,
    data)` pairs (validators.parse_sse); the answer must be a 200 and never
    hold a second HTTP response."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=body) as resp,
    ):
        assert resp.status == 200, await resp.text()
        raw = await resp.read()
    assert b"HTTP/1.1" not in raw  # never a second response in the body
    return parse_sse(raw)


async def claude_stream(
    proxy_url: str, messages: list[anthropic.types.MessageParam]
) -> list[tuple[str, dict[str, Any]]]:
    """A streamed Messages request as raw HTTP (to see every event as sent,
    errors included): the events read."""
    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 100,
        "stream": True,
        "messages": messages,
    }
    return await stream_events(proxy_url + "/v1/messages", body)


def error_events(events: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """The `error` objects of a stream's error events (Anthropic's
    `{"type": "error", "error": ...}`, Chat's `{"error": ...}`)."""
    return [data["error"] for _, data in events if "error" in data]
