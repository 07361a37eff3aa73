"""The OpenAI Responses codec in both directions, without a server.

The stream encoder's output is checked against the official `openai` SDK:
every event by the SDK's own event model, whole streams by the SDK's stream
helper (over an in-memory httpx transport), and by `validate_responses_stream`
for the ordering the grammar demands.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, get_args

import httpx2
import openai
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.responses import Response, ResponseStreamEvent
from openai.types.responses.response_create_params import (
    ResponseCreateParamsStreaming,
)

from lmbridge.core import errors, ir
from lmbridge.core.assemble import Assembler
from lmbridge.protocols.base import FrontDoor, UpstreamCodec
from lmbridge.protocols.carry import normal_form
from lmbridge.protocols.openai_responses import (
    RESPONSES,
    ResponsesStreamDecoder,
    ResponsesStreamEncoder,
)
from validators import validate_responses_stream

# ------------------------------------------------------------------ helpers

_EVENT_UNION = get_args(ResponseStreamEvent)[0]
SDK_EVENTS: dict[str, type[pydantic.BaseModel]] = {
    get_args(cls.model_fields["type"].annotation)[0]: cls
    for cls in get_args(_EVENT_UNION)
}
GENERATED = re.compile(r"^[a-z]+_[0-9a-f]{48}$")
CREATE_PARAMS = pydantic.TypeAdapter(ResponseCreateParamsStreaming)


def parse(body: dict[str, Any]) -> ir.Request:
    return RESPONSES.parse_request(json.dumps(body).encode())


def invalid(body: dict[str, Any] | bytes) -> errors.InvalidRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(errors.InvalidRequest) as caught:
        RESPONSES.parse_request(raw)
    return caught.value


def frames(data: bytes) -> list[dict[str, Any]]:
    """SSE frames as JSON objects; checks `event:` names the data's type."""
    out: list[dict[str, Any]] = []
    for block in data.decode().split("\n\n"):
        if not block or block.startswith(":"):
            continue
        lines = block.split("\n")
        assert lines[0].startswith("event: "), block
        assert lines[1].startswith("data: "), block
        payload = json.loads(lines[1][len("data: ") :])
        assert payload["type"] == lines[0][len("event: ") :]
        out.append(payload)
    return out


def sse(*events: dict[str, Any]) -> bytes:
    """An upstream Responses stream made of `events`."""
    return b"".join(
        f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events
    )


def encode_all(events: list[ir.Event], request: ir.Request | None = None) -> bytes:
    encoder = RESPONSES.stream_encoder(request or REQUEST)
    return b"".join(encoder.encode(e) for e in events)


def check_sdk_events(events: list[dict[str, Any]]) -> None:
    """Every event parses as the SDK's model for its type.

    The SDK's `ResponseError.code` list lacks `context_length_exceeded`,
    which OpenAI sends and Codex CLI keys on; that one code is swapped for
    a listed one before the check.
    """
    for event in events:
        error = event.get("response", {}).get("error") or {}
        if error.get("code") == "context_length_exceeded":
            event = json.loads(json.dumps(event))
            event["response"]["error"]["code"] = "server_error"
        SDK_EVENTS[event["type"]].model_validate(event)


def sdk_client(body: bytes, content_type: str) -> openai.OpenAI:
    """An SDK client whose transport answers every request with `body`."""

    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            200, content=body, headers={"content-type": content_type}
        )

    transport = httpx2.Client(transport=httpx2.MockTransport(answer))
    return openai.OpenAI(
        api_key="k", base_url="http://bridge/v1", http_client=transport
    )


REQUEST = ir.Request(
    model="gpt-test",
    messages=(ir.Message(ir.Role.USER, (ir.Text("hi"),)),),
    tools=(ir.Tool("read", "Read a file", {"type": "object"}),),
    stream=True,
)

# ------------------------------------------------------- codec protocol shape


def test_responses_satisfies_both_codec_protocols() -> None:
    front: FrontDoor = RESPONSES
    upstream: UpstreamCodec = RESPONSES
    assert front.name == upstream.name == "responses"
    assert upstream.wire.path == "/v1/responses"
    assert RESPONSES.stream_encoder(REQUEST).content_type == "text/event-stream"


# ------------------------------------------------------------ parse_request


CODEX_LIKE = {
    "model": "gpt-5-codex",
    "instructions": "You are Codex.",
    "input": [
        {"type": "message", "role": "developer", "content": "Sandbox: on."},
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "Look:"},
                {"type": "input_image", "image_url": "data:image/jpeg;base64,QUJD"},
                {"type": "input_image", "image_url": "https://x.test/a.png"},
            ],
        },
        {"role": "user", "content": "and fix it"},
        {
            "type": "reasoning",
            "id": "rs_1",
            "summary": [
                {"type": "summary_text", "text": "Plan"},
                {"type": "summary_text", "text": "Act"},
            ],
            "encrypted_content": "ENC",
        },
        {"type": "function_call", "call_id": "c1", "name": "shell", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "ok"},
        {
            "type": "function_call_output",
            "call_id": "c2",
            "output": [
                {"type": "input_text", "text": "see"},
                {"type": "input_image", "image_url": "data:image/png;base64,AA=="},
            ],
        },
        {
            "type": "message",
            "role": "assistant",
            "content": [
                {"type": "output_text", "text": "Done.", "annotations": []},
                {"type": "refusal", "refusal": "No more."},
            ],
        },
        {"role": "system", "content": [{"type": "input_text", "text": "Late rule."}]},
    ],
    "tools": [
        {
            "type": "function",
            "name": "shell",
            "description": "Run",
            "parameters": {"type": "object", "properties": {}},
            "strict": True,
        },
        {"type": "function", "name": "plan"},
        {"type": "web_search_preview"},
        {"type": "custom", "name": "apply_patch"},
        {"type": "local_shell"},
    ],
    "tool_choice": "auto",
    "parallel_tool_calls": False,
    "max_output_tokens": 1000,
    "temperature": 0.5,
    "top_p": 0.9,
    "reasoning": {"effort": "high", "summary": "auto"},
    "stream": True,
    "store": False,
    "include": ["reasoning.encrypted_content"],
    "prompt_cache_key": "session-1",
    "previous_response_id": "resp_prev",
    "user": "u1",
    "metadata": {"k": "v"},
    "client_metadata": {"x": 1},
    "truncation": "auto",
    "service_tier": "auto",
    "text": {
        "format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}}
    },
}


