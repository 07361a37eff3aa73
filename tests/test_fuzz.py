"""Fuzzing the four request parsers and the three stream decoders.

Every parser answers any bytes with an `ir.Request` or an `InvalidRequest`
(the Gemini door's with any URL too); every decoder turns any byte stream
into events without raising, and ends with a Finish or a StreamError,
which the Gemini door's stream encoder renders as a well-formed stream. 2,000 examples each (the CI profile of
issue 9); they take a few seconds.
"""

from __future__ import annotations

import itertools
import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakes import wire_formats
from fakes.openai_upstream import Script, ToolCallScript
from lmbridge.core import errors, ir
from lmbridge.core.assemble import Assembler
from lmbridge.protocols.base import Address
from lmbridge.protocols.gemini import GEMINI
from lmbridge.protocols.registry import front_door, upstream_codec
from validators import validate_gemini_stream

EXAMPLES = int(os.environ.get("LMBRIDGE_FUZZ_EXAMPLES", "2000"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=16,
)

PART_KEYS = [
    "type",
    "text",
    "image_url",
    "source",
    "id",
    "name",
    "input",
    "content",
    "tool_use_id",
    "call_id",
    "arguments",
    "output",
    "role",
    "thinking",
    "signature",
    "is_error",
    "summary",
    "image",
]
TYPES = [
    "text",
    "image",
    "image_url",
    "tool_use",
    "tool_result",
    "thinking",
    "redacted_thinking",
    "message",
    "function_call",
    "function_call_output",
    "reasoning",
    "input_text",
    "input_image",
    "output_text",
    "function",
    "web_search_20250305",
    "document",
    "namespace",
    "custom",
    "custom_tool_call",
    "custom_tool_call_output",
    "x",
]
part = st.dictionaries(
    st.sampled_from(PART_KEYS), st.sampled_from(TYPES) | scalars, max_size=4
)
message = st.fixed_dictionaries(
    {},
    optional={
        "role": st.sampled_from(["user", "assistant", "system", "developer", "tool"])
        | json_values,
        "content": st.text(max_size=20) | st.lists(part, max_size=3) | scalars,
        "tool_calls": st.lists(part, max_size=2),
        "tool_call_id": st.text(max_size=5),
        "type": st.sampled_from(TYPES),
    },
)
TOP_KEYS = [
    "model",
    "messages",
    "input",
    "instructions",
    "system",
    "tools",
    "tool_choice",
    "max_tokens",
    "max_output_tokens",
    "stream",
    "stop",
    "stop_sequences",
    "thinking",
    "reasoning",
    "temperature",
    "metadata",
    "previous_response_id",
    "parallel_tool_calls",
    "top_k",
    "n",
    "logprobs",
    "response_format",
    "output_config",
    "seed",
]
body = st.fixed_dictionaries(
    {"model": st.just("m") | json_values},
    optional={
        "messages": st.lists(message, max_size=4) | json_values,
        "input": st.text(max_size=10) | st.lists(message | part, max_size=4),
        **{
            k: json_values | st.lists(part, max_size=2)
            for k in TOP_KEYS
            if k not in ("model", "messages", "input")
        },
    },
)
SEEDS: list[Any] = [
    {
        "model": "claude-sonnet-4-6",
        "max_tokens": 100,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {}}],
        "tools": [{"name": "read", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "tool", "name": "read"},
        "thinking": {"type": "enabled", "budget_tokens": 2000},
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "hi"},
                    {
                        "type": "image",
                        "source": {
                            "type": "base64",
                            "media_type": "image/png",
                            "data": "AAAA",
                        },
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "t", "signature": "s"},
                    {"type": "tool_use", "id": "c1", "name": "read", "input": {"p": 1}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "c1",
                        "is_error": True,
                        "content": [{"type": "text", "text": "no"}],
                    }
                ],
            },
        ],
        "stream": True,
    },
    {
        "model": "m",
        "messages": [
            {"role": "system", "content": "s"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "x"},
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64,AA"},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c",
                        "type": "function",
                        "function": {"name": "f", "arguments": "{}"},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c", "content": "r"},
        ],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
        "tool_choice": "required",
        "stop": ["x"],
        "stream": True,
        "stream_options": {"include_usage": True},
    },
    {
        "model": "m",
        "instructions": "be brief",
        "input": [
            {"role": "developer", "content": "d"},
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "x"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AA"},
                ],
            },
            {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c", "output": "o"},
            {
                "type": "reasoning",
                "summary": [{"type": "summary_text", "text": "r"}],
                "encrypted_content": "e",
            },
        ],
        "tools": [
            {"type": "function", "name": "f", "parameters": {}},
            {"type": "web_search"},
        ],
        "reasoning": {"effort": "low"},
        "previous_response_id": "resp_1",
        "store": False,
        "stream": True,
    },
    # Multi-part text, multi-part tool results, a late system message,
    # structured output and effort (issues 13, 14.4, 17).
    {
        "model": "claude-sonnet-4-6",
        "max_tokens": 2**31 - 1,
        "output_config": {
            "format": {"type": "json_schema", "schema": {"type": "object"}},
            "effort": "low",
        },
        "thinking": {"type": "adaptive"},
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "first block"},
                    {"type": "text", "text": "second block"},
                ],
            },
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "c", "name": "f", "input": {}}],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "c",
                        "content": [
                            {"type": "text", "text": "line A"},
                            {"type": "text", "text": "line B"},
                        ],
                    }
                ],
            },
            {"role": "system", "content": "late"},
            {
                "role": "user",
                "content": [{"type": "bogus"}, {"type": "text", "text": "x"}],
            },
        ],
    },
    {
        "model": "m",
        "n": 2,
        "logprobs": True,
        "top_logprobs": 2,
        "seed": -(2**63),
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "o", "schema": {"type": "object"}, "strict": True},
        },
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "a"},
                    {"type": "text", "text": "b"},
                ],
            },
            {"role": "developer", "content": "late"},
            {
                "role": "tool",
                "tool_call_id": "c",
                "content": [{"type": "text", "text": "r"}],
            },
        ],
        "tools": [{"type": "custom", "custom": {"name": "patch"}}],
    },
    {
        "model": "m",
        "input": [
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "a"},
                    {"type": "input_text", "text": "b"},
                ],
            },
            {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
            {
                "type": "function_call_output",
                "call_id": "c",
                "output": [
                    {"type": "input_text", "text": "x"},
                    {"type": "input_text", "text": "y"},
                ],
            },
            {"role": "developer", "content": "late"},
        ],
        "text": {"format": {"type": "json_object"}},
        "max_output_tokens": 2**31 - 1,
    },
    # Codex's namespace (MCP) and freeform tools and their calls (issue 14.1/2).
    {
        "model": "m",
        "input": [
            {"role": "user", "content": "go"},
            {
                "type": "function_call",
                "call_id": "c1",
                "name": "read",
                "namespace": "mcp__srv",
                "arguments": "{}",
            },
            {
                "type": "custom_tool_call",
                "call_id": "c2",
                "name": "apply_patch",
                "input": "p",
            },
            {
                "type": "function_call_output",
                "call_id": "c1",
                "output": [
                    {"type": "input_image", "image_url": "data:image/png;base64,AA"}
                ],
            },
            {"type": "custom_tool_call_output", "call_id": "c2", "output": "ok"},
        ],
        "tools": [
            {
                "type": "namespace",
                "name": "mcp__srv",
                "description": "d",
                "tools": [
                    {"type": "function", "name": "read", "parameters": {}},
                    {"type": "custom", "name": "note"},
                ],
            },
            {
                "type": "custom",
                "name": "apply_patch",
                "format": {
                    "type": "grammar",
                    "syntax": "lark",
                    "definition": "start: x",
                },
            },
        ],
        "tool_choice": {"type": "function", "name": "read", "namespace": "mcp__srv"},
        "stream": True,
    },
]
ODD_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    1.5,
    10**30,
    2**31 - 1,
    2**31,
    2**63,
    -(2**63) - 1,
    2**64,
    "",
    "\x00",
    "\ud800",
    [],
    {},
    [None],
    {"type": None},
    "x" * 300,
]


