"""Conformance: every front door x every upstream API, the same scenarios.

Each scenario runs through all twelve pairs of client protocol (front
door: Chat Completions, Anthropic Messages, Responses, Gemini) and upstream
API (Chat Completions, Anthropic Messages, Responses). The client is the
official SDK of the front door (`openai` chat.completions, `anthropic`
messages, `openai` responses, Google's `google-genai`); the fake upstream
is configured with an explicit `api`. Same-API pairs go through the
byte-for-byte relay, the other nine through the IR.

The SDK clients run over a recording transport: every answer body the SDK
receives is kept whole (the rest is read if the SDK stops early, at an
error event or `[DONE]`), and `Bridge.check_bodies()` holds every streamed
answer to its protocol's grammar (`validators.py`), every error body to the
front door's error shape. A test that leaves a body unchecked fails.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx2
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from fakes.openai_upstream import FakeOpenAIUpstream, Script, ToolCallScript
from lmbridge.protocols.registry import upstream_codec
from support import RunningProxy, settings_for, start_proxy
from validators import (
    parse_sse,
    validate_anthropic_stream,
    validate_chat_stream,
    validate_gemini_stream,
    validate_responses_stream,
)

MODEL = "claude-sonnet-4-6"  # routed by settings_for's claude-* rule
TARGET = "fake-model"
# Front doors are named by the upstream API that speaks their protocol
# (Gemini's: none does).
DOORS = ("chat", "messages", "responses", "gemini")
UPSTREAM_APIS = ("chat", "messages", "responses")
UPSTREAM_PATHS = {
    "chat": "/v1/chat/completions",
    "messages": "/v1/messages",
    "responses": "/v1/responses",
}
PAIRS = [(door, api) for door in DOORS for api in UPSTREAM_APIS]

# A 1x1 transparent PNG.
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d00000000"
        "49454e44ae426082"
    )
).decode()
WEATHER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}

# ------------------------------------------------------- the test's own model


@dataclass(frozen=True)
class Call:
    """A tool call; `arguments` is JSON object text."""

    id: str
    name: str
    arguments: str

    def key(self) -> tuple[str, str, Any]:
        return self.id, self.name, json.loads(self.arguments or "{}")


@dataclass(frozen=True)
class Turn:
    """One message of a conversation, whatever the protocol."""

    role: str  # "user" | "assistant"
    text: str = ""
    calls: tuple[Call, ...] = ()
    results: tuple[tuple[str, str], ...] = ()  # (call id, output)
    image: str | None = None  # base64 PNG


@dataclass
class Ask:
    """A request, rendered by each front door in its own protocol."""

    turns: list[Turn]
    system: str | None = None
    tools: bool = False
    stop: list[str] | None = None
    max_tokens: int = 256
    reasoning: bool = False
    stream: bool = False


@dataclass
class Answer:
    """What the client got, read from the SDK's objects."""

    text: str = ""
    reasoning: str = ""
    calls: list[Call] = field(default_factory=list)
    finish: str | None = None  # finish_reason / stop_reason / status
    stop_sequence: str | None = None
    incomplete_reason: str | None = None
    usage: tuple[int, int] | None = None
    failed: bool = False  # the stream ended with the protocol's error event


def user(text: str, image: str | None = None) -> Turn:
    return Turn("user", text, image=image)


# --------------------------------------------------------- recording transport


@dataclass
class Capture:
    """One HTTP exchange as the SDK saw it."""

    stream_requested: bool
    status: int
    content_type: str
    body: bytearray = field(default_factory=bytearray)
    complete: bool = False
    checked: bool = False


class _RecordingStream(httpx2.AsyncByteStream):
    """Passes the body through to the SDK and keeps a copy of every byte."""

    def __init__(self, inner: httpx2.AsyncByteStream, capture: Capture) -> None:
        self._inner = inner
        self.capture = capture
        self._chunks = inner.__aiter__()
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            try:
                chunk = await self._chunks.__anext__()
            except StopAsyncIteration:
                self.capture.complete = True
                return
            self.capture.body += chunk
            yield chunk

    async def aclose(self) -> None:
        # An SDK stops reading at an error event or [DONE]; read what is
        # left so the whole body is validated, not just what the SDK used.
        if self._closed:  # closed by `drain` before the SDK got to it
            return
        self._closed = True
        try:
            async with asyncio.timeout(5):
                async for _ in self:
                    pass
        except (httpx2.HTTPError, TimeoutError):
            pass  # the body stays incomplete, and check_bodies says so
        finally:
            await self._inner.aclose()


