"""The fake LM Studio's OpenAI-compatible routes (so one process can stand in)."""

from __future__ import annotations

import json

import aiohttp
import lmstudio

from fakes.lmstudio_fixtures import *  # noqa: F403 - the pytest fixtures
from fakes.lmstudio_server import FakeLMStudio


async def test_models_lists_downloaded(fake_lmstudio: FakeLMStudio) -> None:
    async with (
        aiohttp.ClientSession(trust_env=False) as http,
        http.get(f"{fake_lmstudio.base_url}/v1/models") as response,
    ):
        body = await response.json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == [
        "qwen/qwen3-coder-30b",
        "google/gemma-3-4b",
        "text-embedding-nomic-embed-text-v1.5",
    ]


async def test_chat_completion(fake_lmstudio: FakeLMStudio) -> None:
    request = {
        "model": "google/gemma-3-4b",
        "messages": [{"role": "user", "content": "hi"}],
    }
    async with (
        aiohttp.ClientSession(trust_env=False) as http,
        http.post(
            f"{fake_lmstudio.base_url}/v1/chat/completions", json=request
        ) as response,
    ):
        body = await response.json()
    assert body["choices"][0]["message"]["content"] == "Hello from fake LM Studio"
    assert body["choices"][0]["finish_reason"] == "stop"
    assert fake_lmstudio.chat_requests == [request]


async def test_chat_completion_stream(fake_lmstudio: FakeLMStudio) -> None:
    request = {
        "model": "google/gemma-3-4b",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
    }
    async with (
        aiohttp.ClientSession(trust_env=False) as http,
        http.post(
            f"{fake_lmstudio.base_url}/v1/chat/completions", json=request
        ) as response,
    ):
        assert response.headers["Content-Type"].startswith("text/event-stream")
        raw = (await response.read()).decode()
    events = [e.removeprefix("data: ") for e in raw.split("\n\n") if e]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == "Hello from fake LM Studio"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


async def test_sdk_get_or_load(fake_lmstudio: FakeLMStudio) -> None:
    """The SDK's own `model()` (the `getOrLoad` channel) works against the fake."""
    async with lmstudio.AsyncClient(fake_lmstudio.address) as client:
        handle = await client.llm.model("google/gemma-3-4b", ttl=None)
        again = await client.llm.model("google/gemma-3-4b", ttl=None)
        assert handle.identifier == again.identifier == "google/gemma-3-4b"
        assert await handle.get_context_length() == 4096
    assert fake_lmstudio.load_count == 1


async def test_sdk_search_and_download(fake_lmstudio: FakeLMStudio) -> None:
    """The SDK's own repository API (search, options, download) works on the fake."""
    progress: list[int] = []
    finalized: list[bool] = []
    async with lmstudio.AsyncClient(fake_lmstudio.address) as client:
        (found,) = await client.repository.search_models("devstral", limit=5)
        assert found.search_result.name == "mistralai/devstral-small-2507"
        options = await found.get_download_options()
        assert [o.info.fit_estimation for o in options] == [
            "willNotFit",
            "partialGPUOffload",
        ]
        key = await options[1].download(
            on_progress=lambda u: progress.append(u.downloaded_bytes),
            on_finalize=lambda: finalized.append(True),
        )
    assert key == "mistralai/devstral-small-2507"
    assert progress == sorted(progress)
    assert progress[-1] == options[1].info.size_bytes
    assert finalized == [True]
    assert key in [m["modelKey"] for m in fake_lmstudio.downloaded]