def _mutate_value(value: Any, rng: Any, depth: int = 0) -> Any:
    roll = rng.random()
    if roll < 0.15 or depth > 6:
        return rng.choice(ODD_VALUES)
    if isinstance(value, dict) and value:
        key = rng.choice(list(value))
        out = dict(value)
        if roll < 0.3:
            del out[key]
        elif roll < 0.4:
            out[rng.choice(["type", "role", "content", "x"])] = rng.choice(ODD_VALUES)
        else:
            out[key] = _mutate_value(out[key], rng, depth + 1)
        return out
    if isinstance(value, list) and value:
        out_list = list(value)
        i = rng.randrange(len(out_list))
        if roll < 0.3:
            out_list.pop(i)
        elif roll < 0.45:
            out_list.append(out_list[i])
        else:
            out_list[i] = _mutate_value(out_list[i], rng, depth + 1)
        return out_list
    return rng.choice(ODD_VALUES)


def _mutated(seed: Any, rng: Any) -> bytes:
    value = seed
    for _ in range(rng.randint(1, 4)):
        value = _mutate_value(value, rng)
    data = json.dumps(value).encode()
    if rng.random() < 0.15 and data:
        i = rng.randrange(len(data))
        data = (
            data[:i]
            + rng.choice([b"\x80", b"\xff\xfe", b"{", b"]", b""])
            + (data[i + 1 :] if rng.random() < 0.5 else b"")
        )
    return data