class RecordingTransport(httpx2.AsyncBaseTransport):
    def __init__(self) -> None:
        self._inner = httpx2.AsyncHTTPTransport(verify=False)  # plain http; fast
        self.captures: list[Capture] = []
        self.streams: list[_RecordingStream] = []

    async def drain(self) -> None:
        """Read the rest of every body an SDK left open (google-genai
        raises at an error frame and leaves the response to the GC)."""
        for stream in self.streams:
            if not stream.capture.complete:
                await stream.aclose()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        sent = json.loads(request.content or b"{}")
        response = await self._inner.handle_async_request(request)
        sse = request.url.params.get("alt") == "sse"  # Gemini's stream
        capture = Capture(
            stream_requested=bool(sent.get("stream")) or sse,
            status=response.status_code,
            content_type=response.headers.get("content-type", ""),
        )
        self.captures.append(capture)
        assert isinstance(response.stream, httpx2.AsyncByteStream)
        recording = _RecordingStream(response.stream, capture)
        self.streams.append(recording)
        return httpx2.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=recording,
            extensions=response.extensions,
            request=request,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


# ------------------------------------------------------------------ front doors


class Door:
    """A front door driven by its official SDK."""

    name = ""
    END = ""
    TOOL = ""
    LENGTH = ""
    STOP: str | None = None
    errors: tuple[type[Exception], ...] = ()

    def __init__(self, url: str, transport: RecordingTransport) -> None:
        self.url = url
        self.http = httpx2.AsyncClient(transport=transport, timeout=10)

    async def ask(self, ask: Ask) -> Answer:
        raise NotImplementedError

    async def close(self) -> None:
        await self.http.aclose()

    # The answer body shapes, checked on every captured body.
    def validate_stream(self, raw: bytes) -> None:
        raise NotImplementedError

    def validate_error(self, body: dict[str, Any]) -> None:
        error = body["error"]
        assert isinstance(error["message"], str) and error["message"], body
        assert isinstance(error["type"], str), body

    def validate_object(self, body: dict[str, Any]) -> None:
        raise NotImplementedError


class ChatDoor(Door):
    """/v1/chat/completions through `openai` chat.completions."""

    name = "chat"
    END, TOOL, LENGTH, STOP = "stop", "tool_calls", "length", "stop"
    errors = (openai.APIError,)

    def __init__(self, url: str, transport: RecordingTransport) -> None:
        super().__init__(url, transport)
        self.client = openai.AsyncOpenAI(
            base_url=url + "/v1",
            api_key="sk-test",
            max_retries=0,
            http_client=self.http,
        )

    def request(self, ask: Ask) -> dict[str, Any]:
        messages: list[dict[str, Any]] = []
        if ask.system:
            messages.append({"role": "system", "content": ask.system})
        for turn in ask.turns:
            if turn.role == "assistant":
                message: dict[str, Any] = {
                    "role": "assistant",
                    "content": turn.text or None,
                }
                if turn.calls:
                    message["tool_calls"] = [
                        {
                            "id": c.id,
                            "type": "function",
                            "function": {"name": c.name, "arguments": c.arguments},
                        }
                        for c in turn.calls
                    ]
                messages.append(message)
                continue
            for call_id, output in turn.results:
                messages.append(
                    {"role": "tool", "tool_call_id": call_id, "content": output}
                )
            if turn.image:
                url = f"data:image/png;base64,{turn.image}"
                content: Any = [
                    {"type": "text", "text": turn.text},
                    {"type": "image_url", "image_url": {"url": url}},
                ]
                messages.append({"role": "user", "content": content})
            elif turn.text:
                messages.append({"role": "user", "content": turn.text})
        body: dict[str, Any] = {
            "model": MODEL,
            "messages": messages,
            "max_tokens": ask.max_tokens,
        }
        if ask.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "description": "The weather in a city",
                        "parameters": WEATHER_SCHEMA,
                    },
                }
            ]
        if ask.stop:
            body["stop"] = ask.stop
        if ask.reasoning:
            body["reasoning_effort"] = "low"
        return body

    async def ask(self, ask: Ask) -> Answer:
        body = self.request(ask)
        if not ask.stream:
            reply = await self.client.chat.completions.create(**body)
            choice = reply.choices[0]
            message = choice.message
            calls = [
                Call(c.id, c.function.name, c.function.arguments)
                for c in message.tool_calls or ()
                if c.type == "function"
            ]
            usage = reply.usage
            return Answer(
                text=message.content or "",
                reasoning=(message.model_extra or {}).get("reasoning_content") or "",
                calls=calls,
                finish=choice.finish_reason,
                usage=(usage.prompt_tokens, usage.completion_tokens) if usage else None,
            )
        answer = Answer()
        parts: dict[int, list[str]] = {}
        stream = await self.client.chat.completions.create(
            **body, stream=True, stream_options={"include_usage": True}
        )
        async for chunk in stream:
            if chunk.usage is not None:
                answer.usage = (
                    chunk.usage.prompt_tokens,
                    chunk.usage.completion_tokens,
                )
            if not chunk.choices:
                continue
            choice = chunk.choices[0]
            delta = choice.delta
            answer.text += delta.content or ""
            answer.reasoning += (delta.model_extra or {}).get("reasoning_content") or ""
            for call in delta.tool_calls or ():
                if call.index not in parts:
                    assert call.function is not None and call.id
                    parts[call.index] = [call.id, call.function.name or "", ""]
                if call.function is not None and call.function.arguments:
                    parts[call.index][2] += call.function.arguments
            if choice.finish_reason is not None:
                answer.finish = choice.finish_reason
        answer.calls = [Call(*parts[i]) for i in sorted(parts)]
        return answer

    def validate_stream(self, raw: bytes) -> None:
        validate_chat_stream(parse_sse(raw))

    def validate_object(self, body: dict[str, Any]) -> None:
        assert body["object"] == "chat.completion", body
        assert body["choices"][0]["message"]["role"] == "assistant", body