def test_parse_codex_like_request() -> None:
    request = parse(CODEX_LIKE)
    assert request.model == "gpt-5-codex"
    assert [t.text for t in request.system] == ["You are Codex.", "Sandbox: on."]
    user, assistant, results, answer, late = request.messages
    # A system message after the first other item stays in place.
    assert late == ir.Message(ir.Role.SYSTEM, (ir.Text("Late rule."),))
    assert user.role is ir.Role.USER
    assert user.parts == (
        ir.Text("Look:"),
        ir.Image(media_type="image/jpeg", data="QUJD"),
        ir.Image(url="https://x.test/a.png"),
        ir.Text("and fix it"),
    )
    assert assistant.role is ir.Role.ASSISTANT
    assert assistant.parts == (
        ir.Thinking(text="Plan\n\nAct", data="ENC"),
        ir.ToolCall("c1", "shell", "{}"),
    )
    assert results.role is ir.Role.USER
    assert results.parts == (
        ir.ToolResult("c1", (ir.Text("ok"),)),
        ir.ToolResult(
            "c2", (ir.Text("see"), ir.Image(media_type="image/png", data="AA=="))
        ),
    )
    assert answer.parts == (ir.Text("Done."), ir.Text("No more."))
    assert [t.name for t in request.tools] == ["shell", "plan", "apply_patch"]
    assert request.tools[2].kind is ir.ToolKind.CUSTOM
    assert request.tools[1].parameters == {"type": "object", "properties": {}}
    assert request.tool_choice == ir.ToolChoice(ir.ToolChoiceMode.AUTO)
    assert request.parallel_tool_calls is False
    assert request.max_tokens == 1000
    assert request.temperature == 0.5
    assert request.top_p == 0.9
    assert request.reasoning == ir.Reasoning(effort="high")
    assert request.stream is True
    assert request.client.session_key == "session-1"
    assert request.extras == {
        "previous_response_id": "resp_prev",
        "store": False,
        "prompt_cache_key": "session-1",
        "user": "u1",
    }
    assert request.output_format == ir.OutputFormat(
        "json_schema", {"type": "object"}, "out"
    )
    # Web search is the pipeline's to offer or drop (server/websearch.py).
    assert request.dropped == ("tools[4]: type 'local_shell' is not carried",)
    assert request.web_search == ir.WebSearchTool("web_search_preview")


def test_string_input_and_user_as_session_key() -> None:
    request = parse({"model": "m", "input": "hello", "user": "u7"})
    assert request.messages == (ir.Message(ir.Role.USER, (ir.Text("hello"),)),)
    assert request.client.session_key == "u7"
    assert request.stream is False
    assert request.tool_choice is None


def test_consecutive_items_of_a_role_merge() -> None:
    request = parse(
        {
            "model": "m",
            "input": [
                {"role": "user", "content": "a"},
                {"role": "developer", "content": "rule"},
                {"role": "user", "content": "b"},
                {"role": "assistant", "content": "c"},
                {"type": "function_call", "call_id": "x", "name": "f", "arguments": ""},
            ],
        }
    )
    assert [m.role for m in request.messages] == [
        ir.Role.USER,
        ir.Role.SYSTEM,  # in place, so the start of the prompt stays put
        ir.Role.USER,
        ir.Role.ASSISTANT,
    ]
    assert request.messages[2].parts == (ir.Text("b"),)
    assert request.messages[3].parts == (ir.Text("c"), ir.ToolCall("x", "f", "{}"))


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", ir.ToolChoice(ir.ToolChoiceMode.AUTO)),
        ("required", ir.ToolChoice(ir.ToolChoiceMode.REQUIRED)),
        ("none", ir.ToolChoice(ir.ToolChoiceMode.NONE)),
        (
            {"type": "function", "name": "f"},
            ir.ToolChoice(ir.ToolChoiceMode.TOOL, "f"),
        ),
        (
            {"type": "allowed_tools", "mode": "required", "tools": []},
            ir.ToolChoice(ir.ToolChoiceMode.REQUIRED),
        ),
        ({"type": "web_search_preview"}, ir.ToolChoice(ir.ToolChoiceMode.AUTO)),
    ],
)
def test_tool_choice(choice: Any, expected: ir.ToolChoice) -> None:
    assert parse({"model": "m", "input": "x", "tool_choice": choice}).tool_choice == (
        expected
    )


def test_reasoning_item_with_raw_reasoning_text() -> None:
    request = parse(
        {
            "model": "m",
            "input": [
                {
                    "type": "reasoning",
                    "summary": [],
                    "content": [{"type": "reasoning_text", "text": "hmm"}],
                }
            ],
        }
    )
    assert request.messages[0].parts == (ir.Thinking(text="hmm"),)


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        (b"{not json", None, "not valid JSON"),
        (b"\xff\xfe", None, "invalid request body"),
        (b"[1, 2]", None, "Expected `object`"),
        ({"input": "x"}, None, "`model`"),
        ({"model": ""}, "model", "model"),
        ({"model": 5}, "model", "Expected `str`"),
        ({"model": "m", "input": 5}, "input", "$.input"),
        (
            {"model": "m", "input": [{"role": "user", "content": 5}]},
            "input[0].content",
            "$.input[0].content",
        ),
        (
            {
                "model": "m",
                "input": [{"type": "message", "role": "robot", "content": ""}],
            },
            "input[0].role",
            "$.input[0].role",
        ),
        (
            {"model": "m", "input": ["text"]},
            "input[0]",
            "$.input[0]",
        ),
        (
            {
                "model": "m",
                "input": [
                    {
                        "type": "function_call",
                        "call_id": "c",
                        "name": "f",
                        "arguments": {},
                    }
                ],
            },
            "input[0].arguments",
            "$.input[0].arguments",
        ),
        (
            {
                "model": "m",
                "input": [
                    {
                        "role": "user",
                        "content": [{"type": "input_image", "file_id": "file_1"}],
                    }
                ],
            },
            "input[0].content[0].file_id",
            "file_id",
        ),
        (
            {
                "model": "m",
                "input": [
                    {
                        "role": "user",
                        "content": [{"type": "input_file", "file_data": "x"}],
                    }
                ],
            },
            "input[0].content[0]",
            "input_file",
        ),
        (
            {
                "model": "m",
                "input": [
                    {
                        "type": "function_call_output",
                        "call_id": "c",
                        "output": [{"type": "input_image", "file_id": "f"}],
                    }
                ],
            },
            "input[0].output[0].file_id",
            "file_id",
        ),
        (
            {
                "model": "m",
                "input": [
                    {
                        "role": "user",
                        "content": [{"type": "input_image", "image_url": "ftp://x"}],
                    }
                ],
            },
            "input[0].content[0].image_url",
            "http(s)",
        ),
        (
            {
                "model": "m",
                "input": [
                    {
                        "role": "assistant",
                        "content": [
                            {"type": "input_image", "image_url": "https://x.test/i"}
                        ],
                    }
                ],
            },
            "input[0].content[0]",
            "user messages",
        ),
        (
            {"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]},
            "input[0].type",
            "item references",
        ),
        ({"model": "m", "input": [{"id": "msg_1"}]}, "input[0].id", "item references"),
        (
            {"model": "m", "input": [{"type": "computer_call_output"}]},
            "input[0].type",
            "computer_call_output",
        ),
        ({"model": "m", "tools": [{"name": "f"}]}, "tools[0]", "`type`"),
        ({"model": "m", "tools": [{"type": "function"}]}, "tools[0]", "`name`"),
        (
            {"model": "m", "input": "x", "tool_choice": "always"},
            "tool_choice",
            "tool_choice",
        ),
        (
            {"model": "m", "input": "x", "tool_choice": {"type": "function"}},
            "tool_choice.name",
            "name",
        ),
        ({"model": "m"}, "input", "at least one item"),
        ({"model": "m", "input": []}, "input", "at least one item"),
        ({"model": "m", "input": ""}, "input", "at least one item"),
        ({"model": "m", "max_output_tokens": 2**70}, "max_output_tokens", "<="),
        (
            {"model": "m", "input": "x", "text": {"format": {"type": "json_schema"}}},
            "text.format.schema",
            "schema",
        ),
        ({"model": "m", "max_output_tokens": 0}, "max_output_tokens", ">= 1"),
        ({"model": "m", "temperature": 3}, "temperature", "<= 2"),
        ({"model": "m", "stream": "yes"}, "stream", "Expected `bool"),
        ({"model": "m", "reasoning": {"effort": 3}}, "reasoning.effort", "effort"),
        (
            {"model": "m", "text": {"format": {"type": "xml"}}},
            "text.format.type",
            "xml",
        ),
    ],
)
def test_invalid_requests_name_the_field(
    body: dict[str, Any] | bytes, param: str | None, words: str
) -> None:
    error = invalid(body)
    assert words in error.message
    assert error.status == 400
    if param is not None:
        assert error.param == param
        assert f"`$.{param}`" in error.message


