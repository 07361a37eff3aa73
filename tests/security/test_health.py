"""`/health` (issue 25, item 3): anyone learns that LM Bridge runs; only a
caller with the access token learns more, and probes are cached."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from fakes.openai_upstream import FakeOpenAIUpstream
from support import running, settings_for

TOKEN = "health-token-0123456789abcdef"


async def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.get(url, headers=headers or {}) as r:
        return r.status, await r.json()


@pytest.fixture
def token_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("HEALTH_TOKEN", TOKEN)
    return "HEALTH_TOKEN"


async def test_without_the_token_health_says_only_ok(
    fake_upstream: FakeOpenAIUpstream, token_env: str
) -> None:
    settings = settings_for(
        fake_upstream.url.replace("http://", "http://me:pa55-w0rd-long@")
    )
    settings.server.access_token_env = token_env
    async with running(settings) as proxy:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"x-api-key": "x"}):
            status, body = await get(proxy.url + "/health", headers)
            assert (status, body) == (200, {"status": "ok"})
        # No probe went upstream for those.
        assert fake_upstream.model_lists == 0
        status, body = await get(
            proxy.url + "/health", {"Authorization": f"Bearer {TOKEN}"}
        )
    assert status == 200
    assert body["status"] == "ok" and body["version"]
    [upstream] = body["upstreams"]
    assert upstream["reachable"] is True
    # The URL is shown without its password.
    assert upstream["url"] == fake_upstream.url.replace("http://", "http://me:***@")
    assert "pa55-w0rd-long" not in str(body)


async def test_probes_are_cached(
    fake_upstream: FakeOpenAIUpstream, token_env: str
) -> None:
    settings = settings_for(fake_upstream.url)
    settings.server.access_token_env = token_env
    auth = {"x-api-key": TOKEN}
    async with running(settings) as proxy:
        for _ in range(5):
            status, body = await get(proxy.url + "/health", auth)
            assert status == 200 and body["upstreams"][0]["reachable"]
    assert fake_upstream.model_lists == 1


async def test_without_a_token_configured_details_are_shown(
    fake_upstream: FakeOpenAIUpstream,
) -> None:
    # Nothing else needs a token then either (loopback only).
    async with running(settings_for(fake_upstream.url)) as proxy:
        status, body = await get(proxy.url + "/health")
    assert status == 200
    assert body["upstreams"][0]["url"] == fake_upstream.url