class MessagesDoor(Door):
    """/v1/messages through `anthropic` messages."""

    name = "messages"
    END, TOOL, LENGTH, STOP = "end_turn", "tool_use", "max_tokens", "stop_sequence"
    errors = (anthropic.APIError,)

    def __init__(self, url: str, transport: RecordingTransport) -> None:
        super().__init__(url, transport)
        self.client = anthropic.AsyncAnthropic(
            base_url=url, api_key="sk-ant-test", max_retries=0, http_client=self.http
        )

    def request(self, ask: Ask) -> dict[str, Any]:
        messages: list[dict[str, Any]] = []
        for turn in ask.turns:
            blocks: list[dict[str, Any]] = [
                {"type": "tool_result", "tool_use_id": call_id, "content": output}
                for call_id, output in turn.results
            ]
            if turn.text:
                blocks.append({"type": "text", "text": turn.text})
            if turn.image:
                source = {
                    "type": "base64",
                    "media_type": "image/png",
                    "data": turn.image,
                }
                blocks.append({"type": "image", "source": source})
            blocks += [
                {
                    "type": "tool_use",
                    "id": c.id,
                    "name": c.name,
                    "input": json.loads(c.arguments),
                }
                for c in turn.calls
            ]
            messages.append({"role": turn.role, "content": blocks})
        body: dict[str, Any] = {
            "model": MODEL,
            "messages": messages,
            "max_tokens": ask.max_tokens,
        }
        if ask.system:
            body["system"] = ask.system
        if ask.tools:
            body["tools"] = [
                {
                    "name": "get_weather",
                    "description": "The weather in a city",
                    "input_schema": WEATHER_SCHEMA,
                }
            ]
        if ask.stop:
            body["stop_sequences"] = ask.stop
        if ask.reasoning:
            body["thinking"] = {"type": "enabled", "budget_tokens": 1024}
            body["max_tokens"] = max(ask.max_tokens, 2048)
        return body

    async def ask(self, ask: Ask) -> Answer:
        body = self.request(ask)
        if ask.stream:
            async with self.client.messages.stream(**body) as stream:
                async for _ in stream:
                    pass
                message = await stream.get_final_message()
        else:
            message = await self.client.messages.create(**body)
        answer = Answer(
            finish=message.stop_reason,
            stop_sequence=message.stop_sequence,
            usage=(message.usage.input_tokens, message.usage.output_tokens),
        )
        for block in message.content:
            if block.type == "text":
                answer.text += block.text
            elif block.type == "thinking":
                answer.reasoning += block.thinking
            elif block.type == "tool_use":
                answer.calls.append(Call(block.id, block.name, json.dumps(block.input)))
        return answer

    def validate_stream(self, raw: bytes) -> None:
        validate_anthropic_stream(parse_sse(raw))

    def validate_error(self, body: dict[str, Any]) -> None:
        assert body["type"] == "error", body
        super().validate_error(body)

    def validate_object(self, body: dict[str, Any]) -> None:
        assert body["type"] == "message", body
        assert body["role"] == "assistant", body