# ------------------------------------------------------------ whole responses


def test_encode_response_is_an_sdk_response() -> None:
    response = ir.Response(
        id="msg_anthropic_1",
        model="qwen",
        parts=[
            ir.Thinking(text="think", data="ENC"),
            ir.Text("Hello"),
            ir.ToolCall("call_1", "read", '{"p":1}'),
            ir.Thinking(text="signed", signature="sig"),
            ir.Thinking(redacted=True, data="anthropic-opaque"),
        ],
        stop_reason=ir.StopReason.TOOL_USE,
        usage=ir.Usage(10, 5, cached_tokens=3, reasoning_tokens=2),
    )
    body = json.loads(RESPONSES.encode_response(response))
    parsed = Response.model_validate(body)
    assert parsed.id.startswith("resp_")
    assert parsed.status == "completed"
    assert parsed.output_text == "Hello"
    kinds = [item.type for item in parsed.output]
    assert kinds == ["reasoning", "message", "function_call", "reasoning"]
    reasoning, message, call, signed = body["output"]
    assert reasoning["summary"] == [{"type": "summary_text", "text": "think"}]
    assert reasoning["encrypted_content"] == "ENC"
    assert reasoning["id"].startswith("rs_")
    assert message["id"].startswith("msg_")
    assert message["content"] == [
        {"type": "output_text", "text": "Hello", "annotations": []}
    ]
    assert call["id"].startswith("fc_")
    assert (call["call_id"], call["name"], call["arguments"]) == (
        "call_1",
        "read",
        '{"p":1}',
    )
    assert signed["encrypted_content"] is None  # Anthropic signatures stay home
    assert body["usage"] == {
        "input_tokens": 10,
        "output_tokens": 5,
        "total_tokens": 15,
        "input_tokens_details": {"cached_tokens": 3, "cache_write_tokens": 0},
        "output_tokens_details": {"reasoning_tokens": 2},
    }
    assert body["tools"] == [] and body["tool_choice"] == "auto"
    assert body["parallel_tool_calls"] is True


def test_encode_response_max_tokens_is_incomplete_and_keeps_resp_id() -> None:
    response = ir.Response(
        "resp_abc", "m", [ir.Text("cut")], stop_reason=ir.StopReason.MAX_TOKENS
    )
    body = json.loads(RESPONSES.encode_response(response))
    assert body["id"] == "resp_abc"
    assert body["status"] == "incomplete"
    assert body["incomplete_details"] == {"reason": "max_output_tokens"}
    Response.model_validate(body)


def test_sdk_client_parses_a_whole_response() -> None:
    body = RESPONSES.encode_response(ir.Response("resp_1", "m", [ir.Text("Hi!")]))
    with sdk_client(body, "application/json") as client:
        response = client.responses.create(model="m", input="hello")
    assert response.id == "resp_1"
    assert response.output_text == "Hi!"
    assert response.usage is not None and response.usage.total_tokens == 0


# ------------------------------------------------------------ stream encoder


FULL_STREAM: list[ir.Event] = [
    ir.MessageStart("msg_1", "qwen", input_tokens=12),
    ir.Ping(),
    ir.BlockStart(0, ir.BlockKind.THINKING),
    ir.ThinkingDelta(0, "Let me "),
    ir.ThinkingDelta(0, "think."),
    ir.SignatureDelta(0, "sig"),
    ir.BlockStop(0),
    ir.BlockStart(1, ir.BlockKind.TEXT),
    ir.TextDelta(1, "Hel"),
    ir.TextDelta(1, "lo"),
    ir.BlockStop(1),
    ir.BlockStart(2, ir.BlockKind.TOOL_CALL, call_id="call_9", name="read"),
    ir.ToolArgsDelta(2, '{"p":'),
    ir.ToolArgsDelta(2, '"a"}'),
    ir.BlockStop(2),
    ir.Finish(ir.StopReason.TOOL_USE, ir.Usage(0, 7, reasoning_tokens=3)),
]


