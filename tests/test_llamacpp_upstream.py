"""`kind = "llamacpp"`: llama.cpp's server as a first-class upstream.

Against a fake `llama-server` on loopback (the fake OpenAI upstream plus
`/props` and `/health`), driven by the official SDKs through the proxy: the
context guard uses the slot's window from `/props`, health comes from
`/health`, cached prompt tokens reach the client, and a server without
`/props` is used as a plain Chat server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import anthropic
import pytest

from fakes.llamacpp_server import FakeLlamaCppServer
from fakes.openai_upstream import Script
from lmbridge.protocols.overflow import CLAUDE_CODE_PATTERN
from support import (
    RunningProxy,
    claude,
    claude_refused,
    oai,
    running,
    settings_for,
)

LONG = "word " * 3000  # about 3000 tokens by LM Bridge's estimate


@pytest.fixture
async def server() -> AsyncIterator[FakeLlamaCppServer]:
    fake = FakeLlamaCppServer(n_ctx=2048)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def bridge(server: FakeLlamaCppServer) -> AsyncIterator[RunningProxy]:
    async with running(settings_for(server.url, kind="llamacpp")) as proxy:
        yield proxy


async def test_a_session_goes_by_chat_and_props_are_asked_once(
    bridge: RunningProxy, server: FakeLlamaCppServer
) -> None:
    history: list[anthropic.types.MessageParam] = []
    async with claude(bridge) as client:
        for turn in range(3):
            history.append({"role": "user", "content": f"turn {turn}"})
            reply = await client.messages.create(
                model="claude-sonnet-4-6", max_tokens=100, messages=history
            )
            text = "".join(b.text for b in reply.content if b.type == "text")
            history.append({"role": "assistant", "content": text})
    chats = [seen for seen in server.requests if seen.path == "/v1/chat/completions"]
    assert len(chats) == 3
    assert len(chats[-1].body["messages"]) == 5
    assert server.props_calls == 1  # cached, not one round trip per request


@pytest.mark.parametrize("stream", [False, True])
async def test_a_prompt_over_the_slot_window_is_refused_with_its_counts(
    bridge: RunningProxy, server: FakeLlamaCppServer, stream: bool
) -> None:
    long_prompt: list[anthropic.types.MessageParam] = [
        {"role": "user", "content": LONG}
    ]
    message = (await claude_refused(bridge, long_prompt, stream))["message"]
    match = CLAUDE_CODE_PATTERN.search(message)
    assert match is not None, message
    assert int(match.group(1)) > int(match.group(2))
    assert "-c" in message  # names llama-server's fix
    assert not [s for s in server.requests if s.path == "/v1/chat/completions"]


async def test_max_tokens_over_the_window_are_lowered_to_fit(
    bridge: RunningProxy, server: FakeLlamaCppServer
) -> None:
    async with oai(bridge) as client:
        await client.chat.completions.create(
            model="claude-x",
            max_tokens=32000,
            messages=[{"role": "user", "content": "Hi"}],
        )
    sent = server.requests[-1].body
    assert 512 <= sent["max_tokens"] < 2048
    record = await bridge.record()
    assert any("to fit context 2048" in note for note in record.note_texts)


async def test_without_props_the_server_is_used_as_any_chat_server(
    bridge: RunningProxy, server: FakeLlamaCppServer
) -> None:
    server.props_status = 404
    async with oai(bridge) as client:
        reply = await client.chat.completions.create(
            model="claude-x",
            max_tokens=32000,
            messages=[{"role": "user", "content": LONG}],
        )
    assert reply.choices[0].message.content == Script().text
    assert server.requests[-1].body["max_tokens"] == 32000


async def test_cached_prompt_tokens_reach_claude_code(
    bridge: RunningProxy, server: FakeLlamaCppServer
) -> None:
    server.script = Script(prompt_tokens=311, cached_tokens=310)
    async with claude(bridge) as client:
        reply = await client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=100,
            messages=[{"role": "user", "content": "Hi"}],
        )
    assert reply.usage.cache_read_input_tokens == 310
    assert reply.usage.input_tokens + 310 == 311


async def test_health_comes_from_the_servers_own_health(
    bridge: RunningProxy, server: FakeLlamaCppServer
) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(bridge.url + "/health") as resp,
    ):
        ready = await resp.json()
    (up,) = ready["upstreams"]
    assert up["kind"] == "llamacpp"
    assert up["reachable"] and up["status"] == 200 and "error" not in up
    # /health caches its probes for a few seconds: ask the upstream itself.
    server.loading = True
    services = bridge.server.services
    assert services is not None
    loading = await services.upstreams["fake"].check()
    assert loading.status == 503 and loading.error and "loading" in loading.error


async def test_an_overflow_without_counts_gets_the_slot_window_as_m(
    bridge: RunningProxy, server: FakeLlamaCppServer
) -> None:
    # The prompt passes LM Bridge's own estimate, but the server's
    # tokenizer disagrees and it answers in words without numbers.
    server.script = Script(
        status=400, error_message="the input length exceeds the context length"
    )
    for _turn in range(2):  # the window is known from turn 1's /props
        error = await claude_refused(bridge, [{"role": "user", "content": "Hi"}])
        match = CLAUDE_CODE_PATTERN.search(error["message"])
        assert match is not None, error
        assert int(match.group(2)) == 2048
        assert int(match.group(1)) > 2048