class ResponsesDoor(Door):
    """/v1/responses through `openai` responses."""

    name = "responses"
    END, TOOL, LENGTH, STOP = "completed", "completed", "incomplete", None
    errors = (openai.APIError,)

    def __init__(self, url: str, transport: RecordingTransport) -> None:
        super().__init__(url, transport)
        self.client = openai.AsyncOpenAI(
            base_url=url + "/v1",
            api_key="sk-test",
            max_retries=0,
            http_client=self.http,
        )

    def request(self, ask: Ask) -> dict[str, Any]:
        assert not ask.stop, "the Responses API has no stop sequences"
        items: list[dict[str, Any]] = []
        for turn in ask.turns:
            if turn.role == "assistant":
                if turn.text:
                    items.append({"role": "assistant", "content": turn.text})
                items += [
                    {
                        "type": "function_call",
                        "call_id": c.id,
                        "name": c.name,
                        "arguments": c.arguments,
                    }
                    for c in turn.calls
                ]
                continue
            items += [
                {"type": "function_call_output", "call_id": call_id, "output": output}
                for call_id, output in turn.results
            ]
            if turn.image:
                content = [
                    {"type": "input_text", "text": turn.text},
                    {
                        "type": "input_image",
                        "image_url": f"data:image/png;base64,{turn.image}",
                        "detail": "auto",
                    },
                ]
                items.append({"role": "user", "content": content})
            elif turn.text:
                items.append({"role": "user", "content": turn.text})
        body: dict[str, Any] = {
            "model": MODEL,
            "input": items,
            "max_output_tokens": ask.max_tokens,
        }
        if ask.system:
            body["instructions"] = ask.system
        if ask.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "name": "get_weather",
                    "description": "The weather in a city",
                    "parameters": WEATHER_SCHEMA,
                    "strict": False,
                }
            ]
        if ask.reasoning:
            body["reasoning"] = {"effort": "low", "summary": "auto"}
        return body

    async def ask(self, ask: Ask) -> Answer:
        body = self.request(ask)
        if not ask.stream:
            return self.read(await self.client.responses.create(**body))
        text = ""
        stream = await self.client.responses.create(**body, stream=True)
        kinds: list[str] = []
        final: Any = None
        async for event in stream:
            kinds.append(event.type)
            if event.type == "response.output_text.delta":
                text += event.delta
            elif event.type in ("response.completed", "response.incomplete"):
                final = event.response
        if "error" in kinds or "response.failed" in kinds:
            assert kinds[-2:] == ["error", "response.failed"], kinds
            return Answer(failed=True, text=text)
        assert final is not None, kinds
        answer = self.read(final)
        assert answer.text == text, "the deltas and the final response differ"
        return answer

    @staticmethod
    def read(response: Any) -> Answer:
        answer = Answer(finish=response.status)
        if response.incomplete_details is not None:
            answer.incomplete_reason = response.incomplete_details.reason
        if response.usage is not None:
            answer.usage = (response.usage.input_tokens, response.usage.output_tokens)
        for item in response.output:
            if item.type == "message":
                answer.text += "".join(
                    c.text for c in item.content if c.type == "output_text"
                )
            elif item.type == "reasoning":
                answer.reasoning += "".join(s.text for s in item.summary)
            elif item.type == "function_call":
                answer.calls.append(Call(item.call_id, item.name, item.arguments))
        return answer

    def validate_stream(self, raw: bytes) -> None:
        events = parse_sse(raw)
        for name, data in events:
            assert name == data.get("type"), f"event {name!r} carries {data!r}"
        validate_responses_stream([data for _, data in events])

    def validate_object(self, body: dict[str, Any]) -> None:
        assert body["object"] == "response", body
        assert body["status"] in ("completed", "incomplete"), body


