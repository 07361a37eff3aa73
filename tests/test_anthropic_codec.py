"""The Anthropic Messages codec, both directions, without a server."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmbridge.core import errors, ir
from lmbridge.protocols.anthropic import (
    ANTHROPIC,
    AnthropicStreamDecoder,
    AnthropicStreamEncoder,
    encode_error,
    encode_request,
    encode_response,
    parse_error,
    parse_request,
)
from validators import parse_sse, validate_anthropic_stream


def body(**fields: Any) -> bytes:
    """A valid request body with `fields` added or replaced."""
    base: dict[str, Any] = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "hi"}],
    }
    base.update(fields)
    return json.dumps(base).encode()


def user(*blocks: Any) -> dict[str, Any]:
    return {"role": "user", "content": list(blocks)}


def parts_of(*blocks: Any) -> tuple[ir.Part, ...]:
    """The IR parts of one user message made of `blocks`."""
    return parse_request(body(messages=[user(*blocks)])).messages[0].parts


def encode_all(events: list[ir.Event], model: str = "claude-x") -> bytes:
    encoder = AnthropicStreamEncoder(model=model)
    return b"".join(encoder.encode(event) for event in events)


def invalid(raw: bytes) -> errors.InvalidRequest:
    with pytest.raises(errors.InvalidRequest) as caught:
        parse_request(raw)
    return caught.value


# ------------------------------------------------------------ request parse


def test_minimal_request() -> None:
    req = parse_request(body())
    assert req.model == "claude-sonnet-4-5"
    assert req.max_tokens == 1024
    assert req.messages == (ir.Message(ir.Role.USER, (ir.Text("hi"),)),)
    assert req.stream is False
    assert req.extras == {}


def test_system_string_and_blocks() -> None:
    assert parse_request(body(system="be brief")).system == (ir.Text("be brief"),)
    blocks = [
        {"type": "text", "text": "one", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "two"},
    ]
    req = parse_request(body(system=blocks))
    assert req.system == (ir.Text("one"), ir.Text("two"))


def test_system_messages_inside_messages_stay_in_place() -> None:
    # Leading ones are the system prompt; later ones keep their position,
    # so the start of the prompt does not change from turn to turn.
    messages = [
        {"role": "system", "content": "from messages"},
        {"role": "user", "content": "hi"},
        {"role": "system", "content": [{"type": "text", "text": "later"}]},
        {"role": "assistant", "content": "hello"},
    ]
    req = parse_request(body(system="top", messages=messages))
    assert req.system == (ir.Text("top"), ir.Text("from messages"))
    assert req.messages == (
        ir.Message(ir.Role.USER, (ir.Text("hi"),)),
        ir.Message(ir.Role.SYSTEM, (ir.Text("later"),)),
        ir.Message(ir.Role.ASSISTANT, (ir.Text("hello"),)),
    )


def test_text_and_image_blocks() -> None:
    parts = parts_of(
        {"type": "text", "text": "look", "cache_control": {"type": "ephemeral"}},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"},
        },
        {"type": "image", "source": {"type": "url", "url": "https://x/y.jpg"}},
    )
    assert parts == (
        ir.Text("look"),
        ir.Image(media_type="image/png", data="AAAA"),
        ir.Image(url="https://x/y.jpg"),
    )


def test_tool_use_and_tool_result() -> None:
    messages = [
        user({"type": "text", "text": "read it"}),
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "redacted_thinking", "data": "opaque"},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "read",
                    "input": {"path": "a.py", "n": [1, 2]},
                },
            ],
        },
        user(
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "text"},
            {
                "type": "tool_result",
                "tool_use_id": "toolu_2",
                "is_error": True,
                "content": [
                    {"type": "text", "text": "boom"},
                    {
                        "type": "image",
                        "source": {
                            "type": "base64",
                            "media_type": "image/gif",
                            "data": "R0",
                        },
                    },
                ],
            },
            {"type": "tool_result", "tool_use_id": "toolu_3"},
        ),
    ]
    req = parse_request(body(messages=messages))
    thinking, redacted, call = req.messages[1].parts
    assert thinking == ir.Thinking("hmm", "sig")
    assert redacted == ir.Thinking(redacted=True, data="opaque")
    assert isinstance(call, ir.ToolCall)
    assert (call.id, call.name) == ("toolu_1", "read")
    assert json.loads(call.arguments) == {"path": "a.py", "n": [1, 2]}
    assert req.messages[2].parts == (
        ir.ToolResult("toolu_1", (ir.Text("text"),)),
        ir.ToolResult(
            "toolu_2",
            (ir.Text("boom"), ir.Image(media_type="image/gif", data="R0")),
            is_error=True,
        ),
        ir.ToolResult("toolu_3", ()),
    )


def test_unknown_blocks_follow_the_policy() -> None:
    parts = parts_of(
        {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": "doc"},
        },
        {
            "type": "document",
            "title": "Notes",
            "source": {"type": "content", "content": [{"type": "text", "text": "a"}]},
        },
        {
            "type": "document",
            "source": {
                "type": "base64",
                "media_type": "application/pdf",
                "data": "JVBE",
            },
        },
        {
            "type": "search_result",
            "source": "https://x",
            "title": "X",
            "content": [{"type": "text", "text": "found"}],
        },
        {
            "type": "server_tool_use",
            "id": "srvtoolu_1",
            "name": "web_search",
            "input": {},
        },
        {
            "type": "web_search_tool_result",
            "tool_use_id": "srvtoolu_1",
            "content": {"type": "web_search_tool_result_error", "error_code": "x"},
        },
        {"type": "brand_new_block", "text": "kept"},
        {"type": "another_block", "text": {"weird": True}},
        {"type": "image", "source": {"type": "file", "file_id": "file_1"}},
        {"type": "text", "text": ""},
    )
    assert parts == (
        ir.Text("doc"),
        ir.Text("Notes\n\na"),
        ir.Text("X\nhttps://x\n\nfound"),
        ir.Text("kept"),
    )


def test_assistant_messages_left_empty_are_dropped_and_listed() -> None:
    messages = [
        user({"type": "text", "text": "x"}),
        {
            "role": "assistant",
            "content": [
                {"type": "server_tool_use", "id": "s", "name": "n", "input": {}}
            ],
        },
        user({"type": "text", "text": "y"}),
    ]
    req = parse_request(body(messages=messages))
    assert [m.role for m in req.messages] == [ir.Role.USER, ir.Role.USER]
    assert req.dropped == (
        "messages[1].content[0]: a 'server_tool_use' block is not carried",
    )


@pytest.mark.parametrize(
    ("messages", "field", "needle"),
    [
        ([], "messages", "at least one message"),
        ([user({"type": "bogus"})], "messages[0].content", "'bogus'"),
        (
            [user({"type": "text", "text": "a"}), user({"type": "bogus"})],
            "messages[1].content",
            "'bogus' block",
        ),
        ([user()], "messages[0].content", "non-empty content"),
        ([{"role": "user", "content": ""}], "messages[0].content", "non-empty"),
        ([{"role": "system", "content": "s"}], "messages", "no user or assistant"),
    ],
)
def test_requests_anthropic_refuses_are_refused(
    messages: list[Any], field: str, needle: str
) -> None:
    with pytest.raises(errors.InvalidRequest) as caught:
        parse_request(body(messages=messages))
    assert caught.value.param == field
    assert needle in caught.value.message
    assert caught.value.status == 400


def test_a_final_empty_assistant_prefill_is_allowed() -> None:
    messages = [
        user({"type": "text", "text": "a"}),
        {"role": "assistant", "content": ""},
    ]
    assert len(parse_request(body(messages=messages)).messages) == 1


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"max_tokens": 2**70}, "max_tokens"),
        ({"max_tokens": 2**31}, "max_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"temperature": 1.5}, "temperature"),
        ({"top_k": -1}, "top_k"),
        (
            {"thinking": {"type": "enabled", "budget_tokens": 2**40}},
            "thinking.budget_tokens",
        ),
        ({"output_config": {"effort": "extreme"}}, "output_config.effort"),
        (
            {"output_config": {"format": {"type": "json_object"}}},
            "output_config.format.type",
        ),
        (
            {"output_config": {"format": {"type": "json_schema"}}},
            "output_config.format.schema",
        ),
    ],
)
def test_out_of_range_values_are_refused(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(errors.InvalidRequest) as caught:
        parse_request(body(**fields))
    assert caught.value.param == field


def test_structured_output_and_effort() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    req = parse_request(
        body(
            output_config={
                "format": {"type": "json_schema", "schema": schema},
                "effort": "low",
            },
            thinking={"type": "adaptive"},
        )
    )
    assert req.output_format == ir.OutputFormat("json_schema", schema)
    assert req.reasoning == ir.Reasoning(effort="low")
    beta = parse_request(body(output_format={"type": "json_schema", "schema": schema}))
    assert beta.output_format == ir.OutputFormat("json_schema", schema)
    assert beta.reasoning is None
    effort_only = parse_request(body(output_config={"effort": "high"}))
    assert effort_only.reasoning == ir.Reasoning(effort="high")
    disabled = parse_request(
        body(output_config={"effort": "high"}, thinking={"type": "disabled"})
    )
    assert disabled.reasoning is None
    budget = parse_request(
        body(
            max_tokens=4096,
            output_config={"effort": "max"},
            thinking={"type": "enabled", "budget_tokens": 2048},
        )
    )
    assert budget.reasoning == ir.Reasoning(effort="max", budget_tokens=2048)


def test_tools_server_tools_and_defer_loading() -> None:
    tools = [
        {
            "name": "read",
            "description": "Read a file",
            "input_schema": {"type": "object"},
        },
        {"name": "lazy", "input_schema": {"type": "object"}, "defer_loading": True},
        {"type": "custom", "name": "typed", "input_schema": {"type": "object"}},
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
        {"type": "bash_20250124", "name": "bash"},
        {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"},
        {"type": "tool_search_tool_regex_20251119", "name": "tool_search_tool_regex"},
    ]
    req = parse_request(
        body(tools=tools, tool_choice={"type": "tool", "name": "web_search"})
    )
    assert [t.name for t in req.tools] == ["read", "lazy", "typed"]
    assert req.tools[0] == ir.Tool("read", "Read a file", {"type": "object"})
    assert req.extras == {}
    # Web search is the pipeline's to offer or drop (server/websearch.py).
    assert [line.split(":")[0] for line in req.dropped] == [
        "tool bash",
        "tool str_replace_based_edit_tool",
        "tool tool_search_tool_regex",
    ]
    assert req.web_search == ir.WebSearchTool("web_search_20250305", max_uses=5)
    assert req.tool_choice == ir.ToolChoice(ir.ToolChoiceMode.AUTO)


@pytest.mark.parametrize(
    ("choice", "expected", "parallel"),
    [
        ({"type": "auto"}, ir.ToolChoice(ir.ToolChoiceMode.AUTO), None),
        ({"type": "any"}, ir.ToolChoice(ir.ToolChoiceMode.REQUIRED), None),
        ({"type": "none"}, ir.ToolChoice(ir.ToolChoiceMode.NONE), None),
        (
            {"type": "tool", "name": "read"},
            ir.ToolChoice(ir.ToolChoiceMode.TOOL, "read"),
            None,
        ),
        (
            {"type": "auto", "disable_parallel_tool_use": True},
            ir.ToolChoice(ir.ToolChoiceMode.AUTO),
            False,
        ),
        (
            {"type": "any", "disable_parallel_tool_use": False},
            ir.ToolChoice(ir.ToolChoiceMode.REQUIRED),
            None,
        ),
    ],
)
def test_tool_choice(
    choice: dict[str, Any], expected: ir.ToolChoice, parallel: bool | None
) -> None:
    tools = [{"name": "read", "input_schema": {"type": "object"}}]
    req = parse_request(body(tools=tools, tool_choice=choice))
    assert req.tool_choice == expected
    assert req.parallel_tool_calls is parallel


def test_sampling_and_stream_fields() -> None:
    req = parse_request(
        body(
            max_tokens=77,
            temperature=0.5,
            top_p=0.9,
            top_k=40,
            stop_sequences=["END", "STOP"],
            stream=True,
        )
    )
    assert (req.max_tokens, req.temperature, req.top_p, req.top_k) == (77, 0.5, 0.9, 40)
    assert req.stop == ("END", "STOP")
    assert req.stream is True


@pytest.mark.parametrize(
    ("thinking", "expected"),
    [
        ({"type": "enabled", "budget_tokens": 4000}, ir.Reasoning(budget_tokens=4000)),
        ({"type": "adaptive"}, ir.Reasoning(effort="medium")),
        ({"type": "disabled"}, None),
        (None, None),
    ],
)
def test_thinking_config(
    thinking: dict[str, Any] | None, expected: ir.Reasoning | None
) -> None:
    assert parse_request(body(thinking=thinking)).reasoning == expected


def test_anthropic_only_fields_are_not_forwarded() -> None:
    req = parse_request(
        body(
            metadata={"user_id": "u"},
            output_config={"effort": "high"},
            context_management={"edits": []},
            container="c",
            mcp_servers=[{"type": "url", "url": "https://m", "name": "m"}],
            service_tier="auto",
        )
    )
    assert req.extras == {}


@pytest.mark.parametrize(
    ("user_id", "session"),
    [
        (
            json.dumps({"device_id": "d", "account_uuid": "a", "session_id": "sess-1"}),
            "sess-1",
        ),
        ("user_abc_account_123_session_5f1e-42", "5f1e-42"),
        ("plain-user", None),
        ("{not json", None),
        (json.dumps({"session_id": 5}), None),
    ],
)
def test_session_key_from_metadata(user_id: str, session: str | None) -> None:
    req = parse_request(body(metadata={"user_id": user_id}))
    assert req.client.session_key == session


# ------------------------------------------------------------- validation


def test_bad_json_is_invalid_request() -> None:
    assert "not valid JSON" in invalid(b"{nope").message


@pytest.mark.parametrize("field", ["model", "messages", "max_tokens"])
def test_missing_required_field_is_named(field: str) -> None:
    raw = json.loads(body())
    del raw[field]
    error = invalid(json.dumps(raw).encode())
    assert f"`{field}`" in error.message
    assert error.param == field


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"model": 5}, "model"),
        ({"max_tokens": "many"}, "max_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"role": "user", "content": 3}]}, "messages[0].content"),
        ({"messages": [{"role": "user"}]}, "messages[0].content"),
        (
            {"messages": [user({"type": "text", "text": 1})]},
            "messages[0].content[0].text",
        ),
        ({"messages": [user({"text": "x"})]}, "messages[0].content[0].type"),
        (
            {"messages": [user({"type": "image", "source": {"type": "base64"}})]},
            "messages[0].content[0].source",
        ),
        (
            {
                "messages": [
                    user({"type": "tool_use", "id": "a", "name": "b", "input": []})
                ]
            },
            "messages[0].content[0].input",
        ),
        (
            {"messages": [user({"type": "tool_use", "id": "a", "input": {}})]},
            "messages[0].content[0].name",
        ),
        (
            {
                "messages": [
                    user(
                        {
                            "type": "tool_result",
                            "tool_use_id": "a",
                            "content": [{"type": "text", "text": 2}],
                        }
                    )
                ]
            },
            "messages[0].content[0].content[0].text",
        ),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"tools": [{"name": "x"}]}, "tools[0].input_schema"),
        ({"tools": [{"input_schema": {}}]}, "tools[0].name"),
        ({"tool_choice": {"type": "tool"}}, "tool_choice.name"),
        ({"tool_choice": {"type": "sometimes"}}, "tool_choice.type"),
        ({"thinking": {"type": "enabled"}}, "thinking.budget_tokens"),
        ({"thinking": {"type": "maybe"}}, "thinking.type"),
        ({"stop_sequences": "END"}, "stop_sequences"),
        ({"temperature": "hot"}, "temperature"),
    ],
)
def test_wrong_types_name_the_field(fields: dict[str, Any], param: str) -> None:
    error = invalid(body(**fields))
    assert error.param == param
    assert error.message.startswith(f"invalid request: {param}: ")


def test_empty_body() -> None:
    assert "empty" in invalid(b"").message


# ------------------------------------------------------------ responses


def test_encode_response_shape() -> None:
    response = ir.Response(
        id="msg_1",
        model="claude-x",
        parts=[
            ir.Thinking("because", "sig"),
            ir.Thinking(redacted=True, data="opaque"),
            ir.Text("hello"),
            ir.ToolCall("call_1", "read", '{"path": "a"}'),
        ],
        stop_reason=ir.StopReason.TOOL_USE,
        usage=ir.Usage(input_tokens=100, output_tokens=7, cached_tokens=60),
    )
    data = json.loads(encode_response(response))
    assert data == {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [
            {"type": "thinking", "thinking": "because", "signature": "sig"},
            {"type": "redacted_thinking", "data": "opaque"},
            {"type": "text", "text": "hello"},
            {
                "type": "tool_use",
                "id": "call_1",
                "name": "read",
                "input": {"path": "a"},
            },
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 40,
            "output_tokens": 7,
            "cache_read_input_tokens": 60,
        },
    }


def test_encode_response_without_cache_or_id() -> None:
    response = ir.Response(
        id="",
        model="m",
        parts=[ir.Text("x")],
        stop_reason=ir.StopReason.STOP_SEQUENCE,
        stop_sequence="END",
        usage=ir.Usage(input_tokens=3, output_tokens=1),
    )
    data = json.loads(encode_response(response))
    assert data["id"].startswith("msg_")
    assert data["usage"] == {"input_tokens": 3, "output_tokens": 1}
    assert (data["stop_reason"], data["stop_sequence"]) == ("stop_sequence", "END")


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ("", {}),
        ('{"a": 1}', {"a": 1}),
        ('{"a": 1}}', {"a": 1}),
        ('{"a": "b', {"a": "b"}),
        ('{"a": [1, 2', {"a": [1, 2]}),
        ('{"a": 1}</tool_call>', {"a": 1}),
    ],
)
def test_tool_arguments_are_repaired(arguments: str, expected: dict[str, Any]) -> None:
    response = ir.Response(id="m", model="m", parts=[ir.ToolCall("c", "t", arguments)])
    assert json.loads(encode_response(response))["content"][0]["input"] == expected


@pytest.mark.parametrize("arguments", ["not json", "[1, 2]", '{"a":', "null"])
def test_unrepairable_tool_arguments_are_an_upstream_error(arguments: str) -> None:
    response = ir.Response(
        id="m", model="m", parts=[ir.ToolCall("c", "read", arguments)]
    )
    with pytest.raises(errors.UpstreamError, match="invalid tool arguments for `read`"):
        encode_response(response)


@pytest.mark.parametrize(
    ("error", "wire_type"),
    [
        (errors.InvalidRequest("bad"), "invalid_request_error"),
        (errors.AuthenticationFailed("who"), "authentication_error"),
        (errors.PermissionDenied("no"), "permission_error"),
        (errors.NotFound("gone"), "not_found_error"),
        (errors.PayloadTooLarge("big"), "request_too_large"),
        (errors.RateLimited("slow"), "rate_limit_error"),
        (errors.LMBridgeError("oops"), "api_error"),
        (errors.UpstreamError("up"), "api_error"),
        (errors.UpstreamUnavailable("down"), "api_error"),
        (errors.Timeout("late"), "api_error"),
        (errors.Overloaded("busy"), "overloaded_error"),
        (errors.Conflict("twice"), "invalid_request_error"),
    ],
)
def test_encode_error_types(error: errors.LMBridgeError, wire_type: str) -> None:
    data = json.loads(encode_error(error))
    assert data == {
        "type": "error",
        "error": {"type": wire_type, "message": error.message},
    }


def test_context_overflow_error() -> None:
    error = errors.ContextOverflow.for_prompt(9000, 8192, "qwen")
    data = json.loads(ANTHROPIC.encode_error(error))
    assert error.status == 400
    assert data["error"]["type"] == "invalid_request_error"
    assert data["error"]["message"].startswith("prompt is too long:")


# ---------------------------------------------------------- stream encoder

FULL_STREAM: list[ir.Event] = [
    ir.MessageStart("msg_up", "qwen3", input_tokens=50),
    ir.BlockStart(4, ir.BlockKind.THINKING),
    ir.ThinkingDelta(4, "let me think"),
    ir.SignatureDelta(4, "sig=="),
    ir.BlockStop(4),
    ir.Ping(),
    ir.BlockStart(7, ir.BlockKind.TEXT),
    ir.TextDelta(7, "Hello"),
    ir.TextDelta(7, " world"),
    ir.BlockStop(7),
    ir.BlockStart(9, ir.BlockKind.TOOL_CALL, "call_1", "read"),
    ir.ToolArgsDelta(9, '{"path":'),
    ir.ToolArgsDelta(9, ' "a.py"}'),
    ir.BlockStop(9),
    ir.Finish(ir.StopReason.TOOL_USE, ir.Usage(input_tokens=50, output_tokens=12)),
]


def test_stream_encoder_full_stream() -> None:
    events = parse_sse(encode_all(FULL_STREAM))
    validate_anthropic_stream(events)
    names = [name for name, _ in events]
    assert names == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = events[0][1]["message"]
    assert start["model"] == "claude-x"  # the name the client asked for
    assert start["id"] == "msg_up"
    assert start["usage"]["input_tokens"] == 50
    assert events[10][1]["content_block"] == {
        "type": "tool_use",
        "id": "call_1",
        "name": "read",
        "input": {},
    }
    assert [
        data["index"] for name, data in events if name == "content_block_start"
    ] == [0, 1, 2]
    assert events[3][1]["delta"] == {"type": "signature_delta", "signature": "sig=="}
    assert events[-2][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {"input_tokens": 50, "output_tokens": 12},
    }


def test_stream_encoder_frame_format() -> None:
    raw = encode_all(
        [
            ir.Ping(),
            ir.MessageStart("m", "x"),
            ir.Finish(ir.StopReason.END_TURN, ir.Usage()),
        ]
    )
    assert raw.startswith(
        b'event: ping\ndata: {"type":"ping"}\n\nevent: message_start\ndata: {'
    )
    assert raw.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')


def test_stream_encoder_error_mid_stream_ends_it() -> None:
    encoder = AnthropicStreamEncoder(model="m")
    upstream: list[ir.Event] = [
        ir.MessageStart("id", "m"),
        ir.BlockStart(0, ir.BlockKind.TEXT),
        ir.TextDelta(0, "partial"),
        ir.StreamError("overloaded", "upstream is busy", 529),
    ]
    raw = b"".join(encoder.encode(event) for event in upstream)
    events = parse_sse(raw)
    validate_anthropic_stream(events)
    assert events[-1] == (
        "error",
        {
            "type": "error",
            "error": {"type": "overloaded_error", "message": "upstream is busy"},
        },
    )
    assert encoder.encode(ir.TextDelta(0, "more")) == b""
    assert encoder.encode(ir.Finish(ir.StopReason.END_TURN, ir.Usage())) == b""
    assert encoder.close() == b""


def test_stream_encoder_missing_finish() -> None:
    encoder = AnthropicStreamEncoder(model="m")
    raw = encoder.encode(ir.MessageStart("id", "m"))
    raw += encoder.encode(ir.BlockStart(0, ir.BlockKind.TEXT))
    raw += encoder.encode(ir.TextDelta(0, "cut"))
    raw += encoder.close()
    events = parse_sse(raw)
    validate_anthropic_stream(events)
    assert events[-1][1]["error"]["type"] == "api_error"


def test_stream_encoder_context_overflow_error() -> None:
    raw = encode_all(
        [ir.StreamError("context_overflow", "prompt is too long: 9 > 8", 400)]
    )
    events = parse_sse(raw)
    validate_anthropic_stream(events)
    assert events == [
        (
            "error",
            {
                "type": "error",
                "error": {
                    "type": "invalid_request_error",
                    "message": "prompt is too long: 9 > 8",
                },
            },
        )
    ]


def test_stream_encoder_synthesizes_message_start_and_block_start() -> None:
    events = parse_sse(
        encode_all(
            [
                ir.TextDelta(3, "no start"),
                ir.Finish(
                    ir.StopReason.MAX_TOKENS, ir.Usage(input_tokens=5, output_tokens=2)
                ),
            ]
        )
    )
    validate_anthropic_stream(events)
    assert events[0][1]["message"]["id"].startswith("msg_")
    assert events[1][1]["content_block"] == {"type": "text", "text": ""}
    assert events[2][1]["delta"]["text"] == "no start"
    assert events[-2][1]["delta"]["stop_reason"] == "max_tokens"


def test_stream_encoder_serialises_interleaved_blocks() -> None:
    events = parse_sse(
        encode_all(
            [
                ir.MessageStart("id", "m"),
                ir.BlockStart(0, ir.BlockKind.TOOL_CALL, "a", "one"),
                ir.ToolArgsDelta(0, "{}"),
                ir.BlockStart(1, ir.BlockKind.TOOL_CALL, "b", "two"),
                ir.ToolArgsDelta(0, ""),  # late: block 0 was closed
                ir.ToolArgsDelta(1, '{"x": 1}'),
                ir.TextDelta(1, "kind mismatch"),
                ir.BlockStop(0),
                ir.BlockStop(1),
                ir.Finish(ir.StopReason.TOOL_USE, ir.Usage()),
            ]
        )
    )
    validate_anthropic_stream(events)
    assert [data["index"] for name, data in events if name == "content_block_stop"] == [
        0,
        1,
    ]


def test_stream_encoder_usage_falls_back_to_message_start() -> None:
    events = parse_sse(
        encode_all(
            [
                ir.MessageStart("id", "m", input_tokens=80),
                ir.Finish(
                    ir.StopReason.END_TURN, ir.Usage(output_tokens=3, cached_tokens=20)
                ),
            ]
        )
    )
    assert events[-2][1]["usage"] == {
        "input_tokens": 60,
        "output_tokens": 3,
        "cache_read_input_tokens": 20,
    }


def test_anthropic_sdk_reads_our_stream_and_response() -> None:
    """The official SDK accepts what we emit (served from memory, no server)."""
    stream_body = encode_all(FULL_STREAM)
    response = ir.Response(
        id="msg_9", model="m", parts=[ir.Text("whole")], usage=ir.Usage(4, 2)
    )

    try:  # recent SDKs ship their own fork of httpx
        import httpx2 as http
    except ImportError:
        import httpx as http  # type: ignore[no-redef]

    def handler(request: Any) -> Any:
        if json.loads(request.content).get("stream"):
            headers = {"content-type": "text/event-stream"}
            return http.Response(200, content=stream_body, headers=headers)
        headers = {"content-type": "application/json"}
        return http.Response(200, content=encode_response(response), headers=headers)

    transport = http.MockTransport(handler)
    client = anthropic.Anthropic(
        api_key="x", http_client=http.Client(transport=transport)
    )
    with client.messages.stream(
        model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        final = stream.get_final_message()
    assert [block.type for block in final.content] == ["thinking", "text", "tool_use"]
    assert final.content[1].text == "Hello world"  # type: ignore[union-attr]
    assert final.content[2].input == {"path": "a.py"}  # type: ignore[union-attr]
    assert final.stop_reason == "tool_use"
    assert final.usage.output_tokens == 12
    whole = client.messages.create(
        model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
    )
    assert whole.content[0].text == "whole"  # type: ignore[union-attr]
    client.close()


# --------------------------------------------------------- upstream request


def test_encode_request_basics() -> None:
    req = ir.Request(
        model="claude-x",
        messages=(
            ir.Message(ir.Role.USER, (ir.Text("a"),)),
            ir.Message(ir.Role.USER, (ir.Text("b"),)),
            ir.Message(ir.Role.ASSISTANT, (ir.Thinking("unsigned"), ir.Text("c"))),
        ),
        system=(ir.Text("sys"),),
        stop=("END",),
        seed=7,
        temperature=0.2,
        extras={"presence_penalty": 1},
    )
    data = json.loads(encode_request(req))
    assert data == {
        "model": "claude-x",
        "max_tokens": 4096,
        "stream": True,
        "system": "sys",
        "messages": [
            # Consecutive user messages merge; their texts join (ir.join_text).
            {"role": "user", "content": [{"type": "text", "text": "a\nb"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "c"}]},
        ],
        "temperature": 0.2,
        "stop_sequences": ["END"],
    }


def test_encode_request_tools_images_and_results() -> None:
    req = ir.Request(
        model="m",
        max_tokens=100,
        system=(ir.Text("one"), ir.Text("two")),
        tools=(
            ir.Tool(
                "read",
                "Read",
                {"type": "object", "properties": {"p": {"type": "string"}}},
            ),
            ir.Tool("ping"),
        ),
        tool_choice=ir.ToolChoice(ir.ToolChoiceMode.REQUIRED),
        parallel_tool_calls=False,
        messages=(
            ir.Message(
                ir.Role.USER,
                (
                    ir.Image(media_type="image/jpeg", data="QQ"),
                    ir.Image(url="data:image/webp;base64,UklG"),
                    ir.Image(url="https://x/i.png"),
                ),
            ),
            ir.Message(
                ir.Role.ASSISTANT,
                (
                    ir.ToolCall("t1", "read", '{"p": "x"'),
                    ir.ToolCall("t2", "ping", "garbage"),
                ),
            ),
            ir.Message(
                ir.Role.USER,
                (
                    ir.Text("and then"),
                    ir.ToolResult(
                        "t1",
                        (ir.Text("body"), ir.Image(media_type="image/png", data="AA")),
                        is_error=True,
                    ),
                    ir.ToolResult("t2"),
                ),
            ),
        ),
    )
    data = json.loads(encode_request(req))
    assert data["system"] == [
        {"type": "text", "text": "one"},
        {"type": "text", "text": "two"},
    ]
    assert data["tools"] == [
        {
            "name": "read",
            "input_schema": {"type": "object", "properties": {"p": {"type": "string"}}},
            "description": "Read",
        },
        {"name": "ping", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert data["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    images = data["messages"][0]["content"]
    assert [image["source"] for image in images] == [
        {"type": "base64", "media_type": "image/jpeg", "data": "QQ"},
        {"type": "base64", "media_type": "image/webp", "data": "UklG"},
        {"type": "url", "url": "https://x/i.png"},
    ]
    assert data["messages"][1]["content"] == [
        {"type": "tool_use", "id": "t1", "name": "read", "input": {"p": "x"}},
        {"type": "tool_use", "id": "t2", "name": "ping", "input": {}},
    ]
    assert data["messages"][2]["content"] == [
        {
            "type": "tool_result",
            "tool_use_id": "t1",
            "content": [
                {"type": "text", "text": "body"},
                {
                    "type": "image",
                    "source": {
                        "type": "base64",
                        "media_type": "image/png",
                        "data": "AA",
                    },
                },
            ],
            "is_error": True,
        },
        {"type": "tool_result", "tool_use_id": "t2"},
        {"type": "text", "text": "and then"},
    ]


@pytest.mark.parametrize(
    ("reasoning", "max_tokens", "thinking"),
    [
        (ir.Reasoning(effort="low"), 32000, {"type": "enabled", "budget_tokens": 2048}),
        (
            ir.Reasoning(effort="medium"),
            32000,
            {"type": "enabled", "budget_tokens": 8192},
        ),
        (
            ir.Reasoning(effort="high"),
            32000,
            {"type": "enabled", "budget_tokens": 24576},
        ),
        (
            ir.Reasoning(effort="high"),
            10000,
            {"type": "enabled", "budget_tokens": 9999},
        ),
        (
            ir.Reasoning(budget_tokens=5000),
            32000,
            {"type": "enabled", "budget_tokens": 5000},
        ),
        (
            ir.Reasoning(budget_tokens=100),
            32000,
            {"type": "enabled", "budget_tokens": 1024},
        ),
        (ir.Reasoning(effort="medium"), 1000, None),
        (ir.Reasoning(effort="none"), 32000, None),
        (None, 32000, None),
    ],
)
def test_encode_request_thinking(
    reasoning: ir.Reasoning | None, max_tokens: int, thinking: dict[str, Any] | None
) -> None:
    req = ir.Request(model="m", messages=(), max_tokens=max_tokens, reasoning=reasoning)
    assert json.loads(encode_request(req)).get("thinking") == thinking


def test_tool_choice_modes_upstream() -> None:
    tools = (ir.Tool("read"),)
    for mode, wire_choice in [
        (ir.ToolChoice(ir.ToolChoiceMode.AUTO), {"type": "auto"}),
        (ir.ToolChoice(ir.ToolChoiceMode.NONE), {"type": "none"}),
        (
            ir.ToolChoice(ir.ToolChoiceMode.TOOL, "read"),
            {"type": "tool", "name": "read"},
        ),
        (None, None),
    ]:
        req = ir.Request(model="m", messages=(), tools=tools, tool_choice=mode)
        assert json.loads(encode_request(req)).get("tool_choice") == wire_choice
    req = ir.Request(model="m", messages=(), tools=tools, parallel_tool_calls=False)
    assert json.loads(encode_request(req))["tool_choice"] == {
        "type": "auto",
        "disable_parallel_tool_use": True,
    }


ROUND_TRIP_BODY: dict[str, Any] = {
    "model": "claude-x",
    "max_tokens": 2000,
    "system": [
        {"type": "text", "text": "sys one"},
        {"type": "text", "text": "sys two"},
    ],
    "messages": [
        user(
            {"type": "text", "text": "look"},
            {
                "type": "image",
                "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"},
            },
            {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
        ),
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "plan", "signature": "sig"},
                {"type": "redacted_thinking", "data": "opaque"},
                {"type": "text", "text": "calling"},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "read",
                    "input": {"path": "a", "deep": {"x": [1, None, True]}},
                },
            ],
        },
        user(
            {
                "type": "tool_result",
                "tool_use_id": "toolu_1",
                "content": [{"type": "text", "text": "contents"}],
                "is_error": True,
            },
            {"type": "text", "text": "thanks"},
        ),
    ],
    "tools": [
        {
            "name": "read",
            "description": "Read a file",
            "input_schema": {
                "type": "object",
                "properties": {"path": {"type": "string"}},
            },
        }
    ],
    "tool_choice": {"type": "tool", "name": "read", "disable_parallel_tool_use": True},
    "temperature": 0.7,
    "top_p": 0.95,
    "top_k": 20,
    "stop_sequences": ["END"],
    "thinking": {"type": "enabled", "budget_tokens": 1500},
    "stream": True,
}


def _canonical(req: ir.Request) -> ir.Request:
    """`req` with tool arguments normalised (JSON text may differ in spacing)."""
    messages = tuple(
        ir.Message(
            m.role,
            tuple(
                msgspec.structs.replace(
                    p, arguments=json.dumps(json.loads(p.arguments), sort_keys=True)
                )
                if isinstance(p, ir.ToolCall)
                else p
                for p in m.parts
            ),
        )
        for m in req.messages
    )
    return msgspec.structs.replace(req, messages=messages)


def test_round_trip_parse_encode_parse() -> None:
    first = parse_request(json.dumps(ROUND_TRIP_BODY).encode())
    second = parse_request(encode_request(first))
    assert _canonical(second) == _canonical(first)
    assert first.reasoning == ir.Reasoning(budget_tokens=1500)
    assert first.parallel_tool_calls is False


# ----------------------------------------------------------- stream decoder

UPSTREAM_SSE = b"""event: message_start
data: {"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","content":[],"model":"claude-x","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_read_input_tokens":10,"cache_creation_input_tokens":5,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQB"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"redacted_thinking","data":"xyz"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: content_block_start
data: {"type":"content_block_start","index":2,"content_block":{"type":"text","text":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"text_delta","text":"Hi \xc3\xa9"}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"citations_delta","citation":{}}}

