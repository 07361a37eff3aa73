"""Claude Code's protocol through LM Bridge to an OpenAI Chat upstream.

The official `anthropic` SDK (sync and async, streaming helpers included)
drives the proxy; the fake upstream speaks Chat Completions behind it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakes.openai_upstream import FakeOpenAIUpstream, Script, ToolCallScript
from support import RunningProxy, settings_for, start_proxy
from validators import parse_sse, validate_anthropic_stream

TOOLS: list[anthropic.types.ToolParam] = [
    {
        "name": "read_file",
        "description": "Read a file",
        "input_schema": {
            "type": "object",
            "properties": {"path": {"type": "string"}},
            "required": ["path"],
        },
    }
]
HELLO: list[anthropic.types.MessageParam] = [{"role": "user", "content": "Hello"}]


@pytest.fixture
async def claude_proxy(
    fake_upstream: FakeOpenAIUpstream,
) -> AsyncIterator[RunningProxy]:
    settings = settings_for(
        fake_upstream.url,
        ping_interval=0.2,
        routes='[[route]]\nmodel = "big-*"\nupstream = "fake"\nmax_tokens_limit = 1000\n',
    )
    running = await start_proxy(settings)
    yield running
    await running.server.stop()


def async_client(proxy: RunningProxy, **kw: Any) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        base_url=proxy.url, api_key="sk-ant-test", max_retries=0, **kw
    )


async def raw_stream(proxy: RunningProxy, body: dict[str, Any]) -> list[Any]:
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            proxy.url + "/v1/messages?beta=true", json={**body, "stream": True}
        ) as r,
    ):
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/event-stream")
        events = parse_sse(await r.read())
    validate_anthropic_stream(events)
    return events


async def test_text_answer_non_streaming(
    claude_proxy: RunningProxy, fake_upstream: FakeOpenAIUpstream
) -> None:
    async with async_client(claude_proxy) as client:
        message = await client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=100,
            system=[
                {
                    "type": "text",
                    "text": "Be brief.",
                    "cache_control": {"type": "ephemeral"},
                }
            ],
            messages=HELLO,
            metadata={"user_id": "u"},
        )
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hello from the fake upstream."
    assert message.model == "claude-sonnet-4-6"
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (11, 7)
    sent = fake_upstream.requests[-1].body
    assert sent["model"] == "fake-model"
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    assert "metadata" not in sent
    # A whole answer for a client that wants one: nothing to stream.
    assert sent["stream"] is False


async def test_sync_client(claude_proxy: RunningProxy) -> None:
    def call() -> str:
        with anthropic.Anthropic(
            base_url=claude_proxy.url, api_key="k", max_retries=0
        ) as client:
            message = client.messages.create(
                model="claude-sonnet-4-6",
                max_tokens=50,
                messages=HELLO,
            )
            with client.messages.stream(
                model="claude-sonnet-4-6",
                max_tokens=50,
                messages=HELLO,
            ) as stream:
                streamed = "".join(stream.text_stream)
            block = message.content[0]
            assert block.type == "text"
            return block.text + "|" + streamed

    text = await asyncio.to_thread(call)
    assert text == "Hello from the fake upstream.|Hello from the fake upstream."


async def test_stream_helper_final_message(claude_proxy: RunningProxy) -> None:
    async with (
        async_client(claude_proxy) as client,
        client.messages.stream(
            model="claude-haiku-4-5",
            max_tokens=50,
            messages=HELLO,
        ) as stream,
    ):
        texts = [t async for t in stream.text_stream]
        final = await stream.get_final_message()
    assert "".join(texts) == "Hello from the fake upstream."
    assert final.content[0].type == "text"
    assert final.usage.output_tokens == 7


async def test_tool_use_round_trip(
    claude_proxy: RunningProxy, fake_upstream: FakeOpenAIUpstream
) -> None:
    fake_upstream.script = Script(
        text="",
        tool_calls=[
            ToolCallScript("read_file", '{"path": "a.py"}', id="call_a"),
            ToolCallScript("read_file", '{"path": "b.py"}', id="call_b"),
        ],
    )
    async with async_client(claude_proxy) as client:
        first = await client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=100,
            tools=TOOLS,
            messages=HELLO,
        )
        assert first.stop_reason == "tool_use"
        uses = [b for b in first.content if b.type == "tool_use"]
        assert [(u.id, u.input) for u in uses] == [
            ("call_a", {"path": "a.py"}),
            ("call_b", {"path": "b.py"}),
        ]
        fake_upstream.script = Script(text="Both files read.")
        second = await client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=100,
            tools=TOOLS,
            messages=[
                *HELLO,
                {"role": "assistant", "content": first.content},
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "call_a",
                            "content": "A",
                        },
                        {
                            "type": "tool_result",
                            "tool_use_id": "call_b",
                            "content": [{"type": "text", "text": "no such file"}],
                            "is_error": True,
                        },
                    ],
                },
            ],
        )
    assert second.content[0].type == "text"
    sent = fake_upstream.requests[-1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "tool"]
    assert [c["id"] for c in sent[1]["tool_calls"]] == ["call_a", "call_b"]
    assert sent[2] == {"role": "tool", "tool_call_id": "call_a", "content": "A"}
    assert sent[3]["content"].startswith("Error")
    tools = fake_upstream.requests[-1].body["tools"]
    assert tools[0]["function"]["name"] == "read_file"


async def test_streaming_tool_use_follows_the_grammar(
    claude_proxy: RunningProxy, fake_upstream: FakeOpenAIUpstream
) -> None:
    fake_upstream.script = Script(
        text="Let me look.",
        reasoning="I should read it.",
        tool_calls=[ToolCallScript("read_file", '{"path": "a.py"}', id="call_1")],
    )
    events = await raw_stream(
        claude_proxy,
        {
            "model": "claude-opus-4-7",
            "max_tokens": 100,
            "tools": TOOLS,
            "messages": HELLO,
        },
    )
    starts = [
        d["content_block"]["type"] for n, d in events if n == "content_block_start"
    ]
    assert starts == ["thinking", "text", "tool_use"]
    delta = next(d for n, d in events if n == "message_delta")
    assert delta["delta"]["stop_reason"] == "tool_use"
    assert delta["usage"]["output_tokens"] == 7


async def test_text_tool_calls_are_repaired(
    claude_proxy: RunningProxy, fake_upstream: FakeOpenAIUpstream
) -> None:
    fake_upstream.script = Script(
        text='Reading. <tool_call>{"name": "read_file", "arguments": {"path": "x.py"}}</tool_call>'
    )
    async with async_client(claude_proxy) as client:
        message = await client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=100,
            tools=TOOLS,
            messages=HELLO,
        )
    assert message.stop_reason == "tool_use"
    use = next(b for b in message.content if b.type == "tool_use")
    assert use.name == "read_file"
    assert use.input == {"path": "x.py"}
    events = await raw_stream(
        claude_proxy,
        {
            "model": "claude-sonnet-4-6",
            "max_tokens": 100,
            "tools": TOOLS,
            "messages": HELLO,
        },
    )
    assert any(
        d["content_block"]["type"] == "tool_use"
        for n, d in events
        if n == "content_block_start"
    )


async def test_stop_sequence_is_reported(
    claude_proxy: RunningProxy, fake_upstream: FakeOpenAIUpstream
) -> None:
    fake_upstream.script = Script(text="one two STOP three")
    async with async_client(claude_proxy) as client:
        message = await client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=100,
            stop_sequences=["STOP"],
            messages=HELLO,
        )
    assert message.stop_reason == "stop_sequence"
    assert message.stop_sequence == "STOP"
    assert message.content[0].type == "text"
    assert message.content[0].text == "one two "
    assert "stop" not in fake_upstream.requests[-1].body


async def test_max_tokens_cut_and_clamp(
    claude_proxy: RunningProxy, fake_upstream: FakeOpenAIUpstream
) -> None:
    fake_upstream.script = Script(text="cut", finish_reason="length")
    async with async_client(claude_proxy) as client:
        message = await client.messages.create(
            model="big-model",
            max_tokens=20000,
            messages=HELLO,
        )
    assert message.stop_reason == "max_tokens"
    assert fake_upstream.requests[-1].body["max_tokens"] == 1000


async def test_thinking_maps_to_reasoning_effort(
    claude_proxy: RunningProxy, fake_upstream: FakeOpenAIUpstream
) -> None:
    async with async_client(claude_proxy) as client:
        await client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=20000,
            thinking={"type": "enabled", "budget_tokens": 10000},
            messages=HELLO,
        )
    assert fake_upstream.requests[-1].body["reasoning_effort"] == "medium"


async def test_pings_during_upstream_silence(
    claude_proxy: RunningProxy, fake_upstream: FakeOpenAIUpstream
) -> None:
    fake_upstream.script = Script(text="slow words", chunk_delay=0.5)
    events = await raw_stream(
        claude_proxy,
        {"model": "claude-sonnet-4-6", "max_tokens": 10, "messages": HELLO},
    )
    assert any(name == "ping" for name, _ in events)


async def test_upstream_drop_mid_stream_ends_in_error_event(
    claude_proxy: RunningProxy, fake_upstream: FakeOpenAIUpstream
) -> None:
    fake_upstream.script = Script(text="a b c d e", close_after_chunks=3)
    events = await raw_stream(
        claude_proxy,
        {"model": "claude-sonnet-4-6", "max_tokens": 10, "messages": HELLO},
    )
    assert events[-1][0] == "error"
    assert events[-1][1]["error"]["type"] == "api_error"


@pytest.mark.parametrize(
    ("status", "error_class", "wire_type"),
    [
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (404, anthropic.NotFoundError, "not_found_error"),
    ],
)
async def test_upstream_errors_in_anthropic_shape(
    claude_proxy: RunningProxy,
    fake_upstream: FakeOpenAIUpstream,
    status: int,
    error_class: type[Exception],
    wire_type: str,
) -> None:
    fake_upstream.script = Script(status=status, error_message="nope")
    async with async_client(claude_proxy) as client:
        with pytest.raises(error_class) as info:
            await client.messages.create(
                model="claude-sonnet-4-6",
                max_tokens=10,
                messages=HELLO,
            )
    body = info.value.body  # type: ignore[attr-defined]
    assert body["type"] == "error"
    assert body["error"]["type"] == wire_type


async def test_context_overflow_says_prompt_is_too_long(
    claude_proxy: RunningProxy, fake_upstream: FakeOpenAIUpstream
) -> None:
    # vLLM's (and llama-cpp-python's) words: N counts the completion too.
    fake_upstream.script = Script(
        status=400,
        error_message="This model's maximum context length is 8192 tokens."
        " However, you requested 12131 tokens (12031 in the messages, 100 in the"
        " completion). Please reduce the length of the messages or completion.",
    )
    async with async_client(claude_proxy) as client:
        with pytest.raises(anthropic.BadRequestError) as info:
            await client.messages.create(
                model="claude-sonnet-4-6",
                max_tokens=10,
                messages=HELLO,
            )
    error = info.value.body["error"]  # type: ignore[index]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith(
        "prompt is too long: 12031 tokens > 8192 maximum"
    )


@pytest.mark.parametrize(
    "headers",
    [
        {"x-api-key": "k"},
        {"Authorization": "Bearer k"},
        {
            "anthropic-version": "2023-06-01",
            "anthropic-beta": "fine-grained-tool-streaming-2025-05-14",
        },
        {},
    ],
)
async def test_keys_and_version_headers_are_optional(
    claude_proxy: RunningProxy, headers: dict[str, str]
) -> None:
    body = {"model": "claude-sonnet-4-6", "max_tokens": 10, "messages": HELLO}
    async with (
        aiohttp.ClientSession() as s,
        s.post(claude_proxy.url + "/v1/messages", json=body, headers=headers) as r,
    ):
        assert r.status == 200
        assert (await r.json())["type"] == "message"


async def test_count_tokens_is_local(
    claude_proxy: RunningProxy, fake_upstream: FakeOpenAIUpstream
) -> None:
    async with async_client(claude_proxy) as client:
        small = await client.messages.count_tokens(
            model="claude-sonnet-4-6",
            messages=HELLO,
        )
        large = await client.messages.count_tokens(
            model="claude-sonnet-4-6",
            tools=TOOLS,
            system="You are a careful engineer. " * 50,
            messages=HELLO,
        )
    assert 0 < small.input_tokens < large.input_tokens
    assert not fake_upstream.requests


async def test_models_list_shows_claude_aliases(claude_proxy: RunningProxy) -> None:
    async with async_client(claude_proxy) as client:
        ids = [m.id async for m in client.models.list()]
    assert {"claude-sonnet-4-6", "claude-opus-4-7", "claude-haiku-4-5"} <= set(ids)


async def test_bad_requests_are_400_in_anthropic_shape(
    claude_proxy: RunningProxy, fake_upstream: FakeOpenAIUpstream
) -> None:
    async with aiohttp.ClientSession() as s:
        for body in (
            b"{",
            b'{"model": "m"}',
            b'{"model": "m", "max_tokens": 1, "messages": 3}',
        ):
            async with s.post(
                claude_proxy.url + "/v1/messages",
                data=body,
                headers={"Content-Type": "application/json"},
            ) as r:
                assert r.status == 400
                payload = await r.json()
            assert payload["type"] == "error"
            assert payload["error"]["type"] == "invalid_request_error"
    assert not fake_upstream.requests


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)
block = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            ["text", "image", "tool_use", "tool_result", "thinking", "x"]
        )
    },
    optional={
        "text": json_values,
        "source": json_values,
        "id": json_values,
        "input": json_values,
        "content": json_values,
        "tool_use_id": json_values,
    },
)
bodies = st.fixed_dictionaries(
    {},
    optional={
        "model": st.just("claude-sonnet-4-6") | json_values,
        "max_tokens": st.integers(-5, 100) | json_values,
        "messages": st.lists(
            st.fixed_dictionaries(
                {"role": st.sampled_from(["user", "assistant", "system", "x"])},
                optional={
                    "content": st.text(max_size=10) | st.lists(block, max_size=3)
                },
            ),
            max_size=3,
        )
        | json_values,
        "system": json_values,
        "tools": json_values,
        "tool_choice": json_values,
        "thinking": json_values,
        "stop_sequences": json_values,
    },
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(body=bodies.map(lambda b: json.dumps(b).encode()) | st.binary(max_size=64))
async def test_any_body_gets_answer_or_anthropic_400(
    claude_proxy: RunningProxy, body: bytes
) -> None:
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            claude_proxy.url + "/v1/messages",
            data=body,
            headers={"Content-Type": "application/json"},
        ) as r,
    ):
        payload = await r.json(content_type=None)
    assert r.status in (200, 400), (r.status, payload)
    if r.status == 400:
        assert payload["type"] == "error"
        assert payload["error"]["type"] == "invalid_request_error"
    else:
        assert payload["type"] == "message"


async def test_usage_is_estimated_when_the_upstream_sends_none(
    claude_proxy: RunningProxy, fake_upstream: FakeOpenAIUpstream
) -> None:
    fake_upstream.script = Script(
        text="one two three STOP four", prompt_tokens=0, completion_tokens=0
    )
    events = await raw_stream(
        claude_proxy,
        {
            "model": "claude-sonnet-4-6",
            "max_tokens": 100,
            "messages": HELLO,
            "system": "Be brief. " * 40,
        },
    )
    start = events[0][1]["message"]["usage"]["input_tokens"]
    assert start > 40
    delta = next(d for n, d in events if n == "message_delta")
    assert delta["usage"]["output_tokens"] > 0
    async with async_client(claude_proxy) as client:
        message = await client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=100,
            stop_sequences=["STOP"],
            messages=HELLO,
        )
    assert message.stop_reason == "stop_sequence"
    assert message.usage.output_tokens > 0
    assert message.usage.input_tokens > 0