class GeminiDoor(Door):
    """/v1beta/models/{model}:generateContent through `google-genai`."""

    name = "gemini"
    END, TOOL, LENGTH, STOP = "STOP", "STOP", "MAX_TOKENS", "STOP"
    errors = (genai_errors.APIError,)

    def __init__(self, url: str, transport: RecordingTransport) -> None:
        super().__init__(url, transport)
        self.transport = transport
        self.client = genai.Client(
            api_key="gemini-test",
            vertexai=False,
            http_options=genai_types.HttpOptions(
                base_url=url,
                retry_options=genai_types.HttpRetryOptions(attempts=1),
                httpx_async_client=self.http,
            ),
        ).aio

    def request(
        self, ask: Ask
    ) -> tuple[list[genai_types.Content], genai_types.GenerateContentConfig]:
        contents: list[genai_types.Content] = []
        names: dict[str, str] = {}
        for turn in ask.turns:
            parts: list[genai_types.Part] = []
            for call_id, output in turn.results:
                response = genai_types.FunctionResponse(
                    id=call_id, name=names[call_id], response={"result": output}
                )
                parts.append(genai_types.Part(function_response=response))
            if turn.text:
                parts.append(genai_types.Part(text=turn.text))
            if turn.image:
                data = base64.b64decode(turn.image)
                parts.append(
                    genai_types.Part.from_bytes(data=data, mime_type="image/png")
                )
            for c in turn.calls:
                names[c.id] = c.name
                call = genai_types.FunctionCall(
                    id=c.id, name=c.name, args=json.loads(c.arguments)
                )
                parts.append(genai_types.Part(function_call=call))
            role = "model" if turn.role == "assistant" else "user"
            contents.append(genai_types.Content(role=role, parts=parts))
        config = genai_types.GenerateContentConfig(
            max_output_tokens=ask.max_tokens,
            system_instruction=ask.system,
            stop_sequences=ask.stop,
        )
        if ask.tools:
            weather = genai_types.FunctionDeclaration(
                name="get_weather",
                description="The weather in a city",
                parameters_json_schema=WEATHER_SCHEMA,
            )
            config.tools = [genai_types.Tool(function_declarations=[weather])]
        if ask.reasoning:
            config.thinking_config = genai_types.ThinkingConfig(
                include_thoughts=True, thinking_budget=1024
            )
        return contents, config

    async def ask(self, ask: Ask) -> Answer:
        contents, config = self.request(ask)
        models = self.client.models
        if not ask.stream:
            reply = await models.generate_content(
                model=MODEL, contents=contents, config=config
            )
            return self.read([reply])
        chunks: list[genai_types.GenerateContentResponse] = []
        try:
            async for chunk in await models.generate_content_stream(
                model=MODEL, contents=contents, config=config
            ):
                chunks.append(chunk)
        except genai_errors.APIError:
            await self.transport.drain()
            raise
        return self.read(chunks)

    @staticmethod
    def read(chunks: list[genai_types.GenerateContentResponse]) -> Answer:
        answer = Answer()
        for chunk in chunks:
            assert chunk.candidates is not None and len(chunk.candidates) == 1
            candidate = chunk.candidates[0]
            assert candidate.content is not None, chunk
            for part in candidate.content.parts or ():
                if part.function_call is not None:
                    call = part.function_call
                    assert call.id and call.name, call
                    arguments = json.dumps(call.args or {})
                    answer.calls.append(Call(call.id, call.name, arguments))
                elif part.thought:
                    answer.reasoning += part.text or ""
                else:
                    answer.text += part.text or ""
            if candidate.finish_reason is not None:
                answer.finish = candidate.finish_reason.value
            usage = chunk.usage_metadata
            if usage is not None and usage.prompt_token_count is not None:
                output = (usage.candidates_token_count or 0) + (
                    usage.thoughts_token_count or 0
                )
                answer.usage = (usage.prompt_token_count, output)
        return answer

    def validate_stream(self, raw: bytes) -> None:
        validate_gemini_stream(raw)

    def validate_error(self, body: dict[str, Any]) -> None:
        error = body["error"]
        assert set(error) == {"code", "message", "status"}, body
        assert isinstance(error["message"], str) and error["message"], body
        assert isinstance(error["code"], int) and error["status"].isupper(), body

    def validate_object(self, body: dict[str, Any]) -> None:
        (candidate,) = body["candidates"]
        assert candidate["content"]["role"] == "model", body
        assert candidate["finishReason"], body
        assert body["usageMetadata"]["promptTokenCount"] >= 0, body


DOOR_TYPES: dict[str, type[Door]] = {
    "chat": ChatDoor,
    "messages": MessagesDoor,
    "responses": ResponsesDoor,
    "gemini": GeminiDoor,
}


# ---------------------------------------------------------------- the harness


@dataclass
class Bridge:
    """One front door x upstream API pair, running."""

    door: Door
    api: str
    fake: FakeOpenAIUpstream
    proxy: RunningProxy
    transport: RecordingTransport

    @property
    def relayed(self) -> bool:
        """Same API on both sides: the proxy relays the bytes unchanged."""
        return self.door.name == self.api

    def sent(self, n: int = -1) -> dict[str, Any]:
        """The n-th request body the upstream received (the last by default)."""
        seen = self.fake.requests[n]
        assert seen.path == UPSTREAM_PATHS[self.api], seen.path
        return seen.body

    def check_bodies(self, streams: int) -> None:
        """Validate every answer body received so far; `streams` were SSE."""
        validated = 0
        for capture in self.transport.captures:
            if capture.checked:
                continue
            capture.checked = True
            assert capture.complete, "the answer body was cut off"
            raw = bytes(capture.body)
            if capture.status >= 400:
                assert capture.content_type.startswith("application/json"), capture
                self.door.validate_error(json.loads(raw))
            elif capture.stream_requested:
                assert capture.content_type.startswith("text/event-stream"), capture
                self.door.validate_stream(raw)
                validated += 1
            else:
                assert capture.content_type.startswith("application/json"), capture
                self.door.validate_object(json.loads(raw))
        assert validated == streams, f"{validated} streams validated, not {streams}"