def test_stream_encoder_full_grammar() -> None:
    encoder = ResponsesStreamEncoder(REQUEST)
    data = b"".join(encoder.encode(e) for e in FULL_STREAM)
    assert b": ping\n\n" in data
    events = frames(data)
    check_sdk_events(events)
    validate_responses_stream(events)
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    created = events[0]["response"]
    assert created["status"] == "in_progress" and created["output"] == []
    assert created["model"] == "qwen"
    assert created["tools"] == [
        {
            "type": "function",
            "name": "read",
            "description": "Read a file",
            "parameters": {"type": "object"},
        }
    ]
    added = events[16]["item"]
    assert added["arguments"] == "" and added["call_id"] == "call_9"
    final = events[-1]["response"]
    assert final["usage"]["input_tokens"] == 12  # from MessageStart
    assert final["usage"]["output_tokens_details"] == {"reasoning_tokens": 3}
    assert final["output"][2]["arguments"] == '{"p":"a"}'
    assert encoder.response is not None
    assert encoder.response_id == final["id"] == created["id"]
    assert encoder.response_id.startswith("resp_")
    assert [item.id for item in encoder.output_items] == [
        i["id"] for i in final["output"]
    ]
    assert encoder.encode(ir.TextDelta(1, "late")) == b""


def test_sdk_stream_helper_accepts_the_stream() -> None:
    data = encode_all(FULL_STREAM)
    with (
        sdk_client(data, "text/event-stream") as client,
        client.responses.stream(model="m", input="hi") as stream,
    ):
        texts = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert texts == ["Hel", "lo"]
    assert final.output_text == "Hello"
    assert [item.type for item in final.output] == [
        "reasoning",
        "message",
        "function_call",
    ]


def test_stream_max_tokens_ends_incomplete() -> None:
    events = frames(
        encode_all(
            [
                ir.MessageStart("resp_up", "m"),
                ir.BlockStart(0, ir.BlockKind.TEXT),
                ir.TextDelta(0, "cut"),
                ir.Finish(ir.StopReason.MAX_TOKENS, ir.Usage(1, 1)),
            ]
        )
    )
    check_sdk_events(events)
    validate_responses_stream(events)
    final = events[-1]
    assert final["type"] == "response.incomplete"
    assert final["response"]["id"] == "resp_up"
    assert final["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_stream_error_ends_with_error_and_failed() -> None:
    encoder = ResponsesStreamEncoder(REQUEST)
    stream: list[ir.Event] = [
        ir.MessageStart("m1", "m"),
        ir.BlockStart(0, ir.BlockKind.TEXT),
        ir.TextDelta(0, "part"),
        ir.StreamError("upstream_error", "LM Studio crashed", 502),
    ]
    data = b"".join(encoder.encode(e) for e in stream)
    events = frames(data)
    check_sdk_events(events)
    validate_responses_stream(events)
    error, failed = events[-2:]
    assert error == {
        "type": "error",
        "sequence_number": error["sequence_number"],
        "message": "LM Studio crashed",
        "code": "server_error",
        "param": None,
    }
    assert failed["type"] == "response.failed"
    assert failed["response"]["status"] == "failed"
    assert failed["response"]["error"] == {
        "code": "server_error",
        "message": "LM Studio crashed",
    }
    assert failed["response"]["output"][0]["status"] == "incomplete"
    assert encoder.encode(ir.Finish(ir.StopReason.END_TURN, ir.Usage())) == b""


def test_stream_error_codes_for_clients() -> None:
    for kind, code in [
        ("context_overflow", "context_length_exceeded"),
        ("rate_limit", "rate_limit_exceeded"),
    ]:
        events = frames(encode_all([ir.StreamError(kind, "no", 400)]))
        assert [e["type"] for e in events][-2:] == ["error", "response.failed"]
        assert events[-2]["code"] == events[-1]["response"]["error"]["code"] == code


def test_stream_deltas_without_block_start_still_well_formed() -> None:
    events = frames(
        encode_all(
            [
                ir.TextDelta(0, "a"),
                ir.ToolArgsDelta(1, "{}"),
                ir.ThinkingDelta(2, "t"),
                ir.BlockStop(5),
                ir.Finish(ir.StopReason.END_TURN, ir.Usage()),
            ]
        )
    )
    check_sdk_events(events)
    validate_responses_stream(events)
    call = events[-1]["response"]["output"][1]
    assert call["call_id"].startswith("call_")


def test_ping_is_an_sse_comment() -> None:
    encoder = ResponsesStreamEncoder(REQUEST)
    assert encoder.encode(ir.Ping()) == b": ping\n\n"
    assert encoder.response_id == ""


# -------------------------------------------------------------- encode_error


@pytest.mark.parametrize(
    ("error", "kind", "code"),
    [
        (errors.InvalidRequest("bad", param="model"), "invalid_request_error", None),
        (errors.AuthenticationFailed("who"), "authentication_error", None),
        (errors.PermissionDenied("no"), "permission_error", None),
        (errors.NotFound("gone"), "not_found_error", None),
        (errors.RateLimited("slow"), "rate_limit_error", "rate_limit_exceeded"),
        (
            errors.ContextOverflow.for_prompt(9000, 8192, "m"),
            "invalid_request_error",
            "context_length_exceeded",
        ),
        (errors.UpstreamError("boom"), "server_error", None),
        (errors.UpstreamUnavailable("down"), "server_error", None),
        (errors.Overloaded("busy"), "server_error", None),
    ],
)
def test_encode_error(error: errors.LMBridgeError, kind: str, code: str | None) -> None:
    body = json.loads(RESPONSES.encode_error(error))
    assert body == {
        "error": {
            "message": error.message,
            "type": kind,
            "param": error.param,
            "code": code,
        }
    }


# ------------------------------------------------------- upstream request


def test_encode_request_for_upstream() -> None:
    request = ir.Request(
        model="qwen3",
        system=(ir.Text("Be brief."), ir.Text("Use tools.")),
        messages=(
            ir.Message(
                ir.Role.USER,
                (ir.Text("look"), ir.Image(media_type="image/png", data="AA==")),
            ),
            ir.Message(
                ir.Role.ASSISTANT,
                (
                    ir.Thinking(text="anthropic", signature="sig"),
                    ir.Thinking(text="openai", data="ENC"),
                    ir.Text("Reading."),
                    ir.ToolCall("c1", "read", '{"p":"a"}'),
                ),
            ),
            ir.Message(
                ir.Role.USER,
                (
                    ir.ToolResult("c1", (ir.Text("A"),), is_error=True),
                    ir.ToolResult("c2", (ir.Text("B"), ir.Image(url="https://i/x"))),
                    ir.Text("next"),
                ),
            ),
        ),
        tools=(ir.Tool("read", "Read", {"type": "object"}),),
        tool_choice=ir.ToolChoice(ir.ToolChoiceMode.TOOL, "read"),
        parallel_tool_calls=True,
        max_tokens=1,
        temperature=0.2,
        top_p=0.8,
        top_k=40,
        stop=("END",),
        seed=7,
        reasoning=ir.Reasoning(budget_tokens=8000),
        extras={"previous_response_id": "resp_p", "text": {"verbosity": "low"}},
        output_format=ir.OutputFormat("json_object"),
    )
    body = json.loads(RESPONSES.encode_request(request))
    # Assistant text and reasoning go as Codex CLI sends them (output_text
    # without annotations; reasoning without its id, which a store=false
    # upstream could not resolve): the API accepts both, the SDK's param
    # types do not list them.
    sdk_view = [
        i
        for i in body["input"]
        if i.get("role") != "assistant" and i["type"] != "reasoning"
    ]
    CREATE_PARAMS.validate_python({**body, "input": sdk_view})
    assert body == {
        "model": "qwen3",
        "stream": True,
        "store": False,
        "instructions": "Be brief.\n\nUse tools.",
        "input": [
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "look"},
                    {
                        "type": "input_image",
                        "image_url": "data:image/png;base64,AA==",
                        "detail": "auto",
                    },
                ],
            },
            {
                "type": "reasoning",
                "summary": [{"type": "summary_text", "text": "openai"}],
                "encrypted_content": "ENC",
            },
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Reading."}],
            },
            {
                "type": "function_call",
                "call_id": "c1",
                "name": "read",
                "arguments": '{"p":"a"}',
            },
            {"type": "function_call_output", "call_id": "c1", "output": "A"},
            {
                "type": "function_call_output",
                "call_id": "c2",
                "output": [
                    {"type": "input_text", "text": "B"},
                    {
                        "type": "input_image",
                        "image_url": "https://i/x",
                        "detail": "auto",
                    },
                ],
            },
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "next"}],
            },
        ],
        "tools": [
            {
                "type": "function",
                "name": "read",
                "description": "Read",
                "parameters": {"type": "object"},
                "strict": False,
            }
        ],
        "tool_choice": {"type": "function", "name": "read"},
        "parallel_tool_calls": True,
        "max_output_tokens": 16,
        "temperature": 0.2,
        "top_p": 0.8,
        "reasoning": {"effort": "medium"},
        "previous_response_id": "resp_p",
        "text": {"verbosity": "low", "format": {"type": "json_object"}},
    }