mutated_bodies = st.builds(_mutated, st.sampled_from(SEEDS), st.randoms())
structural = st.one_of(
    body.map(lambda b: json.dumps(b).encode()),
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
)
# Cheap, grammar-aware mutations of realistic bodies dominate (generation of
# deep structures is what costs); the structural strategy explores the rest.
request_bytes = st.one_of(mutated_bodies, mutated_bodies, mutated_bodies, structural)


@pytest.mark.parametrize("protocol", ["openai", "anthropic", "responses"])
@FUZZ
@given(data=request_bytes)
def test_parser_answers_request_or_invalid(protocol: str, data: bytes) -> None:
    door = front_door(protocol)
    try:
        req = door.parse_request(data)
    except errors.InvalidRequest as exc:
        assert exc.status in (400, 413, 415)
        assert exc.message
        return
    assert isinstance(req, ir.Request)
    # Whatever parses must also encode for every upstream API, or be refused
    # there with a 400 naming what that API cannot carry.
    for api in ("chat", "responses", "messages"):
        try:
            body = upstream_codec(api).encode_request(req)
        except errors.InvalidRequest as exc:
            assert exc.status == 400 and exc.param
            assert req.unportable or req.output_format is not None
            continue
        if api == "chat":
            _assert_chat_servers_accept(json.loads(body))


def _assert_chat_servers_accept(body: dict[str, Any]) -> None:
    """The shapes llama.cpp, llama-cpp-python, vLLM and Ollama all take."""
    roles = [m["role"] for m in body["messages"]]
    assert "system" not in roles[1:], roles
    for before, after in itertools.pairwise(roles):
        assert not (before == after and before in ("user", "assistant")), roles
    for message in body["messages"]:
        content = message["content"]
        if message["role"] in ("system", "tool", "assistant"):
            assert isinstance(content, str), message
        else:
            assert content, message


def _frames(api: str, *, interleaved: bool = False) -> list[bytes]:
    calls = [ToolCallScript("read", '{"path": "a.py"}', id="c1")]
    if interleaved:  # parallel calls whose argument deltas alternate
        calls.append(ToolCallScript("read", '{"path": "b.py", "n": 2}', id="c2"))
    script = Script(
        text="Hello there friend",
        reasoning="Let me think",
        tool_calls=calls,
        interleave_tool_calls=interleaved,
    )
    body: dict[str, Any] = {"model": "m", "stream": True}
    if api == "chat":
        from fakes.openai_upstream import FakeOpenAIUpstream

        fake = FakeOpenAIUpstream()
        return fake._chat_frames(
            script, {**body, "stream_options": {"include_usage": True}}
        )
    if api == "responses":
        return wire_formats.responses_frames(script, body, "resp_1")
    return wire_formats.messages_frames(script, body, "tool_calls")


VALID = {api: _frames(api) for api in ("chat", "responses", "messages")}
VALID["chat-interleaved"] = _frames("chat", interleaved=True)


