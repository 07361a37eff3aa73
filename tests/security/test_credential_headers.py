"""Any bytes in a credential header give a 401 in the client's protocol,
never a 500 or a traceback (issue 25, item 5)."""

from __future__ import annotations

import json

import pytest

from fakes.openai_upstream import FakeOpenAIUpstream
from security.rawhttp import exchange, post
from support import running, settings_for

TOKEN = "header-token-0123456789abcdef"
CHAT = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
MESSAGES = json.dumps(
    {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
)
ODD_VALUES = [
    b"\xff\xfe\x80\x81",
    b"caf\xe9",  # Latin-1
    b"\xed\xa0\x80",  # an encoded surrogate
    TOKEN.encode() + b"\xff",
    b"\xc3",  # a cut UTF-8 sequence
    b"\t \t",
    b"x" * 4000,
]


@pytest.mark.parametrize("value", ODD_VALUES)
@pytest.mark.parametrize("header", [b"x-api-key: ", b"Authorization: Bearer "])
async def test_odd_bytes_give_a_401_in_the_protocol(
    fake_upstream: FakeOpenAIUpstream,
    monkeypatch: pytest.MonkeyPatch,
    header: bytes,
    value: bytes,
) -> None:
    monkeypatch.setenv("HEADER_TOKEN", TOKEN)
    settings = settings_for(fake_upstream.url)
    settings.server.access_token_env = "HEADER_TOKEN"
    async with running(settings) as proxy:
        port = proxy.server.port
        status, body = await exchange(
            port, post("/v1/messages", MESSAGES.encode(), header + value)
        )
        assert status == 401, body
        assert json.loads(body)["type"] == "error"  # Anthropic's shape
        status, body = await exchange(
            port, post("/v1/chat/completions", CHAT.encode(), header + value)
        )
        assert status == 401, body
        assert json.loads(body)["error"]["type"]  # OpenAI's shape
    assert fake_upstream.requests == []


@pytest.mark.parametrize("value", ODD_VALUES)
async def test_odd_bytes_without_a_token_are_just_ignored(
    fake_upstream: FakeOpenAIUpstream, value: bytes
) -> None:
    async with running(settings_for(fake_upstream.url)) as proxy:
        status, body = await exchange(
            proxy.server.port,
            post("/v1/chat/completions", CHAT.encode(), b"x-api-key: " + value),
        )
        record = await proxy.record()
    assert status == 200, body
    assert record.status == 200


@pytest.mark.parametrize("value", [b"\x00", b"\x01abc", b"\x7f", b"a\rb"])
async def test_bytes_http_forbids_are_refused_by_the_parser(
    fake_upstream: FakeOpenAIUpstream, monkeypatch: pytest.MonkeyPatch, value: bytes
) -> None:
    # NUL, control characters and a bare CR are not HTTP: the parser refuses
    # the request (a plain 400) before any route; never a 500.
    monkeypatch.setenv("HEADER_TOKEN", TOKEN)
    settings = settings_for(fake_upstream.url)
    settings.server.access_token_env = "HEADER_TOKEN"
    async with running(settings) as proxy:
        status, _body = await exchange(
            proxy.server.port,
            post("/v1/messages", MESSAGES.encode(), b"x-api-key: " + value),
        )
    assert status == 400
    assert fake_upstream.requests == []
