"""A new protocol is one module plus one line: `registry.register(door)`.

The toy "prompt" protocol below is written as a front door module would be
(parse a body into IR, render answers, stream events and errors); once
registered, the app serves its path through the one pipeline, with route
fallback, session keys, records and errors in its own shape, and nothing
else in LM Bridge changes. The toy "ask" protocol is one whose URLs carry
the model and which has its own key header, token counts and model list
(as Gemini's): an `AddressedDoor`, one line too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence

import aiohttp
import msgspec
import pytest

from fakes.openai_upstream import FakeOpenAIUpstream, Script
from lmbridge.core import errors, ir
from lmbridge.protocols import registry
from lmbridge.protocols.base import (
    Action,
    Address,
    AddressedDoor,
    Endpoint,
    FrontDoor,
    ListedModel,
    Passthrough,
)
from support import running, settings_for

# ---------------------------------------------------------------- the module


class PromptIn(msgspec.Struct):
    model: str
    prompt: str
    stream: bool = False


class TextLines:
    """Streams each text delta as one JSON line."""

    content_type = "application/x-ndjson"

    def encode(self, event: ir.Event) -> bytes:
        if isinstance(event, ir.TextDelta):
            return json.dumps({"text": event.text}).encode() + b"\n"
        if isinstance(event, ir.StreamError):
            return json.dumps({"failed": event.message}).encode() + b"\n"
        if isinstance(event, ir.Finish):
            return b'{"done": true}\n'
        return b""


class PromptProtocol:
    name = "prompt"
    paths: tuple[str, ...] = ("/v1/prompt",)
    passthrough: Passthrough | None = None
    remembers = False

    def parse_request(self, body: bytes) -> ir.Request:
        try:
            req = msgspec.json.decode(body, type=PromptIn)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise errors.InvalidRequest(f"invalid prompt request: {exc}") from None
        return ir.Request(
            model=req.model,
            messages=(ir.Message(ir.Role.USER, (ir.Text(req.prompt),)),),
            stream=req.stream,
        )

    def encode_response(
        self, response: ir.Response, request: ir.Request | None = None
    ) -> bytes:
        text = "".join(p.text for p in response.parts if isinstance(p, ir.Text))
        return json.dumps({"text": text}).encode()

    def stream_encoder(self, request: ir.Request) -> TextLines:
        return TextLines()

    def encode_error(self, error: errors.LMBridgeError) -> bytes:
        return json.dumps({"failed": error.message}).encode()


# ------------------------------------------------------------------ the line


@pytest.fixture
def prompt_door() -> Iterator[FrontDoor]:
    door: FrontDoor = PromptProtocol()
    registry.register(door)
    yield door
    registry.FRONT_DOORS.pop(door.name)


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
    registry.FRONT_DOORS.pop(door.name)


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