def _mangled_stream(frames: list[bytes], rng: Any) -> list[bytes]:
    """The valid stream, cut into random pieces, with random damage."""
    data = b"".join(frames)
    for _ in range(rng.randint(0, 3)):
        i = rng.randrange(len(data))
        damage = rng.choice(
            [b"", b"\x80", b"{", b"\n\n", b"data: [DONE]\n\n", b"data: {}\n\n"]
        )
        data = data[:i] + damage + data[i + rng.randint(0, 40) :]
    if rng.random() < 0.3:
        data = data[: rng.randrange(len(data) + 1)]
    pieces, i = [], 0
    while i < len(data):
        n = rng.randint(1, 200)
        pieces.append(data[i : i + n])
        i += n
    return pieces


def stream_bytes(api: str) -> st.SearchStrategy[list[bytes]]:
    frames = VALID[api]
    mangled = st.builds(_mangled_stream, st.just(frames), st.randoms())
    shuffled = st.lists(st.sampled_from(frames) | st.binary(max_size=40), max_size=20)
    return st.one_of(mangled, mangled, shuffled, st.permutations(frames))


def _decode(api: str, pieces: list[bytes]) -> list[ir.Event]:
    req = ir.Request(model="m", messages=(ir.Message(ir.Role.USER, (ir.Text("x"),)),))
    decoder = upstream_codec(api.partition("-")[0]).stream_decoder(req)
    out: list[ir.Event] = []
    for piece in pieces:
        out += decoder.feed(piece)
    return out + decoder.close()


def _assert_sequential(events: list[ir.Event]) -> None:
    """IR blocks come one at a time (what every stream encoder relies on)."""
    open_index: int | None = None
    for event in events:
        if isinstance(event, ir.BlockStart):
            assert open_index is None, events
            open_index = event.index
        elif isinstance(event, ir.BlockStop):
            assert event.index == open_index, events
            open_index = None
        elif isinstance(event, ir.TextDelta | ir.ThinkingDelta | ir.ToolArgsDelta):
            assert event.index == open_index, events


STREAM_APIS = ["chat", "chat-interleaved", "responses", "messages"]


@pytest.mark.parametrize("api", STREAM_APIS)
@FUZZ
@given(data=st.data())
def test_decoder_never_raises_and_always_ends(api: str, data: st.DataObject) -> None:
    pieces = data.draw(stream_bytes(api))
    events = _decode(api, pieces)
    assert events, "a stream must end with a Finish or an error"
    assert isinstance(events[-1], ir.Finish | ir.StreamError)
    assert sum(isinstance(e, ir.Finish | ir.StreamError) for e in events) == 1
    if api.startswith("chat"):
        _assert_sequential(events)
    # Whatever the upstream sent, the Gemini door's stream is well formed
    # (the other doors' encoders are checked on real streams in
    # test_conformance; Gemini's SDK is the least forgiving reader).
    thoughts = ir.Reasoning(effort="low") if data.draw(st.booleans()) else None
    encoder = GEMINI.stream_encoder(ir.Request("m", (), reasoning=thoughts))
    validate_gemini_stream(b"".join(encoder.encode(e) for e in events))


@pytest.mark.parametrize("api", STREAM_APIS)
def test_valid_stream_decodes_to_an_answer(api: str) -> None:
    events = _decode(api, VALID[api])
    assert isinstance(events[-1], ir.Finish)
    assembler = Assembler()
    for event in events:
        assembler.feed(event)
    calls = [p for p in assembler.result().parts if isinstance(p, ir.ToolCall)]
    expected = {"c1": {"path": "a.py"}, "c2": {"path": "b.py", "n": 2}}
    assert {c.id: json.loads(c.arguments) for c in calls} == {
        c.id: expected[c.id] for c in calls
    }
    assert len(calls) == (2 if api == "chat-interleaved" else 1)


# ------------------------------------------------------------- the Gemini door

