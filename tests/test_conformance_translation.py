"""Conformance, continued: what translation must not lose or let through.

The nine Chat / Messages / Responses front door x upstream API pairs and
the harness of `test_conformance.py` (issues 13, 14 and 17; the Gemini
door's own cases are in `test_gemini_front_door.py`): text parts joined without
losing a boundary, interleaved parallel tool-call deltas, system messages
kept in place, structured output and effort, Chat-only fields refused
rather than dropped, and invalid requests refused before anything is sent.
Same-API pairs are relayed unchanged: there the upstream must get what the
client sent.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import openai
import pytest

from fakes.openai_upstream import FakeOpenAIUpstream, Script, ToolCallScript
from test_conformance import (
    MODEL,
    PNG,
    STREAMING,
    UPSTREAM_APIS,
    WEATHER_SCHEMA,
    Ask,
    Bridge,
    Call,
    ChatDoor,
    MessagesDoor,
    ResponsesDoor,
    open_bridge,
    user,
)

OPENAI_ANTHROPIC_PAIRS = [
    (door, api) for door in ("chat", "messages", "responses") for api in UPSTREAM_APIS
]


@pytest.fixture(
    params=OPENAI_ANTHROPIC_PAIRS,
    ids=[f"{door}-via-{api}" for door, api in OPENAI_ANTHROPIC_PAIRS],
)
async def bridge(
    request: pytest.FixtureRequest, fake_upstream: FakeOpenAIUpstream
) -> AsyncIterator[Bridge]:
    door_name, api = request.param
    async with open_bridge(door_name, api, fake_upstream) as running:
        yield running


SCHEMA: dict[str, Any] = {**WEATHER_SCHEMA, "additionalProperties": False}
NOTE = "<system>\nReply in French.\n</system>"


def _client(bridge: Bridge) -> Any:
    door = bridge.door
    assert isinstance(door, ChatDoor | MessagesDoor | ResponsesDoor)
    return door.client


async def _send(bridge: Bridge, body: dict[str, Any]) -> Any:
    """`body` sent with the door's SDK (whole answer)."""
    client = _client(bridge)
    if bridge.door.name == "chat":
        return await client.chat.completions.create(**body)
    if bridge.door.name == "messages":
        return await client.messages.create(**body)
    return await client.responses.create(**body)


async def _refused(bridge: Bridge, body: dict[str, Any]) -> dict[str, Any]:
    """Post `body` raw (no SDK-side checks); the 400 error body."""
    path = {"chat": "/v1/chat/completions", "messages": "/v1/messages"}
    url = bridge.proxy.url + path.get(bridge.door.name, "/v1/responses")
    response = await bridge.door.http.post(url, json=body)
    await response.aread()
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()
    bridge.door.validate_error(error)
    assert error["error"]["type"] == "invalid_request_error", error
    return error


# ------------------------------------------------- text parts, system in place


def _conversation(door: str) -> dict[str, Any]:
    """Two text parts, a call, a two-part result, a late system message."""
    call = {"city": "Paris"}
    if door == "chat":
        messages: list[dict[str, Any]] = [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "first block"},
                    {"type": "text", "text": "second block"},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {
                            "name": "get_weather",
                            "arguments": json.dumps(call),
                        },
                    }
                ],
            },
            {
                "role": "tool",
                "tool_call_id": "c1",
                "content": [
                    {"type": "text", "text": "line A"},
                    {"type": "text", "text": "line B"},
                ],
            },
            {"role": "system", "content": "Reply in French."},
            {"role": "user", "content": "And Tokyo?"},
        ]
        return {"model": MODEL, "max_tokens": 64, "messages": messages}
    if door == "messages":
        messages = [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "first block"},
                    {"type": "text", "text": "second block"},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "c1",
                        "name": "get_weather",
                        "input": call,
                    }
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "c1",
                        "content": [
                            {"type": "text", "text": "line A"},
                            {"type": "text", "text": "line B"},
                        ],
                    }
                ],
            },
            {"role": "system", "content": "Reply in French."},
            {"role": "user", "content": "And Tokyo?"},
        ]
        return {"model": MODEL, "max_tokens": 64, "messages": messages}
    items = [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "first block"},
                {"type": "input_text", "text": "second block"},
            ],
        },
        {
            "type": "function_call",
            "call_id": "c1",
            "name": "get_weather",
            "arguments": json.dumps(call),
        },
        {
            "type": "function_call_output",
            "call_id": "c1",
            "output": [
                {"type": "input_text", "text": "line A"},
                {"type": "input_text", "text": "line B"},
            ],
        },
        {"role": "developer", "content": "Reply in French."},
        {"role": "user", "content": "And Tokyo?"},
    ]
    return {"model": MODEL, "max_output_tokens": 64, "input": items}


