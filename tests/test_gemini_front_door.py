"""Gemini's protocol through LM Bridge, driven by Google's own `google-genai` SDK.

The SDK's async client (`client.aio`) talks to the proxy as it would to
generativelanguage.googleapis.com; the fake upstream behind it speaks
Chat Completions, Messages or Responses. Whole and streamed answers, a
three-turn session with function calls answered by name (Gemini's calls
carry no ids), images, structured output, countTokens, the model list,
the key, bad bodies and overflows, each in Google's own shapes.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx2
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from fakes.openai_upstream import FakeOpenAIUpstream, Script, ToolCallScript
from lmbridge.integrations import testrequest
from lmbridge.integrations.base import Endpoint
from support import RunningProxy, running, settings_for

MODEL = "claude-gemini-test"  # routed by settings_for's claude-* rule
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgAAIAAAUAAen63NgAAAAASUVORK5CYII="
)
WEATHER = types.FunctionDeclaration(
    name="get_weather",
    description="The weather in a city",
    parameters=types.Schema(
        type=types.Type.OBJECT,
        properties={"city": types.Schema(type=types.Type.STRING)},
        required=["city"],
    ),
)
UPSTREAM_PATHS = {
    "chat": "/v1/chat/completions",
    "messages": "/v1/messages",
    "responses": "/v1/responses",
}


class SDK:
    """Makes `google-genai` clients pointed at a proxy; closes them after."""

    def __init__(self) -> None:
        self.http: list[httpx2.AsyncClient] = []

    def __call__(
        self, proxy: RunningProxy, key: str = "gemini-key", **options: Any
    ) -> genai.client.AsyncClient:
        """The real SDK's async client, over httpx, without retries."""
        http = httpx2.AsyncClient(timeout=30)
        self.http.append(http)
        return genai.Client(
            api_key=key,
            vertexai=False,
            http_options=types.HttpOptions(
                base_url=proxy.url,
                retry_options=types.HttpRetryOptions(attempts=1),
                httpx_async_client=http,
                **options,
            ),
        ).aio


@pytest.fixture
async def gemini() -> AsyncIterator[SDK]:
    sdk = SDK()
    yield sdk
    for http in sdk.http:
        await http.aclose()


@pytest.fixture(params=["chat", "messages", "responses"])
async def bridge(
    request: pytest.FixtureRequest, fake_upstream: FakeOpenAIUpstream
) -> AsyncIterator[tuple[RunningProxy, str]]:
    api = request.param
    settings = settings_for(fake_upstream.url, upstream_extra=f'api = "{api}"')
    async with running(settings) as proxy:
        yield proxy, api


@pytest.fixture
async def proxy(fake_upstream: FakeOpenAIUpstream) -> AsyncIterator[RunningProxy]:
    async with running(settings_for(fake_upstream.url)) as running_proxy:
        yield running_proxy


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_text_whole_and_streamed(
    bridge: tuple[RunningProxy, str],
    fake_upstream: FakeOpenAIUpstream,
    gemini: SDK,
    stream: bool,
) -> None:
    proxy, api = bridge
    fake_upstream.script = Script(text="Hello from the fake upstream.", cached_tokens=4)
    config = types.GenerateContentConfig(
        system_instruction="You are terse.",
        temperature=0.5,
        top_p=0.9,
        max_output_tokens=200,
        stop_sequences=["THE END"],
    )
    client = gemini(proxy)
    if stream:
        chunks = [
            chunk
            async for chunk in await client.models.generate_content_stream(
                model=MODEL, contents="Hi", config=config
            )
        ]
        text = "".join(c.text or "" for c in chunks)
        last = chunks[-1]
    else:
        last = await client.models.generate_content(
            model=MODEL, contents="Hi", config=config
        )
        text = last.text or ""
    assert text == "Hello from the fake upstream."
    assert last.candidates is not None
    assert last.candidates[0].finish_reason == types.FinishReason.STOP
    usage = last.usage_metadata
    assert usage is not None
    assert (usage.prompt_token_count, usage.candidates_token_count) == (11, 7)
    assert usage.total_token_count == 18
    assert usage.cached_content_token_count == 4
    sent = fake_upstream.requests[-1]
    assert sent.path == UPSTREAM_PATHS[api]
    assert sent.body["model"] == "fake-model"
    assert json.dumps(sent.body).count("You are terse.") == 1
    record = await proxy.record()
    assert (record.protocol, record.status, record.stream) == ("gemini", 200, stream)
    assert record.model == MODEL


