"""The chat service (`/chat`) and the conversation store (`/store`) go
through the one pipeline: route fallback, LM Studio's load on demand and
context guard, and scrubbing, as every model front door does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from fakes.lmstudio_fixtures import eventually, lm_settings
from fakes.lmstudio_server import FakeLMStudio
from fakes.openai_upstream import FakeOpenAIUpstream, Script
from support import RunningProxy, running, settings_for

QWEN = "qwen/qwen3-coder-30b"
DEAD = "http://127.0.0.1:9"


@pytest.fixture
async def fake_lm() -> AsyncIterator[FakeLMStudio]:
    fake = FakeLMStudio()
    await fake.start()
    yield fake
    await fake.stop()


async def post(proxy: RunningProxy, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(proxy.url + path, json=body) as r,
    ):
        return r.status, await r.json(content_type=None)


def fallback_settings(second_url: str) -> Any:
    extra = f'[[upstream]]\nname = "second"\nbase_url = "{second_url}"'
    routes = 'fallback = ["second"]\n\n[[route]]\nmodel = "m"\nupstream = "fake"\nfallback = ["second"]'
    return settings_for(DEAD, upstream_extra=extra, routes=routes)


async def test_chat_and_store_fall_back_to_the_next_upstream(
    fake_upstream: FakeOpenAIUpstream,
) -> None:
    fake_upstream.script = Script(text="from the second")
    async with running(fallback_settings(fake_upstream.url)) as proxy:
        status, body = await post(
            proxy,
            "/chat",
            {"model_key": "m", "messages": [{"role": "user", "content": "x"}]},
        )
        assert (status, body["content"]) == (200, "from the second")
        status, _ = await post(proxy, "/store/chat", {"name": "c", "model": "m"})
        assert status == 201
        async with aiohttp.ClientSession() as http:
            put = {"name": "c", "message": {"role": "user", "content": "hi"}}
            async with http.put(proxy.url + "/store/chat", json=put) as r:
                assert r.status == 200, await r.text()
        records = [r for r in proxy.records if r.protocol in ("chat-api", "store-api")]
    assert {r.upstream for r in records if r.status == 200} == {"second"}
    assert all(
        any(n.startswith("fallback fake -> second") for n in r.note_texts)
        for r in records
        if r.status == 200
    )


async def connected(proxy: RunningProxy) -> None:
    services = proxy.server.services
    assert services is not None and services.lmstudio is not None
    svc = services.lmstudio
    await eventually(lambda: svc.status.state == "connected", what="LM Studio")


async def test_chat_loads_on_demand_and_guards_the_context(
    fake_lm: FakeLMStudio,
) -> None:
    async with running(lm_settings(fake_lm.address)) as proxy:
        await connected(proxy)
        ask = {"model_key": QWEN, "messages": [{"role": "user", "content": "hi"}]}
        status, body = await post(proxy, "/chat", ask)
        assert status == 200, body
        assert fake_lm.load_requests == [QWEN]
        assert fake_lm.loaded[QWEN].context_length == 8192
        # A prompt far beyond the loaded context is refused before it is sent.
        sent = len(fake_lm.chat_requests)
        huge = {
            "model_key": QWEN,
            "messages": [{"role": "user", "content": "word " * 40000}],
        }
        status, body = await post(proxy, "/chat", huge)
        assert status == 400, body
        assert body["status"] == "error"
        assert "prompt is too long" in body["message"]
        assert len(fake_lm.chat_requests) == sent


async def test_chat_errors_are_scrubbed_of_the_upstream_key(
    fake_upstream: FakeOpenAIUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "sk-test-9f8e7d6c5b4a"
    monkeypatch.setenv("FAKE_KEY", key)
    fake_upstream.script = Script(
        status=401, error_message=f"Incorrect API key provided: {key}"
    )
    settings = settings_for(
        fake_upstream.url, upstream_extra='api_key_env = "FAKE_KEY"'
    )
    async with running(settings) as proxy:
        ask = {"model_key": "claude-x", "messages": [{"role": "user", "content": "hi"}]}
        status, body = await post(proxy, "/chat", ask)
        record = await proxy.record()
    assert status == 401
    assert key not in str(body)
    assert key not in (record.error or "")
    assert fake_upstream.requests[0].headers["Authorization"] == f"Bearer {key}"


async def test_loads_on_demand_use_the_configured_load_settings(
    fake_lm: FakeLMStudio,
) -> None:
    settings = lm_settings(fake_lm.address)
    settings.lmstudio.load_gpu_offload = 0.5
    settings.lmstudio.load_flash_attention = True
    settings.lmstudio.load_kv_cache_type = "q8_0"
    async with running(settings) as proxy:
        await connected(proxy)
        ask = {"model_key": QWEN, "messages": [{"role": "user", "content": "hi"}]}
        status, body = await post(proxy, "/chat", ask)
        assert status == 200, body
    (sent,) = fake_lm.load_configs
    fields = {k.rpartition(".")[2]: v for k, v in sent.items()}
    assert fields["offloadRatio"] == 0.5
    assert fields["flashAttention"] is True
    assert (
        sent["llm.load.llama.kCacheQuantizationType"]
        == sent["llm.load.llama.vCacheQuantizationType"]
    )
    assert "q8_0" in str(sent["llm.load.llama.kCacheQuantizationType"])
    assert fake_lm.loaded[QWEN].context_length == 8192