@contextlib.asynccontextmanager
async def open_bridge(
    door_name: str, api: str, fake_upstream: FakeOpenAIUpstream
) -> AsyncIterator[Bridge]:
    """One pair running; every answer body it got must have been checked."""
    proxy = await start_proxy(
        settings_for(fake_upstream.url, upstream_extra=f'api = "{api}"')
    )
    transport = RecordingTransport()
    door = DOOR_TYPES[door_name](proxy.url, transport)
    running = Bridge(door, api, fake_upstream, proxy, transport)
    try:
        yield running
    finally:
        await door.close()
        await proxy.server.stop()
    unchecked = [c for c in transport.captures if not c.checked]
    assert not unchecked, "the test did not validate every answer body"


@pytest.fixture(params=PAIRS, ids=[f"{door}-via-{api}" for door, api in PAIRS])
async def bridge(
    request: pytest.FixtureRequest, fake_upstream: FakeOpenAIUpstream
) -> AsyncIterator[Bridge]:
    door_name, api = request.param
    async with open_bridge(door_name, api, fake_upstream) as running:
        yield running


STREAMING = pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])


# ------------------------------------------------ the upstream's view, per API


def _texts(content: Any, kinds: tuple[str, ...]) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content if p.get("type") in kinds)


def upstream_transcript(api: str, body: dict[str, Any]) -> tuple[str, list[Any]]:
    """The system text and the (role, text) turns as the upstream got them."""
    system: list[str] = []
    turns: list[tuple[str, str]] = []
    if api == "chat":
        for m in body["messages"]:
            text = _texts(m.get("content"), ("text",))
            if m["role"] in ("system", "developer"):
                system.append(text)
            elif m["role"] in ("user", "assistant") and text:
                turns.append((m["role"], text))
    elif api == "messages":
        system.append(_texts(body.get("system"), ("text",)))
        for m in body["messages"]:
            text = _texts(m["content"], ("text",))
            if text:
                turns.append((m["role"], text))
    else:
        system.append(body.get("instructions") or "")
        for item in body["input"]:
            if item.get("type", "message") != "message":
                continue
            text = _texts(item["content"], ("input_text", "output_text"))
            if item["role"] in ("system", "developer"):
                system.append(text)
            elif text:
                turns.append((item["role"], text))
    return "\n\n".join(s for s in system if s), turns