EXPECTED_UPSTREAM: dict[str, Any] = {
    "chat": [
        {"role": "user", "content": "first block\nsecond block"},
        {
            "role": "assistant",
            "content": "",  # not null: llama-cpp-python's server rejects null
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "arguments": '{"city": "Paris"}',
                    },
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "line A\nline B"},
        {"role": "user", "content": f"{NOTE}\nAnd Tokyo?"},
    ],
    "messages": [
        {
            "role": "user",
            "content": [{"type": "text", "text": "first block\nsecond block"}],
        },
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "c1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                }
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "c1",
                    "content": [{"type": "text", "text": "line A\nline B"}],
                },
                {"type": "text", "text": f"{NOTE}\nAnd Tokyo?"},
            ],
        },
    ],
    "responses": [
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "first block\nsecond block"}],
        },
        {
            "type": "function_call",
            "call_id": "c1",
            "name": "get_weather",
            "arguments": '{"city": "Paris"}',
        },
        {
            "type": "function_call_output",
            "call_id": "c1",
            "output": "line A\nline B",
        },
        {
            "type": "message",
            "role": "developer",
            "content": [{"type": "input_text", "text": "Reply in French."}],
        },
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "And Tokyo?"}],
        },
    ],
}


def _accepted_form(message: dict[str, Any]) -> dict[str, Any]:
    content = message.get("content", "")
    if content is None and message.get("tool_calls"):
        return {**message, "content": ""}
    if message.get("role") == "tool" and isinstance(content, list):
        return {**message, "content": "\n".join(p["text"] for p in content)}
    return message


async def test_text_parts_joined_and_system_message_kept_in_place(
    bridge: Bridge,
) -> None:
    bridge.fake.script = Script(text="Il fait beau.")
    body = _conversation(bridge.door.name)
    await _send(bridge, body)
    bridge.check_bodies(streams=0)
    sent = bridge.sent()
    if bridge.relayed:
        key = "input" if bridge.api == "responses" else "messages"
        expected = body[key]
        if bridge.api == "chat":
            # The relay sends "" for a null content beside tool calls, and a
            # tool message's text parts as one string (llama-cpp-python
            # refuses both); nothing else changes.
            expected = [_accepted_form(m) for m in expected]
        assert sent[key] == expected
        return
    history = sent["input"] if bridge.api == "responses" else sent["messages"]
    if bridge.api == "chat":
        assert "system" not in [m["role"] for m in history]
    assert _parsed(history) == _parsed(EXPECTED_UPSTREAM[bridge.api])


def _parsed(value: Any) -> Any:
    """`value` with every `arguments` JSON text decoded (spacing differs)."""
    if isinstance(value, list):
        return [_parsed(v) for v in value]
    if isinstance(value, dict):
        return {
            k: json.loads(v) if k == "arguments" else _parsed(v)
            for k, v in value.items()
        }
    return value