@pytest.mark.parametrize(
    ("budget", "effort"),
    [
        (1024, "low"),
        (4095, "low"),
        (4096, "medium"),
        (16383, "medium"),
        (16384, "high"),
    ],
)
def test_budget_maps_to_effort(budget: int, effort: str) -> None:
    request = ir.Request("m", (), reasoning=ir.Reasoning(budget_tokens=budget))
    assert json.loads(RESPONSES.encode_request(request))["reasoning"] == {
        "effort": effort
    }


def test_encode_request_store_and_no_tool_choice_without_tools() -> None:
    request = ir.Request(
        "m",
        (ir.Message(ir.Role.USER, (ir.Text("x"),)),),
        tool_choice=ir.ToolChoice(ir.ToolChoiceMode.REQUIRED),
        extras={"store": True, "include": ["a"], "presence_penalty": 1},
        reasoning=ir.Reasoning(effort="low"),
    )
    body = json.loads(RESPONSES.encode_request(request))
    assert body["store"] is True
    assert "tool_choice" not in body and "tools" not in body
    assert body["reasoning"] == {"effort": "low"}
    assert "include" not in body and "presence_penalty" not in body


@pytest.mark.parametrize(
    ("output", "text"),
    [
        (ir.OutputFormat("json_object"), {"format": {"type": "json_object"}}),
        (
            ir.OutputFormat("json_schema", {}, "n", "d", True),
            {
                "format": {
                    "type": "json_schema",
                    "name": "n",
                    "schema": {},
                    "description": "d",
                    "strict": True,
                }
            },
        ),
        (
            ir.OutputFormat("json_schema", {"type": "object"}),  # from Anthropic
            {
                "format": {
                    "type": "json_schema",
                    "name": "response",
                    "schema": {"type": "object"},
                }
            },
        ),
        (None, None),
    ],
)
def test_output_format_becomes_text_format(
    output: ir.OutputFormat | None, text: dict[str, Any] | None
) -> None:
    request = ir.Request("m", (), output_format=output)
    assert json.loads(RESPONSES.encode_request(request)).get("text") == text


def test_client_request_round_trips_through_upstream_encoding() -> None:
    original = parse(CODEX_LIKE)
    again = RESPONSES.parse_request(RESPONSES.encode_request(original))
    # What goes upstream is the conversation's normal form (adjacent texts
    # joined), with the late system message in place.
    expected = normal_form(original.messages, system_as_user=False)
    assert list(again.messages) == expected
    assert again.messages[-1].role is ir.Role.SYSTEM
    assert again.system_text() == original.system_text()
    # A freeform tool goes upstream as a function of one string argument.
    assert [t.name for t in again.tools] == [t.name for t in original.tools]
    assert [t.parameters for t in again.tools] == [t.parameters for t in original.tools]
    assert again.output_format == original.output_format
    assert again.reasoning == original.reasoning


# ------------------------------------------------------------ stream decoder