def upstream_calls(api: str, body: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """The assistant's tool calls in the history, as (id, name, arguments)."""
    if api == "chat":
        return [
            (c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
            for m in body["messages"]
            for c in m.get("tool_calls") or ()
        ]
    if api == "messages":
        return [
            (b["id"], b["name"], b["input"])
            for m in body["messages"]
            if isinstance(m["content"], list)
            for b in m["content"]
            if b["type"] == "tool_use"
        ]
    return [
        (i["call_id"], i["name"], json.loads(i["arguments"]))
        for i in body["input"]
        if i.get("type") == "function_call"
    ]


def upstream_results(api: str, body: dict[str, Any]) -> list[tuple[str, str]]:
    """The tool results sent, as (call id, output text)."""
    if api == "chat":
        return [
            (m["tool_call_id"], _texts(m["content"], ("text",)))
            for m in body["messages"]
            if m["role"] == "tool"
        ]
    if api == "messages":
        return [
            (b["tool_use_id"], _texts(b.get("content"), ("text",)))
            for m in body["messages"]
            if isinstance(m["content"], list)
            for b in m["content"]
            if b["type"] == "tool_result"
        ]
    return [
        (i["call_id"], _texts(i["output"], ("input_text",)))
        for i in body["input"]
        if i.get("type") == "function_call_output"
    ]


def upstream_tools(api: str, body: dict[str, Any]) -> list[tuple[str, Any]]:
    """The tools offered, as (name, JSON schema)."""
    if api == "chat":
        return [
            (t["function"]["name"], t["function"]["parameters"]) for t in body["tools"]
        ]
    if api == "messages":
        return [(t["name"], t["input_schema"]) for t in body["tools"]]
    return [(t["name"], t["parameters"]) for t in body["tools"]]


def upstream_settings(api: str, body: dict[str, Any]) -> tuple[Any, bool]:
    """The output token limit, and whether reasoning was asked for."""
    if api == "chat":
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        return limit, bool(body.get("reasoning_effort"))
    if api == "messages":
        thinking = (body.get("thinking") or {}).get("type") == "enabled"
        return body["max_tokens"], thinking
    effort = (body.get("reasoning") or {}).get("effort")
    return body.get("max_output_tokens"), bool(effort)


def upstream_images(api: str, body: dict[str, Any]) -> list[str]:
    """The base64 data of every image in the request."""
    urls: list[str] = []
    if api == "chat":
        for m in body["messages"]:
            if isinstance(m.get("content"), list):
                urls += [
                    p["image_url"]["url"]
                    for p in m["content"]
                    if p["type"] == "image_url"
                ]
    elif api == "messages":
        for m in body["messages"]:
            for b in m["content"] if isinstance(m["content"], list) else ():
                if b["type"] == "image":
                    assert b["source"]["type"] == "base64", b
                    assert b["source"]["media_type"] == "image/png", b
                    urls.append("data:image/png;base64," + b["source"]["data"])
    else:
        for item in body["input"]:
            if isinstance(item.get("content"), list):
                urls += [
                    p["image_url"]
                    for p in item["content"]
                    if p["type"] == "input_image"
                ]
    prefix = "data:image/png;base64,"
    assert all(u.startswith(prefix) for u in urls), urls
    return [u.removeprefix(prefix) for u in urls]


# ------------------------------------------------------------------ scenarios


@STREAMING
async def test_plain_text(bridge: Bridge, stream: bool) -> None:
    bridge.fake.script = Script(text="Hello from the fake upstream.")
    answer = await bridge.door.ask(Ask([user("Hi")], stream=stream))
    bridge.check_bodies(streams=int(stream))
    assert answer.text == "Hello from the fake upstream."
    assert answer.finish == bridge.door.END
    assert answer.usage == (11, 7)
    sent = bridge.sent()
    assert sent["model"] == TARGET
    assert upstream_transcript(bridge.api, sent) == ("", [("user", "Hi")])
    record = await bridge.proxy.record()
    assert (record.status, record.upstream_api) == (
        200,
        upstream_codec(bridge.api).name,
    )


async def test_multi_turn_with_system_prompt(bridge: Bridge) -> None:
    turns = [
        user("What is 2 + 2?"),
        Turn("assistant", "4."),
        user("And times 3?"),
    ]
    bridge.fake.script = Script(text="12.")
    answer = await bridge.door.ask(Ask(turns, system="You are terse."))
    bridge.check_bodies(streams=0)
    assert answer.text == "12."
    system, seen = upstream_transcript(bridge.api, bridge.sent())
    assert system == "You are terse."
    assert seen == [
        ("user", "What is 2 + 2?"),
        ("assistant", "4."),
        ("user", "And times 3?"),
    ]


async def _tool_round_trip(bridge: Bridge, stream: bool, calls: list[Call]) -> None:
    bridge.fake.script = Script(
        text="",
        tool_calls=[ToolCallScript(c.name, c.arguments, id=c.id) for c in calls],
    )
    question = user("Weather in Paris and Tokyo?")
    first = await bridge.door.ask(Ask([question], tools=True, stream=stream))
    assert [c.key() for c in first.calls] == [c.key() for c in calls]
    assert first.finish == bridge.door.TOOL
    assert first.text == ""

    results = tuple((c.id, f"{json.loads(c.arguments)['city']}: sunny") for c in calls)
    bridge.fake.script = Script(text="Sunny in both.")
    turns = [question, Turn("assistant", calls=tuple(first.calls))]
    turns.append(Turn("user", results=results))
    second = await bridge.door.ask(Ask(turns, tools=True, stream=stream))
    bridge.check_bodies(streams=2 * int(stream))
    assert second.text == "Sunny in both."
    assert second.finish == bridge.door.END
    sent = bridge.sent()
    assert upstream_tools(bridge.api, bridge.sent(-2)) == [
        ("get_weather", WEATHER_SCHEMA)
    ]
    assert upstream_calls(bridge.api, sent) == [c.key() for c in calls]
    assert upstream_results(bridge.api, sent) == list(results)


@STREAMING
async def test_tool_call_round_trip(bridge: Bridge, stream: bool) -> None:
    calls = [Call("call_w1", "get_weather", '{"city": "Paris"}')]
    await _tool_round_trip(bridge, stream, calls)


@STREAMING
async def test_parallel_tool_calls_keep_order_and_ids(
    bridge: Bridge, stream: bool
) -> None:
    calls = [
        Call("call_b2", "get_weather", '{"city": "Tokyo"}'),
        Call("call_a1", "get_weather", '{"city": "Paris"}'),
    ]
    await _tool_round_trip(bridge, stream, calls)


async def test_image_reaches_upstream(bridge: Bridge) -> None:
    bridge.fake.script = Script(text="A single pixel.")
    answer = await bridge.door.ask(Ask([user("What is this?", image=PNG)]))
    bridge.check_bodies(streams=0)
    assert answer.text == "A single pixel."
    sent = bridge.sent()
    assert upstream_images(bridge.api, sent) == [PNG]
    assert upstream_transcript(bridge.api, sent)[1] == [("user", "What is this?")]


@STREAMING
async def test_reasoning_reaches_client(bridge: Bridge, stream: bool) -> None:
    bridge.fake.script = Script(
        reasoning="The user wants a sum. 2 + 2 is 4.", text="It is 4."
    )
    ask = Ask([user("2 + 2?")], reasoning=True, max_tokens=4096, stream=stream)
    answer = await bridge.door.ask(ask)
    bridge.check_bodies(streams=int(stream))
    assert answer.reasoning == "The user wants a sum. 2 + 2 is 4."
    assert answer.text == "It is 4."
    assert answer.finish == bridge.door.END
    assert upstream_settings(bridge.api, bridge.sent()) == (4096, True)


@STREAMING
async def test_stop_sequence_ends_the_answer(bridge: Bridge, stream: bool) -> None:
    if bridge.door.STOP is None:
        pytest.skip("N/A: the Responses API has no stop sequences")
    bridge.fake.script = Script(text="Counting: one, two, END three, four.")
    answer = await bridge.door.ask(
        Ask([user("Count")], stop=["END", "never"], stream=stream)
    )
    bridge.check_bodies(streams=int(stream))
    assert answer.text == "Counting: one, two, "
    assert answer.finish == bridge.door.STOP
    if bridge.door.name == "messages":
        assert answer.stop_sequence == "END"


@STREAMING
async def test_max_tokens_cut(bridge: Bridge, stream: bool) -> None:
    bridge.fake.script = Script(text="This answer runs out", finish_reason="length")
    answer = await bridge.door.ask(Ask([user("Go on")], max_tokens=4, stream=stream))
    bridge.check_bodies(streams=int(stream))
    assert answer.text == "This answer runs out"
    assert answer.finish == bridge.door.LENGTH
    if bridge.door.name == "responses":
        assert answer.incomplete_reason == "max_output_tokens"
    # The Responses API takes no limit below 16 (a documented translation).
    translated_to_responses = bridge.api == "responses" and not bridge.relayed
    limit = 16 if translated_to_responses else 4
    assert upstream_settings(bridge.api, bridge.sent()) == (limit, False)


@STREAMING
async def test_upstream_error_before_first_byte(bridge: Bridge, stream: bool) -> None:
    bridge.fake.script = Script(status=500, error_message="the GPU caught fire")
    with pytest.raises(bridge.door.errors) as caught:
        await bridge.door.ask(Ask([user("Hi")], stream=stream))
    error = caught.value
    if isinstance(error, genai_errors.APIError):
        status, body = error.code, error.details
    else:
        assert isinstance(error, openai.APIStatusError | anthropic.APIStatusError)
        status, body = error.status_code, error.response.json()
    assert status >= 500
    bridge.door.validate_error(body)
    assert "the GPU caught fire" in body["error"]["message"]
    bridge.check_bodies(streams=0)
    assert (await bridge.proxy.record()).status == status


async def test_upstream_dropped_mid_stream(bridge: Bridge) -> None:
    bridge.fake.script = Script(
        text="one two three four five six seven", close_after_chunks=5
    )
    try:
        answer = await bridge.door.ask(Ask([user("Hi")], stream=True))
    except bridge.door.errors:
        pass  # the SDK raised: the client knows the answer broke off
    else:
        assert answer.failed, "the stream ended as if the answer were complete"
        assert answer.text and "one two three four five six seven".startswith(
            answer.text
        )
    bridge.check_bodies(streams=1)
    assert (await bridge.proxy.record()).error


async def test_relayed_responses_stream_records_usage(
    fake_upstream: FakeOpenAIUpstream,
) -> None:
    settings = settings_for(fake_upstream.url, upstream_extra='api = "responses"')
    proxy = await start_proxy(settings)
    try:
        async with openai.AsyncOpenAI(
            base_url=proxy.url + "/v1", api_key="k", max_retries=0
        ) as client:
            stream = await client.responses.create(model="m", input="hi", stream=True)
            async for _ in stream:
                pass
        record = await proxy.record()
    finally:
        await proxy.server.stop()
    assert (record.tokens_in, record.tokens_out) == (11, 7)