async def test_tool_result_image_reaches_the_upstream(bridge: Bridge) -> None:
    if bridge.door.name == "chat":
        pytest.skip("N/A: Chat tool messages carry text only")
    bridge.fake.script = Script(text="A chart.")
    if bridge.door.name == "messages":
        image = {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": PNG},
        }
        body = _conversation("messages")
        body["messages"][2]["content"][0]["content"] = [
            {"type": "text", "text": "the chart:"},
            image,
        ]
    else:
        body = _conversation("responses")
        body["input"][2]["output"] = [
            {"type": "input_text", "text": "the chart:"},
            {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"},
        ]
    await _send(bridge, body)
    bridge.check_bodies(streams=0)
    sent = bridge.sent()
    if bridge.api == "chat":
        tool, after = sent["messages"][2:4]
        assert tool == {"role": "tool", "tool_call_id": "c1", "content": "the chart:"}
        # The image follows the run of tool messages, in one user message.
        assert after["role"] == "user"
        assert after["content"][0]["image_url"]["url"].endswith(PNG)
        assert [p["type"] for p in after["content"]] == ["image_url", "text"]
    elif bridge.api == "messages":
        result = sent["messages"][2]["content"][0]
        assert [b["type"] for b in result["content"]] == ["text", "image"]
    else:
        output = sent["input"][2]["output"]
        assert [p["type"] for p in output] == ["input_text", "input_image"]


# ------------------------------------------------- interleaved tool-call deltas


@STREAMING
async def test_interleaved_parallel_tool_calls_keep_every_argument(
    bridge: Bridge, stream: bool
) -> None:
    # A Chat upstream may interleave the calls' argument deltas; every call
    # must still reach the client whole. (The other APIs do not interleave:
    # there this is the plain parallel-call case.)
    calls = [
        Call("call_a", "get_weather", '{"city": "Paris", "unit": "celsius"}'),
        Call("call_b", "get_weather", '{"city": "Tokyo", "unit": "kelvin"}'),
    ]
    bridge.fake.script = Script(
        text="",
        tool_calls=[ToolCallScript(c.name, c.arguments, id=c.id) for c in calls],
        interleave_tool_calls=True,
    )
    question = user("Weather in Paris and Tokyo?")
    answer = await bridge.door.ask(Ask([question], tools=True, stream=stream))
    bridge.check_bodies(streams=int(stream))
    assert [c.key() for c in answer.calls] == [c.key() for c in calls]
    assert answer.finish == bridge.door.TOOL


# ------------------------------------------------- structured output and effort


def _structured(door: str) -> dict[str, Any]:
    if door == "chat":
        return {
            "model": MODEL,
            "max_tokens": 4096,
            "messages": [{"role": "user", "content": "Weather?"}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "weather", "schema": SCHEMA, "strict": True},
            },
            "reasoning_effort": "low",
        }
    if door == "messages":
        return {
            "model": MODEL,
            "max_tokens": 4096,
            "messages": [{"role": "user", "content": "Weather?"}],
            "thinking": {"type": "adaptive"},
            "output_config": {
                "format": {"type": "json_schema", "schema": SCHEMA},
                "effort": "low",
            },
        }
    return {
        "model": MODEL,
        "max_output_tokens": 4096,
        "input": "Weather?",
        "text": {
            "format": {
                "type": "json_schema",
                "name": "weather",
                "schema": SCHEMA,
                "strict": True,
            }
        },
        "reasoning": {"effort": "low"},
    }


async def test_structured_output_and_effort_reach_the_upstream(bridge: Bridge) -> None:
    bridge.fake.script = Script(text='{"city": "Paris"}')
    body = _structured(bridge.door.name)
    reply = await _send(bridge, body)
    bridge.check_bodies(streams=0)
    text = {
        "chat": lambda r: r.choices[0].message.content,
        "messages": lambda r: "".join(b.text for b in r.content if b.type == "text"),
        "responses": lambda r: r.output_text,
    }[bridge.door.name](reply)
    assert json.loads(text) == {"city": "Paris"}
    sent = bridge.sent()
    if bridge.relayed:
        field = {"chat": "response_format", "messages": "output_config"}
        assert (
            sent[field.get(bridge.api, "text")] == body[field.get(bridge.api, "text")]
        )
        return
    name = "response" if bridge.door.name == "messages" else "weather"
    strict = {} if bridge.door.name == "messages" else {"strict": True}
    if bridge.api == "chat":
        assert sent["response_format"] == {
            "type": "json_schema",
            "json_schema": {"name": name, "schema": SCHEMA, **strict},
        }
        assert sent["reasoning_effort"] == "low"
    elif bridge.api == "messages":
        assert sent["output_config"] == {
            "format": {"type": "json_schema", "schema": SCHEMA}
        }
        assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    else:
        assert sent["text"] == {
            "format": {"type": "json_schema", "name": name, "schema": SCHEMA, **strict}
        }
        assert sent["reasoning"] == {"effort": "low"}