GEMINI_SEEDS: list[Any] = [
    {
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "hi"},
                    {"inlineData": {"mimeType": "image/png", "data": "AAAA"}},
                ],
            },
            {
                "role": "model",
                "parts": [
                    {"text": "thinking", "thought": True, "thoughtSignature": "c2ln"},
                    {"functionCall": {"name": "read", "args": {"path": "a.py"}}},
                    {"functionCall": {"name": "read", "args": {"path": "b.py"}}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "read", "response": {"output": "x"}}},
                    {
                        "functionResponse": {
                            "id": "nope",
                            "name": "read",
                            "response": {"error": "missing"},
                        }
                    },
                ],
            },
        ],
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "read",
                        "description": "Read a file",
                        "parameters": {
                            "type": "OBJECT",
                            "properties": {
                                "path": {"type": "STRING", "nullable": True}
                            },
                            "required": ["path"],
                        },
                    }
                ]
            },
            {"googleSearch": {}},
        ],
        "toolConfig": {
            "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["read"]}
        },
        "generationConfig": {
            "temperature": 0.2,
            "topP": 0.9,
            "topK": 40,
            "maxOutputTokens": 512,
            "stopSequences": ["END"],
            "thinkingConfig": {"includeThoughts": True, "thinkingBudget": 1024},
            "responseMimeType": "application/json",
            "responseSchema": {
                "type": "OBJECT",
                "properties": {"a": {"type": "INTEGER"}},
            },
            "presencePenalty": 0.5,
        },
        "safetySettings": [
            {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}
        ],
    },
    {
        "contents": [{"parts": [{"text": "hi"}]}],
        "system_instruction": {"parts": [{"text": "snake case"}]},
        "generation_config": {
            "max_output_tokens": 10,
            "thinking_config": {"thinking_level": "high"},
            "response_mime_type": "application/json",
            "response_json_schema": {"type": "object"},
        },
    },
    {
        "generateContentRequest": {
            "contents": [{"role": "user", "parts": [{"text": "x"}]}]
        }
    },
]
GEMINI_KEYS = [
    "contents",
    "systemInstruction",
    "tools",
    "toolConfig",
    "generationConfig",
    "safetySettings",
    "cachedContent",
    "generateContentRequest",
]
gemini_part = st.dictionaries(
    st.sampled_from(
        [
            "text",
            "thought",
            "inlineData",
            "fileData",
            "functionCall",
            "functionResponse",
        ]
    ),
    json_values,
    max_size=3,
)
gemini_body = st.fixed_dictionaries(
    {},
    optional={
        "contents": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "role": st.sampled_from(["user", "model", "x"]) | json_values,
                    "parts": st.lists(gemini_part, max_size=3) | json_values,
                },
            ),
            max_size=3,
        )
        | json_values,
        **{k: json_values for k in GEMINI_KEYS if k != "contents"},
    },
)
gemini_bytes = st.one_of(
    st.builds(_mutated, st.sampled_from(GEMINI_SEEDS), st.randoms()),
    st.builds(_mutated, st.sampled_from(GEMINI_SEEDS), st.randoms()),
    gemini_body.map(lambda b: json.dumps(b).encode()),
    st.binary(max_size=200),
)
addresses = st.builds(
    Address,
    params=st.fixed_dictionaries(
        {
            "model": st.text(max_size=20),
            "method": st.sampled_from(["generateContent", "streamGenerateContent"]),
        }
    ),
    query=st.dictionaries(
        st.sampled_from(["alt", "key"]), st.sampled_from(["sse", ""])
    ),
)


@FUZZ
@given(data=gemini_bytes, address=addresses)
def test_gemini_door_answers_request_or_invalid(data: bytes, address: Address) -> None:
    try:
        counted = json.loads(GEMINI.count_tokens(data, address))
    except errors.InvalidRequest as exc:
        assert exc.status == 400 and exc.message
    else:
        assert isinstance(counted["totalTokens"], int) and counted["totalTokens"] >= 0
    try:
        req = GEMINI.parse_call(data, address)
    except errors.InvalidRequest as exc:
        assert exc.status == 400 and exc.message
        error = json.loads(GEMINI.encode_error(exc))["error"]
        assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
        return
    assert req.messages
    for api in ("chat", "responses", "messages"):
        try:
            body = upstream_codec(api).encode_request(req)
        except errors.InvalidRequest as exc:
            assert exc.status == 400 and exc.param
            continue
        if api == "chat":
            _assert_chat_servers_accept(json.loads(body))