def _calls(sent: dict[str, Any], api: str) -> list[tuple[str, str, Any]]:
    """The tool calls in an upstream body's history: (id, name, arguments)."""
    if api == "chat":
        return [
            (c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
            for m in sent["messages"]
            for c in m.get("tool_calls") or ()
        ]
    if api == "messages":
        return [
            (b["id"], b["name"], b["input"])
            for m in sent["messages"]
            if isinstance(m["content"], list)
            for b in m["content"]
            if b["type"] == "tool_use"
        ]
    return [
        (i["call_id"], i["name"], json.loads(i["arguments"]))
        for i in sent["input"]
        if i.get("type") == "function_call"
    ]


def _results(sent: dict[str, Any], api: str) -> list[tuple[str, str]]:
    """The tool results in an upstream body: (call id, text)."""

    def text(content: Any) -> str:
        if isinstance(content, str):
            return content
        return "".join(p.get("text", "") for p in content or ())

    if api == "chat":
        return [
            (m["tool_call_id"], text(m["content"]))
            for m in sent["messages"]
            if m["role"] == "tool"
        ]
    if api == "messages":
        return [
            (b["tool_use_id"], text(b.get("content")))
            for m in sent["messages"]
            if isinstance(m["content"], list)
            for b in m["content"]
            if b["type"] == "tool_result"
        ]
    return [
        (i["call_id"], text(i["output"]))
        for i in sent["input"]
        if i.get("type") == "function_call_output"
    ]


async def test_three_turn_session_with_parallel_function_calls(
    bridge: tuple[RunningProxy, str], fake_upstream: FakeOpenAIUpstream, gemini: SDK
) -> None:
    """Turn 1 asks, the model calls two functions at once; turn 2 answers
    them (as Gemini clients do: by name, without ids) and gets the answer;
    turn 3 goes on. The upstream sees one history that only grows, with
    the same call ids on every turn."""
    proxy, api = bridge
    client = gemini(proxy)
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[WEATHER])],
        safety_settings=[
            types.SafetySetting(
                category=types.HarmCategory.HARM_CATEGORY_HARASSMENT,
                threshold=types.HarmBlockThreshold.BLOCK_NONE,
            )
        ],
    )
    fake_upstream.script = Script(
        text="",
        tool_calls=[
            ToolCallScript("get_weather", '{"city": "Paris"}', id="call_p"),
            ToolCallScript("get_weather", '{"city": "Tokyo"}', id="call_t"),
        ],
    )
    history: list[types.Content] = [
        types.Content(
            role="user", parts=[types.Part(text="Weather in Paris and Tokyo?")]
        )
    ]
    chunks = [
        c
        async for c in await client.models.generate_content_stream(
            model=MODEL, contents=history, config=config
        )
    ]
    calls = [call for c in chunks for call in c.function_calls or ()]
    assert [(c.name, c.args) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Tokyo"}),
    ]
    assert chunks[-1].candidates is not None
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    # A client that keeps no ids (Gemini's own API gives none).
    history.append(
        types.Content(
            role="model",
            parts=[
                types.Part(function_call=types.FunctionCall(name=c.name, args=c.args))
                for c in calls
            ],
        )
    )
    history.append(
        types.Content(
            role="user",
            parts=[
                types.Part(
                    function_response=types.FunctionResponse(
                        name="get_weather", response={"output": f"{city}: sunny"}
                    )
                )
                for city in ("Paris", "Tokyo")
            ],
        )
    )
    fake_upstream.script = Script(text="Sunny in both.")
    second = await client.models.generate_content(
        model=MODEL, contents=history, config=config
    )
    assert second.text == "Sunny in both."
    turn2 = fake_upstream.requests[-1].body
    ids = [c[0] for c in _calls(turn2, api)]
    assert [c[1:] for c in _calls(turn2, api)] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Tokyo"}),
    ]
    assert _results(turn2, api) == [(ids[0], "Paris: sunny"), (ids[1], "Tokyo: sunny")]
    assert len(set(ids)) == 2

    history.append(second.candidates[0].content)  # type: ignore[index, arg-type]
    history.append(types.Content(role="user", parts=[types.Part(text="And Rome?")]))
    fake_upstream.script = Script(text="No idea.")
    third = await client.models.generate_content(
        model=MODEL, contents=history, config=config
    )
    assert third.text == "No idea."
    turn3 = fake_upstream.requests[-1].body
    # The same ids on turn 3: the upstream's prompt only grew.
    assert [c[0] for c in _calls(turn3, api)] == ids
    assert _results(turn3, api) == _results(turn2, api)
    record = await proxy.record(3)
    assert any(n.startswith("dropped: safetySettings") for n in record.note_texts)