async def test_any_json_object_is_carried_or_refused(bridge: Bridge) -> None:
    if bridge.door.name == "messages":
        pytest.skip("N/A: Anthropic asks for JSON only with a schema")
    bridge.fake.script = Script(text="{}")
    if bridge.door.name == "chat":
        body: dict[str, Any] = {
            "model": MODEL,
            "messages": [{"role": "user", "content": "JSON please"}],
            "response_format": {"type": "json_object"},
        }
    else:
        body = {
            "model": MODEL,
            "input": "JSON please",
            "text": {"format": {"type": "json_object"}},
        }
    if bridge.api == "messages":
        error = await _refused(bridge, body)
        assert "json_object" in error["error"]["message"]
        bridge.check_bodies(streams=0)
        assert bridge.fake.requests == []
        return
    await _send(bridge, body)
    bridge.check_bodies(streams=0)
    sent = bridge.sent()
    if bridge.api == "chat":
        assert sent["response_format"] == {"type": "json_object"}
    else:
        assert sent["text"]["format"] == {"type": "json_object"}


# ------------------------------------------------- Chat-only fields


@pytest.mark.parametrize(
    ("field", "value"),
    [("n", 2), ("logprobs", True), ("top_logprobs", 3)],
)
async def test_chat_only_fields_are_carried_or_refused(
    bridge: Bridge, field: str, value: Any
) -> None:
    if bridge.door.name != "chat":
        pytest.skip("N/A: a Chat Completions field")
    body: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Hi"}],
        field: value,
    }
    if field == "top_logprobs":
        body["logprobs"] = True
    if bridge.api == "chat":
        await _send(bridge, body)
        bridge.check_bodies(streams=0)
        assert bridge.sent()[field] == value
        return
    error = await _refused(bridge, body)
    bridge.check_bodies(streams=0)
    assert error["error"]["message"].startswith(f"{field}: ") or (
        field == "top_logprobs" and error["error"]["param"] == "logprobs"
    )
    assert error["error"]["param"] in (field, "logprobs")
    assert bridge.fake.requests == []


# ------------------------------------------------- validation before sending


BAD_BODIES: dict[str, list[tuple[dict[str, Any], str]]] = {
    "chat": [
        ({"messages": []}, "messages"),
        ({"max_tokens": 2**70}, "max_tokens"),
        ({"max_completion_tokens": 0}, "max_completion_tokens"),
        ({"temperature": 5}, "temperature"),
        ({"n": 0}, "n"),
        ({"seed": 2**64}, "seed"),
        ({"response_format": {"type": "json_schema"}}, "response_format.json_schema"),
        (
            {"messages": [{"role": "user", "content": [{"type": "bogus"}]}]},
            "messages[0].content[0].type",
        ),
    ],
    "messages": [
        ({"messages": []}, "messages"),
        ({"max_tokens": 2**70}, "max_tokens"),
        (
            {"messages": [{"role": "user", "content": [{"type": "bogus"}]}]},
            "messages[0].content",
        ),
        ({"messages": [{"role": "user", "content": ""}]}, "messages[0].content"),
        ({"top_k": -1}, "top_k"),
        ({"output_config": {"effort": "extreme"}}, "output_config.effort"),
    ],
    "responses": [
        ({"input": []}, "input"),
        ({"max_output_tokens": 2**70}, "max_output_tokens"),
        ({"input": [{"type": "bogus"}]}, "input[0].type"),
        (
            {"text": {"format": {"type": "json_schema", "name": "x"}}},
            "text.format.schema",
        ),
    ],
}


