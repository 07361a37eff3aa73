"""Each `lmstudio` upstream talks to its own server: model lists, loads and
context checks go to its `base_url`'s host and port, never to an LM Studio
that discovery would find elsewhere; a server without the SDK gets REST."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator

import pytest

from fakes.lmstudio_fixtures import eventually
from fakes.lmstudio_server import FakeLMStudio
from fakes.openai_upstream import FakeOpenAIUpstream
from lmbridge import config
from support import RunningProxy, oai, start_proxy

QWEN = "qwen/qwen3-coder-30b"
GEMMA = "google/gemma-3-4b"


@pytest.fixture
async def two_lmstudios() -> AsyncIterator[tuple[FakeLMStudio, FakeLMStudio]]:
    first, second = FakeLMStudio(), FakeLMStudio()
    await first.start()
    await second.start()
    yield first, second
    await second.stop()
    await first.stop()


def two_upstreams(first: str, second: str) -> config.Settings:
    return config.parse(f"""
[server]
port = 0

[[upstream]]
name = "first"
kind = "lmstudio"
base_url = "{first}"

[[upstream]]
name = "second"
kind = "lmstudio"
base_url = "{second}"

[[route]]
model = "on-first"
upstream = "first"
target = "{QWEN}"

[[route]]
model = "on-second"
upstream = "second"
target = "{GEMMA}"

[lmstudio]
min_context = 8192
load_context_length = 8192
""")


async def connected(proxy: RunningProxy, *names: str) -> None:
    services = proxy.server.services
    assert services is not None
    for name in names:
        status = services.preparers[name].service.connection
        await eventually(
            functools.partial(lambda link: link.state == "connected", status),
            what=f"{name}'s link",
        )


async def ask(proxy: RunningProxy, model: str) -> str:
    async with oai(proxy) as client:
        reply = await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi"}]
        )
    return reply.choices[0].message.content or ""


async def test_each_upstream_loads_on_its_own_server(
    two_lmstudios: tuple[FakeLMStudio, FakeLMStudio],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = two_lmstudios
    # Discovery, if it were asked, would find the first one.
    monkeypatch.setenv("LMBRIDGE_DISCOVERY_PORTS", str(first.port))
    proxy = await start_proxy(two_upstreams(first.base_url, second.base_url))
    try:
        await connected(proxy, "first", "second")
        for turn in range(2):
            assert await ask(proxy, "on-second") == "Hello from fake LM Studio"
            assert await ask(proxy, "on-first") == "Hello from fake LM Studio"
            record = await proxy.record(2 * turn + 2)
            assert record.upstream == "first"
    finally:
        await proxy.server.stop()
    assert first.load_requests == [QWEN]
    assert second.load_requests == [GEMMA]
    assert [b["model"] for b in first.chat_requests] == [QWEN, QWEN]
    assert [b["model"] for b in second.chat_requests] == [GEMMA, GEMMA]
    assert first.ws_connections >= 1 and second.ws_connections >= 1


async def test_a_server_without_the_sdk_gets_rest_and_one_note(
    fake_upstream: FakeOpenAIUpstream,
    two_lmstudios: tuple[FakeLMStudio, FakeLMStudio],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An LM Studio answering elsewhere (as one on 1234 would) is not asked."""
    elsewhere, _ = two_lmstudios
    monkeypatch.setenv("LMBRIDGE_DISCOVERY_PORTS", str(elsewhere.port))
    settings = config.parse(f"""
[server]
port = 0

[[upstream]]
name = "plain"
kind = "lmstudio"
base_url = "{fake_upstream.url}"
api = "chat"

[[route]]
model = "smollm2"
upstream = "plain"
""")
    proxy = await start_proxy(settings)
    try:
        services = proxy.server.services
        assert services is not None
        svc = services.preparers["plain"].service
        await eventually(lambda: svc.status.error is not None, what="the SDK probe")
        for turn in range(1, 4):
            assert await ask(proxy, "smollm2")
            record = await proxy.record(turn)
            assert record.status == 200
            off = [n for n in record.note_texts if "model management is off" in n]
            if turn == 1:
                assert len(off) == 1
                assert "for plain" in off[0]
                assert f"127.0.0.1:{fake_upstream.port}" in off[0]
            else:
                assert off == []
    finally:
        await proxy.server.stop()
    assert elsewhere.ws_connections == 0
    assert elsewhere.load_requests == []
    assert [r.body["model"] for r in fake_upstream.requests] == ["smollm2"] * 3
