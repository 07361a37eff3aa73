"""A new protocol is one module plus one line: `registry.register(codec)`.

The toy "prompt" protocol below is written as a front door module would be
(its wire facts, parse a body into IR, render answers, stream events and
errors, an example request); once registered, the app serves its path
through the one pipeline, with route fallback, session keys, records and
errors in its own shape, and the Test buttons' builder makes its request.

The toy "lines" upstream API is written as an upstream API module would be
(its wire facts, encode IR as its body, decode its answers and errors);
once registered, `api = "lines"` in an upstream's settings sends requests
from every front door to it, with its key in its own header, and nothing
else in LM Bridge changes.

The toy "ask" protocol is a door whose URLs carry the model and which has
its own key header, token counts and model list (as Gemini's): an
`AddressedDoor`, one line too.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web

from fakes.openai_upstream import FakeOpenAIUpstream, Script
from fakes.prompt_door import PromptProtocol
from lmbridge import integrations
from lmbridge.core import errors, ir
from lmbridge.protocols import registry
from lmbridge.protocols.base import (
    Action,
    Address,
    AddressedDoor,
    Endpoint,
    FrontDoor,
    ListedModel,
    PlatformBlock,
    UpstreamCodec,
    Wire,
)
from support import running, settings_for

# ---------------------------------------------------------------- the module


class LinesOut(msgspec.Struct):
    text: str = ""
    done: bool = False
    failed: str = ""


class LinesDecoder:
    """The "lines" API's answer: one JSON object a line, text then done."""

    def __init__(self) -> None:
        self._buffer = b""
        self._started = False
        self._ended = False

    def feed(self, data: bytes) -> list[ir.Event]:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        events: list[ir.Event] = []
        for line in filter(None, lines):
            out = msgspec.json.decode(line, type=LinesOut)
            if not self._started:
                self._started = True
                events += [ir.MessageStart(id="lines-1", model="toy")]
                events += [ir.BlockStart(0, ir.BlockKind.TEXT)]
            if out.text:
                events.append(ir.TextDelta(0, out.text))
            if out.done:
                self._ended = True
                events += [
                    ir.BlockStop(0),
                    ir.Finish(ir.StopReason.END_TURN, ir.Usage()),
                ]
        return events

    def close(self) -> list[ir.Event]:
        if self._ended:
            return []
        return [ir.StreamError("upstream_error", "the lines stream broke off", 502)]


class LinesApi:
    name = "lines"
    wire = Wire(path="/v1/lines", key_header="x-lines-key", key_scheme="")

    def encode_request(self, request: ir.Request) -> bytes:
        prompt = "".join(
            part.text
            for message in request.messages
            for part in message.parts
            if isinstance(part, ir.Text)
        )
        return json.dumps({"model": request.model, "prompt": prompt}).encode()

    def omitted(self, request: ir.Request) -> list[str]:
        return ["tools"] if request.tools else []

    def stream_decoder(self, request: ir.Request) -> LinesDecoder:
        return LinesDecoder()

    def decode_whole(self, body: bytes) -> list[ir.Event]:
        decoder = LinesDecoder()
        return decoder.feed(body + b"\n") + decoder.close()

    def parse_error(self, status: int, body: bytes) -> errors.LMBridgeError:
        out = msgspec.json.decode(body, type=LinesOut)
        return errors.UpstreamError(out.failed or f"lines API failed ({status})")


# ----------------------------------------------------------------- the lines


@pytest.fixture
def prompt_door() -> Iterator[FrontDoor]:
    door: FrontDoor = PromptProtocol()
    registry.register(door)
    yield door
    registry.unregister(door.name)


@pytest.fixture
def lines_api() -> Iterator[UpstreamCodec]:
    codec: UpstreamCodec = LinesApi()
    registry.register(codec)
    yield codec
    registry.unregister(codec.name)


class LinesServer:
    """A real server speaking the "lines" API on 127.0.0.1:0."""

    def __init__(self) -> None:
        self.seen: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.url = ""

    async def answer(self, request: web.Request) -> web.StreamResponse:
        self.seen.append((dict(request.headers), await request.json()))
        prompt = self.seen[-1][1]["prompt"]
        if prompt == "fail":
            return web.json_response({"failed": "no lines today"}, status=503)
        lines = [{"text": "you said: "}, {"text": prompt}, {"done": True}]
        return web.Response(
            body=b"".join(json.dumps(x).encode() + b"\n" for x in lines),
            content_type="application/x-ndjson",
        )