def _bad_body(door: str, change: dict[str, Any]) -> dict[str, Any]:
    bases: dict[str, dict[str, Any]] = {
        "chat": {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]},
        "messages": {
            "model": MODEL,
            "max_tokens": 64,
            "messages": [{"role": "user", "content": "Hi"}],
        },
        "responses": {"model": MODEL, "input": "Hi"},
    }
    return {**bases[door], **change}


async def test_invalid_requests_are_refused_before_anything_is_sent(
    bridge: Bridge,
) -> None:
    door = bridge.door.name
    for change, field in BAD_BODIES[door]:
        error = await _refused(bridge, _bad_body(door, change))
        message = error["error"]["message"]
        assert field in message, (change, message)
        if door != "messages":
            assert error["error"]["param"] == field, (change, error)
    bridge.check_bodies(streams=0)
    assert bridge.fake.requests == []


async def test_sdk_errors_are_invalid_request(bridge: Bridge) -> None:
    # The SDK sees the 400 as its own invalid-request error class.
    body = _bad_body(bridge.door.name, BAD_BODIES[bridge.door.name][1][0])
    with pytest.raises((openai.BadRequestError, anthropic.BadRequestError)):
        await _send(bridge, body)
    bridge.check_bodies(streams=0)


# ------------------------------------- reasoning goes back only where it is valid


def _said(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def _history_with_reasoning(door: str) -> tuple[str, dict[str, Any]]:
    """Turn 2 whose history holds reasoning from elsewhere: unsigned
    thinking (as a Chat upstream gives it), thinking signed by an upstream
    LM Bridge never met, encrypted reasoning of unknown origin."""
    if door == "chat":
        assistant = {"role": "assistant", "content": "ok"}
        assistant["reasoning_content"] = "PLAN-UNSIGNED"
        messages = [_said("hi"), assistant, _said("again")]
        return "/v1/chat/completions", {"model": MODEL, "messages": messages}
    if door == "messages":
        thinking = [
            {"type": "thinking", "thinking": "PLAN-UNSIGNED", "signature": ""},
            {
                "type": "thinking",
                "thinking": "PLAN-SIGNED",
                "signature": "SIG-ELSEWHERE",
            },
            {"type": "text", "text": "ok"},
        ]
        messages = [_said("hi"), {"role": "assistant", "content": thinking}]
        messages.append(_said("again"))
        body = {"model": MODEL, "max_tokens": 100, "messages": messages}
        return "/v1/messages", body
    reasoning = {
        "type": "reasoning",
        "id": "rs_1",
        "summary": [{"type": "summary_text", "text": "PLAN-UNSIGNED"}],
        "encrypted_content": "ENC-ELSEWHERE",
    }
    items = [_said("hi"), reasoning, {"role": "assistant", "content": "ok"}]
    items.append(_said("again"))
    return "/v1/responses", {"model": MODEL, "input": items, "store": False}


async def test_reasoning_reaches_only_an_upstream_that_takes_it(bridge: Bridge) -> None:
    path, body = _history_with_reasoning(bridge.door.name)
    async with (
        aiohttp.ClientSession() as session,
        session.post(bridge.proxy.url + path, json=body) as response,
    ):
        assert response.status == 200, await response.text()
        await response.read()
    raw = bridge.fake.requests[-1].raw
    assert b"ENC-ELSEWHERE" not in raw
    if bridge.api == "messages":
        # Anthropic refuses unsigned thinking and signatures it did not make.
        assert b"SIG-ELSEWHERE" not in raw
        assert b"PLAN-UNSIGNED" not in raw
        assert b'"signature":""' not in raw.replace(b" ", b"")
        sent = bridge.sent()
        kinds = [
            block.get("type")
            for message in sent["messages"]
            if isinstance(message["content"], list)
            for block in message["content"]
        ]
        assert "thinking" not in kinds
        record = await bridge.proxy.record(1)
        if bridge.door.name != "responses":
            assert any("thinking without a signature" in n for n in record.note_texts)
        if bridge.door.name == "messages":
            assert any(
                "thinking signed by another upstream" in n for n in record.note_texts
            )
    else:
        assert b"SIG-ELSEWHERE" not in raw