OPENAI_STREAM = sse(
    {
        "type": "response.created",
        "sequence_number": 0,
        "response": {"id": "resp_up1", "model": "gpt-5", "status": "in_progress"},
    },
    {"type": "response.in_progress", "sequence_number": 1, "response": {}},
    {
        "type": "response.output_item.added",
        "output_index": 0,
        "item": {"type": "reasoning", "id": "rs_1", "summary": []},
    },
    {
        "type": "response.reasoning_summary_part.added",
        "item_id": "rs_1",
        "output_index": 0,
        "summary_index": 0,
        "part": {"type": "summary_text", "text": ""},
    },
    {
        "type": "response.reasoning_summary_text.delta",
        "item_id": "rs_1",
        "output_index": 0,
        "summary_index": 0,
        "delta": "First",
    },
    {
        "type": "response.reasoning_summary_part.added",
        "item_id": "rs_1",
        "output_index": 0,
        "summary_index": 1,
        "part": {"type": "summary_text", "text": ""},
    },
    {
        "type": "response.reasoning_summary_text.delta",
        "item_id": "rs_1",
        "output_index": 0,
        "summary_index": 1,
        "delta": "Second",
    },
    {
        "type": "response.output_item.done",
        "output_index": 0,
        "item": {
            "type": "reasoning",
            "id": "rs_1",
            "summary": [
                {"type": "summary_text", "text": "First"},
                {"type": "summary_text", "text": "Second"},
            ],
            "encrypted_content": "ENC",
        },
    },
    {
        "type": "response.output_item.added",
        "output_index": 1,
        "item": {"type": "message", "id": "msg_1", "role": "assistant", "content": []},
    },
    {
        "type": "response.content_part.added",
        "item_id": "msg_1",
        "output_index": 1,
        "content_index": 0,
        "part": {"type": "output_text", "text": "", "annotations": []},
    },
    {
        "type": "response.output_text.delta",
        "item_id": "msg_1",
        "output_index": 1,
        "content_index": 0,
        "delta": "Hé",
    },
    {
        "type": "response.output_text.delta",
        "item_id": "msg_1",
        "output_index": 1,
        "content_index": 0,
        "delta": "llo",
    },
    {
        "type": "response.output_text.done",
        "item_id": "msg_1",
        "output_index": 1,
        "content_index": 0,
        "text": "Héllo",
    },
    {
        "type": "response.output_item.done",
        "output_index": 1,
        "item": {
            "type": "message",
            "id": "msg_1",
            "content": [{"type": "output_text", "text": "Héllo", "annotations": []}],
        },
    },
    {
        "type": "response.web_search_call.in_progress",
        "output_index": 2,
        "item_id": "ws_1",
    },
    {
        "type": "response.output_item.added",
        "output_index": 3,
        "item": {
            "type": "function_call",
            "id": "fc_1",
            "call_id": "call_1",
            "name": "read",
            "arguments": "",
        },
    },
    {
        "type": "response.function_call_arguments.delta",
        "item_id": "fc_1",
        "output_index": 3,
        "delta": '{"p":',
    },
    {
        "type": "response.function_call_arguments.delta",
        "item_id": "fc_1",
        "output_index": 3,
        "delta": '"a"}',
    },
    {
        "type": "response.function_call_arguments.done",
        "item_id": "fc_1",
        "output_index": 3,
        "arguments": '{"p":"a"}',
    },
    {
        "type": "response.output_item.done",
        "output_index": 3,
        "item": {
            "type": "function_call",
            "id": "fc_1",
            "call_id": "call_1",
            "name": "read",
            "arguments": '{"p":"a"}',
        },
    },
    {
        "type": "response.completed",
        "response": {
            "id": "resp_up1",
            "model": "gpt-5",
            "status": "completed",
            "usage": {
                "input_tokens": 20,
                "output_tokens": 9,
                "total_tokens": 29,
                "input_tokens_details": {"cached_tokens": 4},
                "output_tokens_details": {"reasoning_tokens": 5},
            },
        },
    },
)


def decode_all(data: bytes, *, byte_by_byte: bool = False) -> list[ir.Event]:
    decoder = RESPONSES.stream_decoder(REQUEST)
    if byte_by_byte:
        out = [e for i in range(len(data)) for e in decoder.feed(data[i : i + 1])]
    else:
        out = decoder.feed(data)
    return out + decoder.close()


def assemble(events: list[ir.Event]) -> ir.Response:
    assembler = Assembler()
    for event in events:
        assembler.feed(event)
    return assembler.result()


def test_decoder_full_stream() -> None:
    decoder = ResponsesStreamDecoder(REQUEST)
    events = decoder.feed(OPENAI_STREAM) + decoder.close()
    assert decoder.response_id == "resp_up1"
    assert events[0] == ir.MessageStart("resp_up1", "gpt-5")
    assert ir.BlockStart(2, ir.BlockKind.TOOL_CALL, "call_1", "read") in events
    response = assemble(events)
    assert response.parts == [
        ir.Thinking(text="First\n\nSecond"),
        ir.Text("Héllo"),
        ir.ToolCall("call_1", "read", '{"p":"a"}'),
    ]
    assert response.stop_reason is ir.StopReason.TOOL_USE
    assert response.usage == ir.Usage(20, 9, cached_tokens=4, reasoning_tokens=5)
    assert events[-1] == ir.Finish(ir.StopReason.TOOL_USE, response.usage)


def test_decoder_byte_by_byte_equals_at_once() -> None:
    assert decode_all(OPENAI_STREAM, byte_by_byte=True) == decode_all(OPENAI_STREAM)


def test_decoder_emits_done_only_text_and_arguments() -> None:
    data = sse(
        {"type": "response.created", "response": {"id": "resp_2", "model": "x"}},
        {
            "type": "response.output_item.done",
            "output_index": 0,
            "item": {
                "type": "message",
                "content": [{"type": "output_text", "text": "whole"}],
            },
        },
        {
            "type": "response.output_item.done",
            "output_index": 1,
            "item": {
                "type": "function_call",
                "call_id": "c",
                "name": "f",
                "arguments": "{}",
            },
        },
        {"type": "response.completed", "response": {"usage": None}},
    )
    response = assemble(decode_all(data))
    assert response.parts == [ir.Text("whole"), ir.ToolCall("c", "f", "{}")]


def test_decoder_incomplete_and_refusal() -> None:
    data = sse(
        {"type": "response.output_text.delta", "output_index": 0, "delta": "ab"},
        {
            "type": "response.incomplete",
            "response": {"incomplete_details": {"reason": "max_output_tokens"}},
        },
    )
    events = decode_all(data)
    assert events[0] == ir.MessageStart("", "gpt-test")  # no id seen: no chaining
    assert events[-1] == ir.Finish(ir.StopReason.MAX_TOKENS, ir.Usage())
    refusal = sse(
        {"type": "response.refusal.delta", "output_index": 0, "delta": "No."},
        {"type": "response.completed", "response": {}},
    )
    response = assemble(decode_all(refusal))
    assert response.parts == [ir.Text("No.")]
    assert response.stop_reason is ir.StopReason.REFUSAL


@pytest.mark.parametrize(
    ("event", "kind", "message", "status"),
    [
        (
            {
                "type": "response.failed",
                "response": {
                    "status": "failed",
                    "error": {"code": "server_error", "message": "model crashed"},
                },
            },
            "upstream_error",
            "model crashed",
            502,
        ),
        (
            {"type": "error", "code": "rate_limit_exceeded", "message": "slow down"},
            "rate_limit",
            "slow down",
            429,
        ),
        (
            {
                "type": "error",
                "error": {"code": "context_length_exceeded", "message": "too long"},
            },
            "context_overflow",
            "too long",
            400,
        ),
        ({"type": "error"}, "upstream_error", "without a message", 502),
    ],
)
def test_decoder_failures(
    event: dict[str, Any], kind: str, message: str, status: int
) -> None:
    events = decode_all(
        sse({"type": "response.output_text.delta", "delta": "x"}, event, event)
    )
    error = events[-1]
    assert isinstance(error, ir.StreamError)
    assert (error.kind, error.status) == (kind, status)
    assert message in error.message
    assert sum(isinstance(e, ir.StreamError) for e in events) == 1