async def test_call_ids_from_the_answer_come_back(
    proxy: RunningProxy, fake_upstream: FakeOpenAIUpstream, gemini: SDK
) -> None:
    """A client that keeps the ids LM Bridge gave (Gemini CLI) is matched
    by id, whatever order its responses come in."""
    client = gemini(proxy)
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[WEATHER])]
    )
    fake_upstream.script = Script(
        text="",
        tool_calls=[
            ToolCallScript("get_weather", '{"city": "Paris"}', id="call_p"),
            ToolCallScript("get_weather", '{"city": "Tokyo"}', id="call_t"),
        ],
    )
    first = await client.models.generate_content(
        model=MODEL, contents="Weather?", config=config
    )
    calls = first.function_calls or []
    assert [c.id for c in calls] == ["call_p", "call_t"]
    fake_upstream.script = Script(text="Done.")
    contents: list[types.Content] = [
        types.Content(role="user", parts=[types.Part(text="Weather?")]),
        first.candidates[0].content,  # type: ignore[index, list-item]
        types.Content(
            role="user",
            parts=[
                types.Part(
                    function_response=types.FunctionResponse(
                        id=c.id,
                        name=c.name,
                        response={"output": c.args["city"]},  # type: ignore[index]
                    )
                )
                for c in reversed(calls)
            ],
        ),
    ]
    await client.models.generate_content(model=MODEL, contents=contents, config=config)
    sent = fake_upstream.requests[-1].body
    assert _results(sent, "chat") == [("call_t", "Tokyo"), ("call_p", "Paris")]


async def test_image_reaches_the_upstream(
    bridge: tuple[RunningProxy, str], fake_upstream: FakeOpenAIUpstream, gemini: SDK
) -> None:
    proxy, _api = bridge
    fake_upstream.script = Script(text="A single pixel.")
    answer = await gemini(proxy).models.generate_content(
        model=MODEL,
        contents=[
            "What is this?",
            types.Part.from_bytes(data=PNG, mime_type="image/png"),
        ],
    )
    assert answer.text == "A single pixel."
    encoded = base64.b64encode(PNG).decode()
    assert encoded in json.dumps(fake_upstream.requests[-1].body)


async def test_structured_output_reaches_every_upstream_api(
    bridge: tuple[RunningProxy, str], fake_upstream: FakeOpenAIUpstream, gemini: SDK
) -> None:
    proxy, api = bridge
    fake_upstream.script = Script(text='{"city": "Paris"}')
    answer = await gemini(proxy).models.generate_content(
        model=MODEL,
        contents="Which city?",
        config=types.GenerateContentConfig(
            response_mime_type="application/json",
            response_schema=types.Schema(
                type=types.Type.OBJECT,
                properties={"city": types.Schema(type=types.Type.STRING)},
                required=["city"],
            ),
        ),
    )
    assert answer.text == '{"city": "Paris"}'
    sent = fake_upstream.requests[-1].body
    wanted = {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    }
    if api == "chat":
        assert sent["response_format"]["type"] == "json_schema"
        assert sent["response_format"]["json_schema"]["schema"] == wanted
    elif api == "messages":
        assert sent["output_config"]["format"]["schema"] == wanted
    else:
        assert sent["text"]["format"]["schema"] == wanted