@pytest.fixture
async def lines_server() -> AsyncIterator[LinesServer]:
    server = LinesServer()
    app = web.Application()
    app.router.add_post("/v1/lines", server.answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    server.url = f"http://127.0.0.1:{port}"
    try:
        yield server
    finally:
        await runner.cleanup()


async def test_a_registered_protocol_is_served_through_the_pipeline(
    prompt_door: FrontDoor, fake_upstream: FakeOpenAIUpstream
) -> None:
    fake_upstream.script = Script(text="hi there")
    async with running(settings_for(fake_upstream.url)) as proxy:
        async with aiohttp.ClientSession() as http:
            url = proxy.url + "/v1/prompt"
            body = {"model": "claude-x", "prompt": "hello"}
            async with http.post(url, json=body) as r:
                assert r.status == 200
                assert await r.json() == {"text": "hi there"}
            async with http.post(url, json={**body, "stream": True}) as r:
                lines = [json.loads(line) for line in (await r.text()).splitlines()]
            assert lines[-1] == {"done": True}
            assert "".join(x.get("text", "") for x in lines) == "hi there"
            # Errors answer in the protocol's own shape.
            bad = {"Content-Type": "application/json"}
            async with http.post(url, data=b"{not json", headers=bad) as r:
                assert r.status == 400
                assert "invalid prompt request" in (await r.json())["failed"]
            fake_upstream.script = Script(status=503, error_message="busy")
            async with http.post(url, json=body) as r:
                assert r.status == 503
                assert (await r.json()) == {"failed": "busy"}
        record = await proxy.record(4)
    assert fake_upstream.requests[0].body["messages"] == [
        {"role": "user", "content": "hello"}
    ]
    assert record.protocol == "prompt"
    assert record.upstream == "fake"
    assert [r.status for r in proxy.records] == [200, 200, 400, 503]


async def test_a_registered_protocol_gets_route_fallback(
    prompt_door: FrontDoor, fake_upstream: FakeOpenAIUpstream
) -> None:
    """The same pipeline: a dead first upstream falls back to the next."""
    dead = "http://127.0.0.1:9"
    settings = settings_for(
        dead,
        upstream_extra=f'[[upstream]]\nname = "second"\nbase_url = "{fake_upstream.url}"',
        routes='fallback = ["second"]',
    )
    fake_upstream.script = Script(text="from the second")
    async with running(settings) as proxy, aiohttp.ClientSession() as http:
        body = {"model": "claude-x", "prompt": "hello"}
        async with http.post(proxy.url + "/v1/prompt", json=body) as r:
            assert await r.json() == {"text": "from the second"}
        record = await proxy.record()
    assert record.upstream == "second"
    assert any(note.startswith("fallback fake -> second") for note in record.note_texts)


def test_the_test_button_builds_a_registered_doors_request(
    prompt_door: FrontDoor,
) -> None:
    """One test-request builder: it asks the door for its path, its key
    header and its example body."""
    request = integrations.testrequest.build("prompt", "toy-model", stream=True)  # type: ignore[arg-type]
    assert (request.method, request.path) == ("POST", "/v1/prompt")
    assert request.body == {
        "model": "toy-model",
        "prompt": integrations.testrequest.PROMPT,
        "stream": True,
    }
    assert request.headers["Content-Type"] == "application/json"


def test_a_codec_that_is_neither_is_refused() -> None:
    with pytest.raises(TypeError, match="neither a FrontDoor nor an UpstreamCodec"):
        registry.register(object())  # type: ignore[arg-type]


def test_an_unknown_api_is_a_config_error_naming_the_known_ones() -> None:
    with pytest.raises(errors.ConfigError, match=r"api must be one of .*chat"):
        settings_for("http://127.0.0.1:9", upstream_extra='api = "lines"')


async def test_a_registered_upstream_api_gets_requests_from_every_door(
    lines_api: UpstreamCodec,
    lines_server: LinesServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`api = "lines"` sends requests of the built-in doors to the toy API,
    turn after turn, whole and streamed; errors keep its message."""
    monkeypatch.setenv("LINES_KEY", "lines-secret")
    settings = settings_for(
        lines_server.url, upstream_extra='api = "lines"\napi_key_env = "LINES_KEY"'
    )
    async with running(settings) as proxy, aiohttp.ClientSession() as http:
        chat_url = proxy.url + "/v1/chat/completions"
        history = [{"role": "user", "content": "hello"}]
        async with http.post(
            chat_url, json={"model": "claude-x", "messages": history}
        ) as r:
            assert r.status == 200, await r.text()
            answer = (await r.json())["choices"][0]["message"]["content"]
        assert answer == "you said: hello"
        history += [
            {"role": "assistant", "content": answer},
            {"role": "user", "content": " again"},
        ]
        async with http.post(
            chat_url, json={"model": "claude-x", "messages": history}
        ) as r:
            assert (await r.json())["choices"][0]["message"]["content"].startswith(
                "you said: hello"
            )
        body = {
            "model": "claude-x",
            "max_tokens": 64,
            "stream": True,
            "messages": [{"role": "user", "content": "streamed"}],
        }
        headers = {"anthropic-version": "2023-06-01"}
        async with http.post(
            proxy.url + "/v1/messages", json=body, headers=headers
        ) as r:
            assert r.status == 200
            text = await r.text()
        assert "you said: " in text and "streamed" in text
        assert text.rstrip().endswith('data: {"type":"message_stop"}')
        body = {"model": "claude-x", "input": "fail"}
        async with http.post(proxy.url + "/v1/responses", json=body) as r:
            assert r.status == 502
            assert (await r.json())["error"]["message"] == "no lines today"
        await proxy.record(4)
    assert [rec.upstream_api for rec in proxy.records] == ["lines"] * 4
    assert [rec.status for rec in proxy.records] == [200, 200, 200, 502]
    sent_headers, sent = lines_server.seen[0]
    assert sent == {"model": "fake-model", "prompt": "hello"}
    assert sent_headers["x-lines-key"] == "lines-secret"
    assert "Authorization" not in sent_headers
    assert lines_server.seen[1][1]["prompt"] == "helloyou said: hello again"


# ------------------------------------- a block only the protocol's platform reads

TAG = PlatformBlock(prefix="x-toy-platform:", note="the toy platform's tag")


class TaggedIn(msgspec.Struct):
    model: str
    prompt: str
    system: list[str] = []
    stream: bool = False


class TaggedProtocol(PromptProtocol):
    """A door whose clients put a block in the system prompt that only the
    protocol's own platform reads (as Claude Code's billing block)."""

    name = "tagged"
    wire = Wire(path="/v1/tagged", platform_block=TAG)
    paths: tuple[str, ...] = ("/v1/tagged",)

    def parse_request(self, body: bytes) -> ir.Request:
        req = msgspec.json.decode(body, type=TaggedIn)
        return ir.Request(
            model=req.model,
            system=tuple(ir.Text(text) for text in req.system),
            messages=(ir.Message(ir.Role.USER, (ir.Text(req.prompt),)),),
            stream=req.stream,
        )


@pytest.fixture
def tagged_door() -> Iterator[FrontDoor]:
    door: FrontDoor = TaggedProtocol()
    registry.register(door)
    yield door
    registry.unregister(door.name)
    assert TAG not in registry.platform_blocks()


@pytest.mark.parametrize("keep", [False, True])
async def test_a_protocols_platform_block_is_dropped_through_the_registry(
    tagged_door: FrontDoor, fake_upstream: FakeOpenAIUpstream, keep: bool
) -> None:
    """The pipeline knows no protocol's block by name: it drops every
    registered one (`Wire.platform_block`) on the way to an upstream that
    does not keep it, turn after turn, whole and streamed, and says so."""
    assert TAG in registry.platform_blocks()
    extra = "keep_billing_header = true" if keep else ""
    settings = settings_for(fake_upstream.url, upstream_extra=extra)
    async with running(settings) as proxy, aiohttp.ClientSession() as http:
        for turn, stream in enumerate([False, True]):
            body = {
                "model": "claude-x",
                "prompt": f"turn {turn}",
                "system": [f"x-toy-platform: turn={turn}", "Be brief."],
                "stream": stream,
            }
            async with http.post(proxy.url + "/v1/tagged", json=body) as r:
                assert r.status == 200, await r.text()
        record = await proxy.record(2)
    assert len(fake_upstream.requests) == 2
    for seen in fake_upstream.requests:
        assert (b"x-toy-platform" in seen.raw) is keep
        assert b"Be brief." in seen.raw
    assert ("dropped: the toy platform's tag" in record.note_texts) is not keep


# ------------------------------------------- a door that says things in its URL


class AskProtocol(PromptProtocol):
    """A door in Gemini's manner: the model in the URL, a key header and
    query parameter of its own, token counts and a model list."""

    name = "ask"
    paths: tuple[str, ...] = ()
    endpoints = (
        Endpoint("POST", "/ask/{model:.+}:answer", Action.GENERATE),
        Endpoint("POST", "/ask/{model:.+}:count", Action.COUNT),
        Endpoint("GET", "/ask", Action.LIST_MODELS),
        Endpoint("GET", "/ask/{model:.+}", Action.GET_MODEL),
    )

    def serves(self, path: str) -> bool:
        return path.startswith("/ask")

    def claims(self, headers: Mapping[str, str], query: Mapping[str, str]) -> bool:
        return "x-ask-key" in headers

    def presented_key(
        self, headers: Mapping[str, str], query: Mapping[str, str]
    ) -> str | None:
        return headers.get("x-ask-key") or query.get("ask_key")

    def parse_call(self, body: bytes, address: Address) -> ir.Request:
        req = self.parse_request(body)
        return msgspec.structs.replace(req, model=address.params["model"])

    def count_tokens(self, body: bytes, address: Address) -> bytes:
        return json.dumps({"words": len(self.parse_request(body).messages)}).encode()

    def encode_models(self, models: Sequence[ListedModel]) -> bytes:
        return json.dumps([m.id for m in models]).encode()

    def encode_model(self, model: ListedModel) -> bytes:
        return json.dumps({"id": model.id, "by": model.owner}).encode()


@pytest.fixture
def ask_door() -> Iterator[AddressedDoor]:
    door: AddressedDoor = AskProtocol()
    registry.register(door)
    yield door
    registry.unregister(door.name)


async def test_a_door_with_urls_and_a_key_of_its_own_is_one_line(
    ask_door: AddressedDoor,
    fake_upstream: FakeOpenAIUpstream,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BRIDGE_TOKEN", "t0ken-of-the-bridge")
    settings = settings_for(fake_upstream.url)
    settings.server.access_token_env = "BRIDGE_TOKEN"
    fake_upstream.script = Script(text="hi there")
    key = {"x-ask-key": "t0ken-of-the-bridge"}
    async with running(settings) as proxy, aiohttp.ClientSession() as http:
        url = proxy.url + "/ask/claude-x:answer"
        body = {"model": "ignored", "prompt": "hello"}
        async with http.post(url, json=body, headers=key) as r:
            assert await r.json() == {"text": "hi there"}
        async with http.post(url + "?ask_key=t0ken-of-the-bridge", json=body) as r:
            assert r.status == 200
        async with http.post(url, json=body, headers={"x-ask-key": "wrong"}) as r:
            assert r.status == 401
            assert "access token" in (await r.json())["failed"]
        async with http.post(proxy.url + "/ask/m:count", json=body, headers=key) as r:
            assert await r.json() == {"words": 1}
        async with http.get(proxy.url + "/ask", headers=key) as r:
            assert "fake-model" in await r.json()
        async with http.get(proxy.url + "/v1/models", headers=key) as r:
            assert "fake-model" in await r.json()  # claimed: the door's shape
        async with http.get(proxy.url + "/ask/fake-model", headers=key) as r:
            assert await r.json() == {"id": "fake-model", "by": "fake"}
        record = await proxy.record(2)
    assert fake_upstream.requests[0].body["model"] == "fake-model"
    assert (record.protocol, record.model) == ("ask", "claude-x")
