"""The Chat Completions codec in both directions, without a server."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from lmbridge.core import errors, ir
from lmbridge.core.assemble import Assembler
from lmbridge.protocols.openai_chat import OPENAI_CHAT
from lmbridge.protocols.openai_chat.decode import ChatStreamDecoder
from lmbridge.protocols.openai_chat.passthrough import _REFUSED_FORMS, ChatPassthrough


def parse(body: dict[str, Any]) -> ir.Request:
    return OPENAI_CHAT.parse_request(json.dumps(body).encode())


FULL = {
    "model": "m",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "Use tools."}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is here?"},
                {
                    "type": "image_url",
                    "image_url": {"url": "data:image/png;base64,AAAA"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "read", "arguments": '{"p":"a"}'},
                },
                {
                    "id": "c2",
                    "type": "function",
                    "function": {"name": "read", "arguments": '{"p":"b"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "A"},
        {"role": "tool", "tool_call_id": "c2", "content": "B"},
        {"role": "user", "content": "thanks"},
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "read",
                "description": "d",
                "parameters": {"type": "object"},
            },
        }
    ],
    "tool_choice": {"type": "function", "function": {"name": "read"}},
    "stop": "END",
    "max_tokens": 50,
    "temperature": 0.2,
    "presence_penalty": 0.1,
    "user": "u1",
}


def test_parse_full_request() -> None:
    req = parse(FULL)
    assert req.system_text() == "Be brief.\n\nUse tools."
    assert [m.role for m in req.messages] == ["user", "assistant", "user"]
    user0 = req.messages[0].parts
    assert user0[1] == ir.Image(media_type="image/png", data="AAAA")
    assert req.messages[1].parts == (
        ir.ToolCall("c1", "read", '{"p":"a"}'),
        ir.ToolCall("c2", "read", '{"p":"b"}'),
    )
    results = req.messages[2].parts
    assert results[0] == ir.ToolResult("c1", (ir.Text("A"),))
    assert results[1] == ir.ToolResult("c2", (ir.Text("B"),))
    assert results[2] == ir.Text("thanks")
    assert req.tool_choice == ir.ToolChoice(ir.ToolChoiceMode.TOOL, "read")
    assert req.stop == ("END",)
    assert req.extras["presence_penalty"] == 0.1
    assert req.client.session_key == "u1"


def test_encode_request_round_trips() -> None:
    req = parse(FULL)
    again = OPENAI_CHAT.parse_request(OPENAI_CHAT.encode_request(req))
    assert again.messages == req.messages
    assert again.system_text() == req.system_text()
    assert again.tools == req.tools
    assert again.tool_choice == req.tool_choice
    body = json.loads(OPENAI_CHAT.encode_request(req))
    assert body["stream"] is False
    assert "stream_options" not in body
    streaming = json.loads(
        OPENAI_CHAT.encode_request(msgspec.structs.replace(req, stream=True))
    )
    assert streaming["stream_options"] == {"include_usage": True}
    # tool messages directly follow the assistant's calls
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "tool", "user"]


def test_tool_result_error_and_images_are_kept() -> None:
    req = ir.Request(
        model="m",
        messages=(
            ir.Message(ir.Role.ASSISTANT, (ir.ToolCall("c", "shot", "{}"),)),
            ir.Message(
                ir.Role.USER,
                (
                    ir.ToolResult(
                        "c",
                        (ir.Text("failed"), ir.Image("image/png", data="QUJD")),
                        is_error=True,
                    ),
                ),
            ),
        ),
    )
    body = json.loads(OPENAI_CHAT.encode_request(req))
    tool = body["messages"][1]
    assert tool == {"role": "tool", "tool_call_id": "c", "content": "Error: failed"}
    image = body["messages"][2]["content"][0]
    assert image["image_url"]["url"] == "data:image/png;base64,QUJD"


def chunks(*deltas: dict[str, Any], finish: str = "stop", usage: bool = True) -> bytes:
    out = b""
    for d in deltas:
        c = {"id": "x", "model": "m", "choices": [{"index": 0, "delta": d}]}
        out += b"data: " + json.dumps(c).encode() + b"\n\n"
    fin = {
        "id": "x",
        "model": "m",
        "choices": [{"index": 0, "delta": {}, "finish_reason": finish}],
    }
    out += b"data: " + json.dumps(fin).encode() + b"\n\n"
    if usage:
        u = {
            "id": "x",
            "model": "m",
            "choices": [],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4},
        }
        out += b"data: " + json.dumps(u).encode() + b"\n\n"
    return out + b"data: [DONE]\n\n"


STREAM = chunks(
    {"role": "assistant", "content": ""},
    {"reasoning_content": "think"},
    {"content": "Hi "},
    {"content": "there"},
    {
        "tool_calls": [
            {"index": 0, "id": "c1", "function": {"name": "a", "arguments": ""}}
        ]
    },
    {"tool_calls": [{"index": 0, "function": {"arguments": '{"x":'}}]},
    {"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]},
    {
        "tool_calls": [
            {"index": 1, "id": "c2", "function": {"name": "b", "arguments": "{}"}}
        ]
    },
    finish="tool_calls",
)


def decode_all(data: bytes, step: int | None = None) -> list[ir.Event]:
    dec = ChatStreamDecoder()
    out: list[ir.Event] = []
    if step is None:
        out += dec.feed(data)
    else:
        for i in range(0, len(data), step):
            out += dec.feed(data[i : i + step])
    return out + dec.close()


def test_decoder_blocks_and_usage() -> None:
    events = decode_all(STREAM)
    assembler = Assembler()
    for e in events:
        assembler.feed(e)
    resp = assembler.result()
    assert resp.parts == [
        ir.Thinking(text="think"),
        ir.Text("Hi there"),
        ir.ToolCall("c1", "a", '{"x":1}'),
        ir.ToolCall("c2", "b", "{}"),
    ]
    assert resp.stop_reason is ir.StopReason.TOOL_USE
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (3, 4)


@pytest.mark.parametrize("step", [1, 7, 64])
def test_decoder_is_chunking_independent(step: int) -> None:
    assert decode_all(STREAM, step) == decode_all(STREAM)


def test_decoder_without_done_but_with_finish_reason_finishes() -> None:
    events = decode_all(chunks({"content": "a"}).replace(b"data: [DONE]\n\n", b""))
    assert isinstance(events[-1], ir.Finish)


def test_decoder_cut_short_is_an_error() -> None:
    data = chunks({"content": "a"}).split(b"\n\n")[0] + b"\n\n"
    events = decode_all(data)
    assert isinstance(events[-1], ir.StreamError)
    assert "before finishing" in events[-1].message


def test_error_inside_a_200_stream_is_a_stream_error() -> None:
    data = chunks({"content": "a"}, usage=False).split(b"\n\n")[0] + b"\n\n"
    data += b'data: {"error": {"message": "Trying to keep the first 5000 tokens'
    data += b' when context the overflows"}}\n\n'
    events = decode_all(data)
    error = events[-1]
    assert isinstance(error, ir.StreamError)
    assert error.kind == errors.ErrorKind.CONTEXT_OVERFLOW


def test_context_overflow_answer_becomes_context_error() -> None:
    err = OPENAI_CHAT.parse_error(
        400, b'{"error":{"message":"This model\'s maximum context length is 4096"}}'
    )
    assert isinstance(err, errors.ContextOverflow)


def test_stream_encoder_output_is_valid_for_the_sdk() -> None:
    req = parse(
        {
            "model": "alias",
            "messages": [{"role": "user", "content": "x"}],
            "stream_options": {"include_usage": True},
        }
    )
    encoder = OPENAI_CHAT.stream_encoder(req)
    data = b"".join(encoder.encode(e) for e in decode_all(STREAM))
    frames = [f for f in data.split(b"\n\n") if f]
    assert frames[-1] == b"data: [DONE]"
    parsed = [ChatCompletionChunk.model_validate_json(f[6:]) for f in frames[:-1]]
    assert all(c.model == "alias" for c in parsed)
    assert parsed[-1].usage is not None
    assert parsed[-1].usage.prompt_tokens == 3
    finish = [c.choices[0].finish_reason for c in parsed if c.choices]
    assert finish[-1] == "tool_calls"
    calls = [
        tc for c in parsed if c.choices for tc in (c.choices[0].delta.tool_calls or [])
    ]
    assert [tc.index for tc in calls if tc.id] == [0, 1]


def test_stream_encoder_error_ends_stream() -> None:
    req = parse({"model": "m", "messages": [{"role": "user", "content": "x"}]})
    encoder = OPENAI_CHAT.stream_encoder(req)
    out = encoder.encode(ir.TextDelta(0, "a"))
    out += encoder.encode(ir.StreamError("upstream_error", "went away"))
    out += encoder.encode(ir.TextDelta(0, "late"))
    assert out.endswith(b"data: [DONE]\n\n")
    assert b"went away" in out
    assert b"late" not in out


def test_encode_response_is_valid_for_the_sdk() -> None:
    resp = ir.Response(
        id="r",
        model="m",
        parts=[ir.Text("hi"), ir.ToolCall("c", "f", "{}")],
        stop_reason=ir.StopReason.TOOL_USE,
        usage=ir.Usage(1, 2),
    )
    parsed = ChatCompletion.model_validate_json(OPENAI_CHAT.encode_response(resp))
    assert parsed.choices[0].finish_reason == "tool_calls"
    assert parsed.choices[0].message.tool_calls is not None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system", "tool", "x"])},
    optional={
        "content": json_values,
        "tool_calls": json_values,
        "tool_call_id": json_values,
    },
)
bodies = st.fixed_dictionaries(
    {},
    optional={
        "model": st.text() | json_values,
        "messages": st.lists(message, max_size=4) | json_values,
        "tools": json_values,
        "tool_choice": json_values,
        "stop": json_values,
        "max_tokens": json_values,
        "stream": json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(bodies.map(lambda b: json.dumps(b).encode()), st.binary()))
def test_parser_answers_any_body_with_request_or_invalid(body: bytes) -> None:
    try:
        req = OPENAI_CHAT.parse_request(body)
    except errors.InvalidRequest as exc:
        assert exc.status == 400
        assert exc.message
    else:
        assert isinstance(req, ir.Request)
        OPENAI_CHAT.encode_request(req)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.binary(max_size=64) | st.sampled_from(STREAM.split(b"\n")), max_size=20)
)
def test_decoder_never_raises(pieces: list[bytes]) -> None:
    dec = ChatStreamDecoder()
    for piece in pieces:
        dec.feed(piece)
    dec.close()


def test_validation_messages_name_fields() -> None:
    with pytest.raises(errors.InvalidRequest) as info:
        parse({"model": "m", "messages": [{"role": "user", "content": 5}]})
    assert info.value.param == "messages[0].content"
    with pytest.raises(errors.InvalidRequest) as info:
        parse({"model": "m"})
    assert info.value.param == "messages"


def test_no_usage_chunk_unless_asked() -> None:
    req = parse({"model": "m", "messages": [{"role": "user", "content": "x"}]})
    data = b"".join(
        OPENAI_CHAT.stream_encoder(req).encode(e) for e in decode_all(STREAM)
    )
    frames = [f for f in data.split(b"\n\n") if f and f != b"data: [DONE]"]
    chunks = [ChatCompletionChunk.model_validate_json(f[6:]) for f in frames]
    assert all(c.choices for c in chunks)


def test_what_a_chat_upstream_is_not_sent_is_counted() -> None:
    """`omitted`: the record's lines for what Chat cannot carry, with counts;
    the body goes without the thinking and with the rest of each message."""
    image = ir.Image(media_type="image/png", data="aGk=")
    req = ir.Request(
        model="m",
        messages=(
            ir.Message(ir.Role.USER, (ir.Text("look"),)),
            ir.Message(
                ir.Role.ASSISTANT,
                (ir.Thinking("hmm"), ir.ToolCall("c1", "shot", "{}")),
            ),
            ir.Message(
                ir.Role.USER,
                (ir.ToolResult("c1", (ir.Text("two"), image, image)),),
            ),
            ir.Message(ir.Role.SYSTEM, (ir.Text("be brief"),)),
            ir.Message(ir.Role.ASSISTANT, (ir.Thinking("so"), ir.Text("done"))),
            ir.Message(ir.Role.USER, (ir.ToolResult("c2", (image,)), ir.Text("ok"))),
        ),
    )
    assert OPENAI_CHAT.omitted(req) == [
        "thinking of earlier turns (2 blocks): Chat has no field",
        "system messages inside the conversation (1): sent in place as user"
        " text (Chat takes system text only at the start)",
        "images in tool results (3): sent in a user message after the tool"
        " messages (Chat tool messages carry text only)",
    ]
    body = json.loads(OPENAI_CHAT.encode_request(req))
    assert "hmm" not in json.dumps(body) and "so" not in json.dumps(body)
    assistant = [m for m in body["messages"] if m["role"] == "assistant"]
    assert assistant[0]["tool_calls"][0]["function"]["name"] == "shot"
    assert assistant[1]["content"] == "done"


_BODY_PIECES = st.sampled_from(
    [
        b'"content":',
        b'"role":',
        b'"content"',
        b'"role"',
        b'"tool"',
        b"null",
        b"nul",
        b"tool",
        b'"',
        b":",
        b" ",
        b"\n",
        b'"user"',
        b"x",
    ]
)


@given(st.lists(_BODY_PIECES, max_size=14).map(b"".join))
@settings(max_examples=400)
def test_a_relayed_body_is_edited_exactly_when_it_holds_a_refused_form(
    body: bytes,
) -> None:
    # needs_edit looks for the bytes the pattern needs before running it.
    expected = _REFUSED_FORMS.search(body) is not None
    assert ChatPassthrough().needs_edit(body) is expected


def test_relayed_bodies_that_hold_a_refused_form() -> None:
    passthrough = ChatPassthrough()
    assert passthrough.needs_edit(b'{"role":"assistant","content" : null}')
    assert passthrough.needs_edit(b'{"role": "tool","content":[]}')
    assert not passthrough.needs_edit(b'{"role":"user","content":"null tool"}')
    assert not passthrough.needs_edit(b'{"tool_choice":null, "role":"user"}')