async def test_thoughts_shown_when_asked_with_their_token_count(
    proxy: RunningProxy, fake_upstream: FakeOpenAIUpstream, gemini: SDK
) -> None:
    fake_upstream.script = Script(reasoning="2 + 2 is 4.", text="It is 4.")
    client = gemini(proxy)
    asked = types.GenerateContentConfig(
        thinking_config=types.ThinkingConfig(
            include_thoughts=True, thinking_budget=2048
        )
    )
    for stream in (False, True):
        if stream:
            chunks = [
                c
                async for c in await client.models.generate_content_stream(
                    model=MODEL, contents="2 + 2?", config=asked
                )
            ]
        else:
            chunks = [
                await client.models.generate_content(
                    model=MODEL, contents="2 + 2?", config=asked
                )
            ]
        parts = [p for c in chunks for p in c.candidates[0].content.parts or ()]  # type: ignore[index, union-attr]
        assert "".join(p.text or "" for p in parts if p.thought) == "2 + 2 is 4."
        assert "".join(p.text or "" for p in parts if not p.thought) == "It is 4."
    # The Chat upstream is asked to reason (a budget becomes an effort).
    assert fake_upstream.requests[-1].body.get("reasoning_effort")
    # Without thinkingConfig the answer holds no thoughts (Gemini's default).
    plain = await client.models.generate_content(model=MODEL, contents="2 + 2?")
    parts = plain.candidates[0].content.parts or []  # type: ignore[index, union-attr]
    assert [p.thought for p in parts] == [None]
    assert plain.text == "It is 4."


async def test_count_tokens_and_the_model_list(
    proxy: RunningProxy, fake_upstream: FakeOpenAIUpstream, gemini: SDK
) -> None:
    client = gemini(proxy)
    counted = await client.models.count_tokens(
        model=MODEL, contents="The quick brown fox jumps over the lazy dog."
    )
    assert counted.total_tokens is not None and 5 <= counted.total_tokens <= 30
    longer = await client.models.count_tokens(
        model=MODEL, contents="The quick brown fox jumps over the lazy dog. " * 10
    )
    assert (
        longer.total_tokens is not None and longer.total_tokens > counted.total_tokens
    )
    names = [m.name async for m in await client.models.list()]
    assert "models/fake-model" in names
    assert "models/other-model" in names
    model = await client.models.get(model="fake-model")
    assert model.name == "models/fake-model"
    assert model.supported_actions and "generateContent" in model.supported_actions
    # The same list on the /v1 API, which OpenAI's clients share.
    v1 = gemini(proxy, api_version="v1")
    assert [m.name async for m in await v1.models.list()] == names
    async with aiohttp.ClientSession() as http, http.get(proxy.url + "/v1/models") as r:
        assert (await r.json())["object"] == "list"  # OpenAI's, as before


async def test_v1_api_version_serves_calls(
    proxy: RunningProxy, fake_upstream: FakeOpenAIUpstream, gemini: SDK
) -> None:
    fake_upstream.script = Script(text="From v1.")
    answer = await gemini(proxy, api_version="v1").models.generate_content(
        model=MODEL, contents="Hi"
    )
    assert answer.text == "From v1."
    assert (await proxy.record()).path == f"/v1/models/{MODEL}:generateContent"