def test_decoder_early_close_and_garbage() -> None:
    early = decode_all(sse({"type": "response.output_text.delta", "delta": "x"}))
    assert early[-1] == ir.StreamError(
        "upstream_error", "upstream closed the stream early"
    )
    garbage = decode_all(b"data: {nope\n\ndata: [DONE]\n\n")
    assert len(garbage) == 1
    assert isinstance(garbage[0], ir.StreamError)
    assert "malformed" in garbage[0].message
    done_marker = decode_all(
        sse({"type": "response.completed", "response": {}}) + b"data: [DONE]\n\n"
    )
    assert isinstance(done_marker[-1], ir.Finish)


def test_encoder_output_decodes_to_the_same_response() -> None:
    decoder = ResponsesStreamDecoder(REQUEST)
    events = decoder.feed(encode_all(FULL_STREAM)) + decoder.close()
    original = assemble(FULL_STREAM)
    again = assemble(events)
    assert again.parts == [
        ir.Thinking(text="Let me think."),
        ir.Text("Hello"),
        ir.ToolCall("call_9", "read", '{"p":"a"}'),
    ]
    assert again.stop_reason is original.stop_reason
    # Responses usage has no "unknown" cached count: it is sent as 0.
    assert original.usage.cached_tokens is None
    unknown_as_zero = ir.Usage(
        original.usage.input_tokens,
        original.usage.output_tokens,
        0,
        original.usage.reasoning_tokens,
    )
    assert again.usage == unknown_as_zero
    assert decoder.response_id.startswith("resp_")


# -------------------------------------------------------------- parse_error


def test_parse_error_openai_shape() -> None:
    error = RESPONSES.parse_error(
        429,
        json.dumps(
            {
                "error": {
                    "message": "Rate limit reached",
                    "type": "requests",
                    "param": None,
                    "code": "rate_limit_exceeded",
                }
            }
        ).encode(),
    )
    assert isinstance(error, errors.RateLimited)
    assert (error.message, error.code, error.status) == (
        "Rate limit reached",
        "rate_limit_exceeded",
        429,
    )


@pytest.mark.parametrize(
    "body",
    [
        {"error": {"message": "Previous response with id 'resp_x' not found."}},
        {"error": {"message": "x", "code": "previous_response_not_found"}},
        {"error": "Previous response resp_x does not exist"},
    ],
)
def test_parse_error_previous_response(body: dict[str, Any]) -> None:
    error = RESPONSES.parse_error(400, json.dumps(body).encode())
    assert isinstance(error, errors.NotFound)
    assert error.code == "previous_response_not_found"
    assert error.param == "previous_response_id"


def test_parse_error_fallbacks() -> None:
    error = RESPONSES.parse_error(502, b"<html>" + b"x" * 2000)
    assert isinstance(error, errors.UpstreamError)
    assert error.status == 502
    assert len(error.message) == 500
    empty = RESPONSES.parse_error(503, b"")
    assert isinstance(empty, errors.UpstreamUnavailable)
    assert "503" in empty.message
    context = RESPONSES.parse_error(
        400, b'{"error": {"message": "maximum context length is 4096 tokens"}}'
    )
    assert isinstance(context, errors.ContextOverflow)
    assert context.code == "context_length_exceeded"
    assert context.status == 400
    lmstudio = RESPONSES.parse_error(404, b'{"error": "Model not loaded"}')
    assert isinstance(lmstudio, errors.NotFound)
    assert lmstudio.message == "Model not loaded"


# ------------------------------------------------------------------ property

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
KEYS = st.sampled_from(
    [
        "type",
        "role",
        "content",
        "text",
        "image_url",
        "file_id",
        "call_id",
        "name",
        "arguments",
        "output",
        "summary",
        "encrypted_content",
        "parameters",
        "mode",
    ]
)
VALUES = (
    st.sampled_from(
        [
            "message",
            "user",
            "assistant",
            "developer",
            "system",
            "function_call",
            "function_call_output",
            "reasoning",
            "input_text",
            "output_text",
            "input_image",
            "input_file",
            "refusal",
            "summary_text",
            "function",
            "web_search",
            "data:image/png;base64,AA",
            "data:,x",
            "https://x",
        ]
    )
    | JSON
)
ITEM = st.recursive(
    st.dictionaries(KEYS, VALUES, max_size=5),
    lambda inner: st.dictionaries(
        KEYS, inner | st.lists(inner, max_size=3), max_size=5
    ),
    max_leaves=10,
)
REQUEST_BODY = st.fixed_dictionaries(
    {},
    optional={
        "model": st.sampled_from(["m", ""]) | JSON,
        "input": st.text(max_size=5) | st.lists(ITEM, max_size=4) | JSON,
        "instructions": st.text(max_size=5) | JSON,
        "tools": st.lists(ITEM, max_size=3) | JSON,
        "tool_choice": st.sampled_from(["auto", "required", "x"]) | ITEM,
        "max_output_tokens": JSON,
        "temperature": JSON,
        "reasoning": st.dictionaries(st.sampled_from(["effort", "summary"]), JSON),
        "text": JSON,
        "stream": JSON,
    },
)


def assert_parses_or_invalid(body: bytes) -> None:
    try:
        request = RESPONSES.parse_request(body)
    except errors.InvalidRequest:
        return
    assert isinstance(request, ir.Request)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_parse_request_random_bytes(body: bytes) -> None:
    assert_parses_or_invalid(body)


@settings(max_examples=300, deadline=None)
@given(REQUEST_BODY)
def test_parse_request_near_valid_bodies(body: dict[str, Any]) -> None:
    assert_parses_or_invalid(json.dumps(body).encode())


def test_parse_request_deep_nesting() -> None:
    deep = b'{"model": "m", "tools": [{"type": "function", "name": "f", "parameters": '
    assert_parses_or_invalid(deep + b'{"a":' * 100_000 + b"1" + b"}" * 100_001 + b"]}")
    assert_parses_or_invalid(b"[" * 100_000)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=8))
def test_decoder_never_raises_on_random_bytes(chunks: list[bytes]) -> None:
    decoder = ResponsesStreamDecoder(REQUEST)
    events = [e for chunk in chunks for e in decoder.feed(chunk)] + decoder.close()
    assert isinstance(events[-1], ir.Finish | ir.StreamError)


