"""Upstream keys do not follow redirects to another origin (issue 25,
item 4): neither on model calls nor on GET /v1/models; within the same
origin a redirect is followed with the same headers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from fakes.openai_upstream import FakeOpenAIUpstream
from lmbridge import config
from support import running

KEY = "redirect-key-5f1e2d3c4b5a69788796"


class Redirector:
    """A server that answers every request with `status` to `location`."""

    def __init__(self) -> None:
        self.location = ""
        self.status = 307
        self.seen: list[tuple[str, str]] = []
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self._redirect)
        self.runner = web.AppRunner(self.app)
        self.url = ""

    async def _redirect(self, request: web.Request) -> web.Response:
        self.seen.append((request.method, request.path))
        raise (
            web.HTTPTemporaryRedirect(self.location)
            if self.status == 307
            else (web.HTTPFound(self.location))
        )

    async def start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"


@pytest.fixture
async def redirector() -> AsyncIterator[Redirector]:
    server = Redirector()
    await server.start()
    yield server
    await server.runner.cleanup()


def messages_upstream(url: str) -> config.Settings:
    """An Anthropic-kind upstream (its key goes as x-api-key)."""
    return config.parse(f"""
[server]
port = 0
[[upstream]]
name = "up"
kind = "anthropic"
base_url = "{url}"
api_key_env = "REDIRECT_KEY"
[[route]]
model = "claude-*"
upstream = "up"
target = "fake-model"
""")


BODY = {
    "model": "claude-x",
    "max_tokens": 20,
    "messages": [{"role": "user", "content": "hi"}],
}


@pytest.mark.parametrize("stream", [False, True])
async def test_a_redirect_to_another_origin_is_an_error_naming_it(
    redirector: Redirector,
    fake_upstream: FakeOpenAIUpstream,
    monkeypatch: pytest.MonkeyPatch,
    stream: bool,
) -> None:
    monkeypatch.setenv("REDIRECT_KEY", KEY)
    redirector.location = fake_upstream.url + "/v1/messages"
    settings = messages_upstream(redirector.url)
    async with running(settings) as proxy, aiohttp.ClientSession() as s:
        async with s.post(
            proxy.url + "/v1/messages", json={**BODY, "stream": stream}
        ) as r:
            status, text = r.status, await r.text()
        async with s.get(proxy.url + "/v1/models") as r:
            listed = await r.json()
    # The key never reached the other origin: nothing did.
    assert fake_upstream.requests == [] and fake_upstream.model_lists == 0
    assert ("POST", "/v1/messages") in redirector.seen
    assert ("GET", "/v1/models") in redirector.seen
    assert status == 502
    assert '"type": "error"' in text or '"type":"error"' in text
    assert "redirected POST" in text and fake_upstream.url in text
    assert "base_url" in text
    assert KEY not in text
    assert "fake-model" not in str(listed)


async def test_a_redirect_within_the_origin_keeps_its_headers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDIRECT_KEY", KEY)

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPPermanentRedirect("/v1/messages")

    # The upstream moved /old/v1/messages to /v1/messages (308).
    fake = FakeOpenAIUpstream()
    fake.app.router.add_post("/old/v1/messages", moved)
    await fake.start()
    try:
        async with (
            running(messages_upstream(fake.url + "/old")) as proxy,
            aiohttp.ClientSession() as s,
            s.post(proxy.url + "/v1/messages", json=BODY) as r,
        ):
            assert r.status == 200, await r.text()
            answer = await r.json()
    finally:
        await fake.stop()
    assert answer["content"][0]["text"] == "Hello from the fake upstream."
    [seen] = fake.requests
    assert seen.headers["x-api-key"] == KEY
    assert seen.body["model"] == "fake-model"


async def test_a_post_turned_into_a_get_is_refused(
    redirector: Redirector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIRECT_KEY", KEY)
    redirector.status = 302
    redirector.location = "/elsewhere"
    async with (
        running(messages_upstream(redirector.url)) as proxy,
        aiohttp.ClientSession() as s,
        s.post(proxy.url + "/v1/messages", json=BODY) as r,
    ):
        status, text = r.status, await r.text()
    assert status == 502
    assert "turns it into a GET" in text
    assert redirector.seen == [("POST", "/v1/messages")]