async def test_the_key_is_checked_like_every_door_key(
    fake_upstream: FakeOpenAIUpstream,
    gemini: SDK,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BRIDGE_TOKEN", "s3cret-token-for-gemini")
    settings = settings_for(fake_upstream.url)
    settings.server.access_token_env = "BRIDGE_TOKEN"
    async with running(settings) as proxy:
        good = await gemini(
            proxy, key="s3cret-token-for-gemini"
        ).models.generate_content(model=MODEL, contents="Hi")
        assert good.text == "Hello from the fake upstream."
        with pytest.raises(genai_errors.ClientError) as caught:
            await gemini(proxy, key="wrong").models.generate_content(
                model=MODEL, contents="Hi"
            )
        assert caught.value.code == 401
        assert caught.value.status == "UNAUTHENTICATED"
        async with aiohttp.ClientSession() as http:
            url = f"{proxy.url}/v1beta/models/{MODEL}:generateContent"
            body = {"contents": [{"parts": [{"text": "Hi"}]}]}
            async with http.post(url + "?key=s3cret-token-for-gemini", json=body) as r:
                assert r.status == 200
            async with http.post(url + "?key=nope", json=body) as r:
                assert r.status == 401
                error = (await r.json())["error"]
            async with http.get(proxy.url + "/v1beta/models?key=nope") as r:
                assert r.status == 401
    assert error["status"] == "UNAUTHENTICATED" and error["code"] == 401
    assert "s3cret" not in json.dumps([r.note_texts for r in proxy.records])


async def test_the_test_buttons_gemini_request_is_served_whole_and_streamed(
    fake_upstream: FakeOpenAIUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one test-request builder makes Gemini's request from the door's
    `Wire` (the model and the method in the path, the key in
    x-goog-api-key) and its example body; the proxy answers both."""
    monkeypatch.setenv("BRIDGE_TOKEN", "t0ken-for-the-test-button")
    settings = settings_for(fake_upstream.url)
    settings.server.access_token_env = "BRIDGE_TOKEN"
    async with running(settings) as proxy, aiohttp.ClientSession() as http:
        endpoint = Endpoint(proxy.url, token="t0ken-for-the-test-button")
        whole = testrequest.build("gemini", MODEL, endpoint)
        streamed = testrequest.build("gemini", MODEL, endpoint, stream=True)
        assert whole.path == f"/v1beta/models/{MODEL}:generateContent"
        assert streamed.path == f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
        assert whole.headers["x-goog-api-key"] == "t0ken-for-the-test-button"
        assert "Authorization" not in whole.headers
        async with http.post(
            whole.url(proxy.url), json=whole.body, headers=whole.headers
        ) as r:
            assert r.status == 200, await r.text()
            parts = (await r.json())["candidates"][0]["content"]["parts"]
        assert "".join(p["text"] for p in parts) == "Hello from the fake upstream."
        async with http.post(
            streamed.url(proxy.url), json=streamed.body, headers=streamed.headers
        ) as r:
            assert r.status == 200
            assert r.content_type == "text/event-stream"
            text = await r.text()
        assert "Hello" in text and text.startswith("data: ")
        second = await proxy.record(2)
    assert second.protocol == "gemini" and second.model == MODEL
    assert fake_upstream.requests[0].body["max_tokens"] == testrequest.MAX_TOKENS


async def test_bad_bodies_get_a_clear_400_in_googles_shape(
    proxy: RunningProxy, fake_upstream: FakeOpenAIUpstream, gemini: SDK
) -> None:
    client = gemini(proxy)
    with pytest.raises(genai_errors.ClientError) as caught:
        await client.models.generate_content(
            model=MODEL,
            contents="Hi",
            config=types.GenerateContentConfig(candidate_count=2),
        )
    assert caught.value.code == 400 and caught.value.status == "INVALID_ARGUMENT"
    assert "candidateCount" in (caught.value.message or "")
    url = f"{proxy.url}/v1beta/models/{MODEL}:generateContent"
    bad: list[tuple[bytes, str]] = [
        (b"{not json", "not valid JSON"),
        (b'{"contents": "hi"}', "contents"),
        (b'{"contents": []}', "contents"),
        (b'{"contents": [{"role": "robot", "parts": [{"text": "x"}]}]}', "role"),
        (
            b'{"contents": [{"parts": [{"text": "x"}]}],'
            b' "generationConfig": {"temperature": 9}}',
            "temperature",
        ),
    ]
    async with aiohttp.ClientSession() as http:
        headers = {"Content-Type": "application/json"}
        for body, words in bad:
            async with http.post(url, data=body, headers=headers) as r:
                assert r.status == 400, body
                error = (await r.json())["error"]
                assert error["code"] == 400 and error["status"] == "INVALID_ARGUMENT"
                assert words in error["message"], (body, error)
        stream_url = url.replace(":generateContent", ":streamGenerateContent")
        body = b'{"contents": [{"parts": [{"text": "x"}]}]}'
        async with http.post(stream_url, data=body, headers=headers) as r:
            assert r.status == 400
            assert "alt=sse" in (await r.json())["error"]["message"]
    assert fake_upstream.requests == []
    # Refused before routing, each is still recorded under its model.
    assert {r.model for r in proxy.records} == {MODEL}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_overflow_in_words_gemini_clients_know(
    proxy: RunningProxy, fake_upstream: FakeOpenAIUpstream, gemini: SDK, stream: bool
) -> None:
    fake_upstream.script = Script(
        status=400,
        error_message=(
            "This model's maximum context length is 8192 tokens. However, you"
            " requested 12131 tokens (12031 in the messages, 100 in the"
            " completion). Please reduce the length of the messages or completion."
        ),
    )
    client = gemini(proxy)

    async def ask() -> None:
        if stream:
            async for _ in await client.models.generate_content_stream(
                model=MODEL, contents="Hi"
            ):
                pass
        else:
            await client.models.generate_content(model=MODEL, contents="Hi")

    with pytest.raises(genai_errors.ClientError) as caught:
        await ask()
    assert caught.value.code == 400 and caught.value.status == "INVALID_ARGUMENT"
    assert (caught.value.message or "").startswith(
        "The input token count (12031) exceeds the maximum number of tokens"
        " allowed (8192)."
    )


async def test_an_upstream_failing_mid_stream_is_an_error_event(
    proxy: RunningProxy, fake_upstream: FakeOpenAIUpstream, gemini: SDK
) -> None:
    fake_upstream.script = Script(
        text="one two three four five six seven", close_after_chunks=4
    )
    got: list[str] = []

    async def read() -> None:
        async for chunk in await gemini(proxy).models.generate_content_stream(
            model=MODEL, contents="Count"
        ):
            got.append(chunk.text or "")

    with pytest.raises(genai_errors.APIError) as caught:
        await read()
    assert caught.value.code >= 500
    assert got and "one two three four five six seven".startswith("".join(got))
    assert (await proxy.record()).error
    # The raw stream: 200, data frames, one error frame in Google's shape last.
    async with aiohttp.ClientSession() as http:
        url = f"{proxy.url}/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
        body = {"contents": [{"parts": [{"text": "Count"}]}]}
        async with http.post(url, json=body) as r:
            assert r.status == 200
            raw = await r.text()
    frames = [json.loads(f[6:]) for f in raw.split("\r\n\r\n") if f]
    assert all("candidates" in f for f in frames[:-1])
    assert set(frames[-1]) == {"error"}
    assert set(frames[-1]["error"]) == {"code", "message", "status"}


async def test_shared_v1_model_path_is_left_to_other_clients(
    proxy: RunningProxy,
) -> None:
    """`GET /v1/models/{model}` is Gemini's only for Gemini's clients; an
    OpenAI client gets the 404 in its own shape it always got."""
    async with aiohttp.ClientSession() as http:
        async with http.get(proxy.url + "/v1/models/fake-model") as r:
            assert r.status == 404
            error = (await r.json())["error"]
            assert error["type"] == "not_found_error"
        url = proxy.url + "/v1/models/fake-model"
        async with http.get(url, headers={"x-goog-api-key": "k"}) as r:
            assert (await r.json())["name"] == "models/fake-model"
        async with http.get(proxy.url + "/v1beta/files") as r:
            assert r.status == 404
            assert (await r.json())["error"]["status"] == "NOT_FOUND"