UPSTREAM_TYPES = st.sampled_from(
    [
        "response.created",
        "response.output_item.added",
        "response.output_item.done",
        "response.output_text.delta",
        "response.output_text.done",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_part.added",
        "response.completed",
        "response.incomplete",
        "response.failed",
        "error",
    ]
)
UPSTREAM_EVENT = st.fixed_dictionaries(
    {"type": UPSTREAM_TYPES},
    optional={
        "output_index": st.integers(-1, 3) | JSON,
        "content_index": st.integers(0, 2),
        "summary_index": st.integers(0, 2),
        "delta": st.text(max_size=5) | JSON,
        "text": st.text(max_size=5),
        "arguments": st.text(max_size=5),
        "item": st.fixed_dictionaries(
            {"type": st.sampled_from(["message", "function_call", "reasoning", "x"])},
            optional={
                "call_id": st.text(max_size=3),
                "name": st.text(max_size=3),
                "arguments": st.text(max_size=3),
                "content": st.lists(
                    st.fixed_dictionaries({"text": st.text(max_size=3)}), max_size=2
                ),
                "summary": JSON,
            },
        ),
        "response": st.dictionaries(
            st.sampled_from(["id", "model", "usage", "error", "incomplete_details"]),
            JSON,
        ),
    },
)


@settings(max_examples=300, deadline=None)
@given(st.lists(UPSTREAM_EVENT, max_size=12), st.integers(1, 64))
def test_decoder_never_raises_on_odd_events(
    upstream: list[dict[str, Any]], chunk: int
) -> None:
    data = sse(*upstream)
    decoder = ResponsesStreamDecoder(REQUEST)
    events = [
        e for i in range(0, len(data), chunk) for e in decoder.feed(data[i : i + chunk])
    ]
    events += decoder.close()
    assert isinstance(events[-1], ir.Finish | ir.StreamError)
    assert sum(isinstance(e, ir.Finish | ir.StreamError) for e in events) == 1
    assert _same_ids(events) == _same_ids(decode_all(data))


def _same_ids(events: list[ir.Event]) -> list[ir.Event]:
    """Events with generated ids (the upstream sent none) made comparable."""
    out: list[ir.Event] = []
    for event in events:
        if isinstance(event, ir.MessageStart):
            event = ir.MessageStart(GENERATED.sub("", event.id), event.model)
        elif isinstance(event, ir.BlockStart):
            event = ir.BlockStart(
                event.index, event.kind, GENERATED.sub("", event.call_id), event.name
            )
        out.append(event)
    return out


def _delta(kind: ir.BlockKind, index: int, text: str) -> ir.Event:
    if kind is ir.BlockKind.TEXT:
        return ir.TextDelta(index, text)
    if kind is ir.BlockKind.THINKING:
        return ir.ThinkingDelta(index, text)
    return ir.ToolArgsDelta(index, text)


@st.composite
def ir_streams(draw: st.DrawFn) -> list[ir.Event]:
    """Well-formed IR streams, possibly cut off by an error."""
    events: list[ir.Event] = [ir.MessageStart("up_1", "m", draw(st.integers(0, 9)))]
    for index in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(list(ir.BlockKind)))
        tool = kind is ir.BlockKind.TOOL_CALL
        events.append(
            ir.BlockStart(
                index, kind, f"call_{index}" if tool else "", "f" if tool else ""
            )
        )
        for text in draw(st.lists(st.text(max_size=6), max_size=4)):
            events.append(_delta(kind, index, text))
            if draw(st.booleans()):
                events.append(ir.Ping())
        events.append(ir.BlockStop(index))
    cut = draw(st.integers(0, len(events)))
    if draw(st.booleans()):
        return [*events[:cut], ir.StreamError("upstream_error", "cut")]
    # Responses usage always carries a cached count (an unknown one is 0).
    usage = ir.Usage(draw(st.integers(0, 9)), draw(st.integers(0, 9)), cached_tokens=0)
    return [*events, ir.Finish(draw(st.sampled_from(list(ir.StopReason))), usage)]


ANY_EVENT = st.one_of(
    st.builds(ir.BlockStart, st.integers(0, 3), st.sampled_from(list(ir.BlockKind))),
    st.builds(ir.TextDelta, st.integers(0, 3), st.text(max_size=4)),
    st.builds(ir.ThinkingDelta, st.integers(0, 3), st.text(max_size=4)),
    st.builds(ir.ToolArgsDelta, st.integers(0, 3), st.text(max_size=4)),
    st.builds(ir.SignatureDelta, st.integers(0, 3), st.text(max_size=4)),
    st.builds(ir.BlockStop, st.integers(0, 3)),
    st.just(ir.Ping()),
    st.just(ir.MessageStart("x", "m")),
)
TERMINAL_EVENT = st.one_of(
    # Responses usage always has a cached count: an unknown one reads back as 0.
    st.builds(
        ir.Finish,
        st.sampled_from(list(ir.StopReason)),
        st.just(ir.Usage(cached_tokens=0)),
    ),
    st.builds(
        ir.StreamError, st.sampled_from([k.value for k in errors.ErrorKind]), st.text()
    ),
)


def _encoded_events(stream: list[ir.Event]) -> Iterator[dict[str, Any]]:
    yield from frames(encode_all(stream))


@settings(max_examples=300, deadline=None)
@given(ir_streams())
def test_encoder_well_formed_streams_round_trip(stream: list[ir.Event]) -> None:
    events = list(_encoded_events(stream))
    validate_responses_stream(events)
    check_sdk_events(events)
    decoded = decode_all(encode_all(stream))
    if isinstance(stream[-1], ir.StreamError):
        assert isinstance(decoded[-1], ir.StreamError)
        return
    original, again = assemble(stream), assemble(decoded)
    expected: list[ir.Text | ir.ToolCall | ir.Thinking | ir.WebSearch] = []
    for part in original.parts:
        if isinstance(part, ir.Thinking):
            if part.text:
                expected.append(ir.Thinking(text=part.text))
        elif not isinstance(part, ir.Text) or part.text:
            expected.append(part)
    assert again.parts == expected
    assert again.usage == original.usage


@settings(max_examples=300, deadline=None)
@given(st.lists(ANY_EVENT, max_size=14), TERMINAL_EVENT)
def test_encoder_any_event_order_is_well_formed(
    stream: list[ir.Event], terminal: ir.Event
) -> None:
    events = list(_encoded_events([*stream, terminal]))
    validate_responses_stream(events)
    check_sdk_events(events)