event: content_block_stop
data: {"type":"content_block_stop","index":2}

event: content_block_start
data: {"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"{\\"location\\": \\"Paris\\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":3}

event: some_future_event
data: {"type":"some_future_event","x":1}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}

event: message_stop
data: {"type":"message_stop"}

"""

UPSTREAM_EVENTS: list[ir.Event] = [
    ir.MessageStart("msg_01", "claude-x", input_tokens=40),
    ir.BlockStart(0, ir.BlockKind.THINKING),
    ir.Ping(),
    ir.ThinkingDelta(0, "hmm"),
    ir.SignatureDelta(0, "EqQB"),
    ir.BlockStop(0),
    ir.BlockStart(1, ir.BlockKind.TEXT),
    ir.TextDelta(1, "Hi é"),
    ir.BlockStop(1),
    ir.BlockStart(2, ir.BlockKind.TOOL_CALL, "toolu_1", "get_weather"),
    ir.ToolArgsDelta(2, '{"location": "Paris"}'),
    ir.BlockStop(2),
    ir.Finish(
        ir.StopReason.TOOL_USE,
        ir.Usage(input_tokens=40, output_tokens=89, cached_tokens=10),
    ),
]


def test_stream_decoder_reads_a_real_stream() -> None:
    decoder = ANTHROPIC.stream_decoder(parse_request(body()))
    events = decoder.feed(UPSTREAM_SSE) + decoder.close()
    assert events == UPSTREAM_EVENTS


def test_stream_decoder_byte_by_byte_equals_at_once() -> None:
    decoder = AnthropicStreamDecoder()
    events: list[ir.Event] = []
    for i in range(len(UPSTREAM_SSE)):
        events += decoder.feed(UPSTREAM_SSE[i : i + 1])
    events += decoder.close()
    assert events == UPSTREAM_EVENTS


def test_stream_decoder_crlf() -> None:
    decoder = AnthropicStreamDecoder()
    assert (
        decoder.feed(UPSTREAM_SSE.replace(b"\n", b"\r\n")) + decoder.close()
        == UPSTREAM_EVENTS
    )


def test_stream_decoder_early_close() -> None:
    decoder = AnthropicStreamDecoder()
    cut = UPSTREAM_SSE[: UPSTREAM_SSE.index(b"event: message_delta")]
    events = decoder.feed(cut)
    assert not any(isinstance(e, ir.Finish | ir.StreamError) for e in events)
    tail = decoder.close()
    assert tail == [
        ir.StreamError("upstream_error", "upstream closed the stream early")
    ]
    assert decoder.close() == []


def test_stream_decoder_last_event_without_blank_line() -> None:
    decoder = AnthropicStreamDecoder()
    events = decoder.feed(UPSTREAM_SSE.rstrip(b"\n")) + decoder.close()
    assert events == UPSTREAM_EVENTS


@pytest.mark.parametrize(
    ("error_type", "kind", "status"),
    [
        ("overloaded_error", "overloaded", 529),
        ("rate_limit_error", "rate_limit", 429),
        ("api_error", "upstream_error", 502),
        ("invalid_request_error", "invalid_request", 400),
        ("mystery_error", "upstream_error", 502),
    ],
)
def test_stream_decoder_error_event(error_type: str, kind: str, status: int) -> None:
    decoder = AnthropicStreamDecoder()
    raw = (
        b'event: message_start\ndata: {"type":"message_start","message":{"id":"m","model":"x","usage":{"input_tokens":1}}}\n\n'
        b'event: error\ndata: {"type":"error","error":{"type":"'
        + error_type.encode()
        + b'","message":"Overloaded"}}\n\n'
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )
    events = decoder.feed(raw)
    assert events[-1] == ir.StreamError(kind, "Overloaded", status)
    assert decoder.close() == []


def test_stream_decoder_prompt_too_long_error() -> None:
    decoder = AnthropicStreamDecoder()
    raw = b'event: error\ndata: {"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 300000 tokens > 200000 maximum"}}\n\n'
    [event] = decoder.feed(raw)
    assert isinstance(event, ir.StreamError)
    assert (event.kind, event.status) == ("context_overflow", 400)


@pytest.mark.parametrize(
    "data",
    [
        b"{not json",
        b"[1, 2]",
        b'{"type": 5}',
        b'{"type":"content_block_start","index":"x"}',
    ],
)
def test_stream_decoder_garbage_is_a_stream_error(data: bytes) -> None:
    decoder = AnthropicStreamDecoder()
    events = decoder.feed(
        b"event: message_start\ndata: " + data + b"\n\n" + UPSTREAM_SSE
    )
    assert len(events) == 1
    assert isinstance(events[0], ir.StreamError)
    assert events[0].kind == "upstream_error"
    assert decoder.feed(UPSTREAM_SSE) == []
    assert decoder.close() == []


def test_encoder_then_decoder_gives_back_the_events() -> None:
    decoder = AnthropicStreamDecoder()
    events = decoder.feed(encode_all(FULL_STREAM)) + decoder.close()
    assert events == [
        ir.MessageStart("msg_up", "claude-x", input_tokens=50),
        ir.BlockStart(0, ir.BlockKind.THINKING),
        ir.ThinkingDelta(0, "let me think"),
        ir.SignatureDelta(0, "sig=="),
        ir.BlockStop(0),
        ir.Ping(),
        ir.BlockStart(1, ir.BlockKind.TEXT),
        ir.TextDelta(1, "Hello"),
        ir.TextDelta(1, " world"),
        ir.BlockStop(1),
        ir.BlockStart(2, ir.BlockKind.TOOL_CALL, "call_1", "read"),
        ir.ToolArgsDelta(2, '{"path":'),
        ir.ToolArgsDelta(2, ' "a.py"}'),
        ir.BlockStop(2),
        ir.Finish(ir.StopReason.TOOL_USE, ir.Usage(input_tokens=50, output_tokens=12)),
    ]


@pytest.mark.parametrize(
    ("status", "payload", "cls", "message"),
    [
        (
            429,
            b'{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}',
            errors.RateLimited,
            "slow down",
        ),
        (
            529,
            b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
            errors.Overloaded,
            "Overloaded",
        ),
        (
            400,
            b'{"error":"Model not loaded"}',
            errors.InvalidRequest,
            "Model not loaded",
        ),
        (
            404,
            b'{"error":{"message":"no such model"}}',
            errors.NotFound,
            "no such model",
        ),
        (500, b"<html>Internal</html>", errors.UpstreamError, "<html>Internal</html>"),
        (503, b"", errors.UpstreamUnavailable, "the upstream answered HTTP 503"),
        (502, b"x" * 2000, errors.UpstreamError, "x" * 500),
        (
            400,
            b'{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 9 tokens > 8 maximum"}}',
            errors.ContextOverflow,
            "prompt is too long: 9 tokens > 8 maximum",
        ),
    ],
)
def test_parse_error(
    status: int, payload: bytes, cls: type[errors.LMBridgeError], message: str
) -> None:
    error = ANTHROPIC.parse_error(status, payload)
    assert type(error) is cls
    assert error.status == status
    assert error.message == message


def test_codec_object() -> None:
    assert (ANTHROPIC.name, ANTHROPIC.wire.path) == ("anthropic", "/v1/messages")
    req = ANTHROPIC.parse_request(body())
    assert json.loads(ANTHROPIC.encode_request(req))["stream"] is True
    assert ANTHROPIC.stream_encoder(req).content_type == "text/event-stream"
    assert (
        json.loads(ANTHROPIC.encode_response(ir.Response(id="a", model="b", parts=[])))[
            "content"
        ]
        == []
    )
    assert parse_error(400, b"") is not None


# --------------------------------------------------------------- hypothesis

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
block_types = st.sampled_from(
    [
        "text",
        "image",
        "tool_use",
        "tool_result",
        "thinking",
        "redacted_thinking",
        "document",
        "search_result",
        "server_tool_use",
        "x",
    ]
)
blocks = st.fixed_dictionaries(
    {"type": block_types},
    optional={
        "text": json_values,
        "source": st.fixed_dictionaries(
            {
                "type": st.sampled_from(["base64", "url", "text", "content", "file"])
                | json_values
            },
            optional={
                "media_type": json_values,
                "data": json_values,
                "url": json_values,
                "content": json_values,
            },
        )
        | json_values,
        "id": json_values,
        "name": json_values,
        "input": json_values,
        "tool_use_id": json_values,
        "content": json_values
        | st.lists(
            st.fixed_dictionaries({"type": block_types, "text": json_values}),
            max_size=3,
        ),
        "is_error": json_values,
        "thinking": json_values,
        "signature": json_values,
        "data": json_values,
    },
)
plausible_bodies = st.fixed_dictionaries(
    {},
    optional={
        "model": st.text(max_size=10) | json_values,
        "max_tokens": st.integers(-5, 10_000) | json_values,
        "messages": st.lists(
            st.fixed_dictionaries(
                {
                    "role": st.sampled_from(["user", "assistant", "system", "tool"])
                    | json_values
                },
                optional={
                    "content": st.text(max_size=10)
                    | st.lists(blocks, max_size=4)
                    | json_values
                },
            ),
            max_size=4,
        )
        | json_values,
        "system": st.text(max_size=10)
        | st.lists(
            st.fixed_dictionaries({"type": st.just("text"), "text": json_values})
        )
        | json_values,
        "tools": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "name": json_values,
                    "type": st.sampled_from(["custom", "web_search_20250305"])
                    | json_values,
                    "input_schema": json_values,
                    "defer_loading": json_values,
                },
            ),
            max_size=3,
        )
        | json_values,
        "tool_choice": st.fixed_dictionaries(
            {"type": st.sampled_from(["auto", "any", "tool", "none"]) | json_values},
            optional={"name": json_values, "disable_parallel_tool_use": json_values},
        )
        | json_values,
        "thinking": st.fixed_dictionaries(
            {
                "type": st.sampled_from(["enabled", "adaptive", "disabled"])
                | json_values
            },
            optional={"budget_tokens": json_values},
        )
        | json_values,
        "metadata": st.fixed_dictionaries(
            {}, optional={"user_id": st.text(max_size=30) | json_values}
        )
        | json_values,
        "stop_sequences": json_values,
        "temperature": json_values,
        "stream": json_values,
    },
)


def _parse_or_invalid(raw: bytes) -> None:
    """Either a request or InvalidRequest; any other exception fails the test."""
    try:
        result = parse_request(raw)
    except errors.InvalidRequest as error:
        assert error.message
        return
    assert isinstance(result, ir.Request)


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_random_bytes_parse_or_invalid(raw: bytes) -> None:
    _parse_or_invalid(raw)


@settings(max_examples=300)
@given(json_values)
def test_random_json_parse_or_invalid(value: Any) -> None:
    _parse_or_invalid(json.dumps(value).encode())


@settings(max_examples=300)
@given(plausible_bodies)
def test_plausible_bodies_parse_or_invalid(value: dict[str, Any]) -> None:
    _parse_or_invalid(json.dumps(value).encode())


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=60), max_size=8))
def test_stream_decoder_never_raises_on_random_bytes(chunks: list[bytes]) -> None:
    decoder = AnthropicStreamDecoder()
    for chunk in chunks:
        decoder.feed(chunk)
    events = decoder.close()
    assert (
        events == []
        or isinstance(events[-1], ir.StreamError | ir.Finish)
        or decoder.close() == []
    )


sse_names = st.sampled_from(
    [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
        "ping",
        "error",
    ]
)


@settings(max_examples=300)
@given(st.lists(st.tuples(sse_names, sse_names, json_values), max_size=8))
def test_stream_decoder_never_raises_on_plausible_events(
    frames: list[tuple[str, str, Any]],
) -> None:
    decoder = AnthropicStreamDecoder()
    raw = b"".join(
        f"event: {name}\ndata: {json.dumps({'type': kind, 'index': 0, 'message': value, 'content_block': value, 'delta': value, 'usage': value, 'error': value})}\n\n".encode()
        for name, kind, value in frames
    )
    events = decoder.feed(raw) + decoder.close()
    assert isinstance(events[-1], ir.Finish | ir.StreamError)


@settings(max_examples=300)
@given(
    st.lists(
        st.one_of(
            st.builds(
                ir.BlockStart,
                st.integers(0, 3),
                st.sampled_from(list(ir.BlockKind)),
                st.text(max_size=3),
                st.text(max_size=3),
            ),
            st.builds(ir.TextDelta, st.integers(0, 3), st.text(max_size=5)),
            st.builds(ir.ThinkingDelta, st.integers(0, 3), st.text(max_size=5)),
            st.builds(ir.SignatureDelta, st.integers(0, 3), st.text(max_size=5)),
            # Empty: arbitrary event orders may repeat a delta, and
            # repeated pieces of one JSON object are not one JSON object.
            st.builds(ir.ToolArgsDelta, st.integers(0, 3), st.just("")),
            st.builds(ir.BlockStop, st.integers(0, 3)),
            st.just(ir.Ping()),
            st.builds(
                ir.MessageStart,
                st.text(max_size=3),
                st.text(max_size=3),
                st.integers(0, 100),
            ),
        ),
        max_size=12,
    ),
    st.sampled_from(["finish", "error", "close"]),
)
def test_stream_encoder_always_valid(events: list[ir.Event], ending: str) -> None:
    encoder = AnthropicStreamEncoder(model="m")
    raw = b"".join(encoder.encode(event) for event in events)
    if ending == "finish":
        raw += encoder.encode(ir.Finish(ir.StopReason.END_TURN, ir.Usage()))
    elif ending == "error":
        raw += encoder.encode(ir.StreamError("upstream_error", "boom"))
    raw += encoder.close()
    validate_anthropic_stream(parse_sse(raw))
