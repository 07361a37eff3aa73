"""Translation that loses nothing and refuses what is invalid, codec by codec
(issues 13.1, 14.4, 17): the join rule, the normal form every upstream
encoder starts from, the shapes servers accept, interleaved tool-call
deltas, structured output, Chat-only fields, bounded numbers.
"""

from __future__ import annotations

import itertools
import json
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmbridge.core import errors, ir
from lmbridge.core.assemble import Assembler
from lmbridge.protocols.carry import normal_form, system_note
from lmbridge.protocols.openai_chat.decode import ChatStreamDecoder
from lmbridge.protocols.registry import front_door, upstream_codec

APIS = ("chat", "messages", "responses")


def chat_request(**fields: Any) -> ir.Request:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields}
    return front_door("openai").parse_request(json.dumps(body).encode())


def encoded(api: str, req: ir.Request) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(upstream_codec(api).encode_request(req))
    return body


def user(*parts: ir.Part) -> ir.Message:
    return ir.Message(ir.Role.USER, parts)


def assistant(*parts: ir.Part) -> ir.Message:
    return ir.Message(ir.Role.ASSISTANT, parts)


def system(text: str) -> ir.Message:
    return ir.Message(ir.Role.SYSTEM, (ir.Text(text),))


# ----------------------------------------------------------------- join rule


@pytest.mark.parametrize(
    ("parts", "joined"),
    [
        (["first block", "second block"], "first block\nsecond block"),
        (["line A", "line B"], "line A\nline B"),
        (["$ ls\nOutput:", "a.py"], "$ ls\nOutput:\na.py"),  # Codex's shell output
        (["Output:\n", "a.py"], "Output:\na.py"),
        (["a ", "b"], "a b"),
        (["a", " b"], "a b"),
        (["a", "", "b"], "a\nb"),
        (["", ""], ""),
        (["one"], "one"),
    ],
)
def test_join_text(parts: list[str], joined: str) -> None:
    assert ir.join_text(parts) == joined


@settings(max_examples=500, deadline=None)
@given(st.lists(st.text(max_size=12), max_size=6))
def test_join_text_keeps_every_part_and_a_boundary(parts: list[str]) -> None:
    joined = ir.join_text(parts)
    kept = [p for p in parts if p]
    # Nothing is lost or reordered; only line breaks are added.
    assert joined.replace("\n", "") == "".join(kept).replace("\n", "")
    position = 0
    for before, after in itertools.pairwise(kept):
        position = joined.index(before, position) + len(before)
        boundary = joined[position - 1 : position + 1]
        assert any(c.isspace() for c in boundary), (before, after, joined)


def test_tool_result_text_joins_parts() -> None:
    result = ir.ToolResult("c", (ir.Text("line A"), ir.Image(url="u"), ir.Text("B")))
    assert result.text() == "line A\nB"


# ------------------------------------------------------------- normal form


def test_normal_form_merges_roles_joins_texts_and_puts_results_first() -> None:
    messages = (
        user(ir.Text("a"), ir.Text(""), ir.Text("b")),
        user(ir.Text("c"), ir.ToolResult("t", (ir.Text("r"),))),
        assistant(ir.Text("")),  # empty: dropped
        system("be brief"),
        user(ir.Text("d")),
    )
    assert normal_form(messages, system_as_user=True) == [
        user(
            ir.ToolResult("t", (ir.Text("r"),)),
            ir.Text(f"a\nb\nc\n{system_note('be brief')}\nd"),
        )
    ]
    kept = normal_form(messages, system_as_user=False)
    assert [m.role for m in kept] == ["user", "system", "user"]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(list(ir.Role)),
            st.lists(st.text(max_size=6), min_size=1, max_size=3),
        ),
        max_size=8,
    )
)
def test_normal_form_alternates_and_keeps_all_text(
    turns: list[tuple[ir.Role, list[str]]],
) -> None:
    messages = [ir.Message(r, tuple(ir.Text(t) for t in texts)) for r, texts in turns]
    out = normal_form(messages, system_as_user=True)
    roles = [m.role for m in out]
    assert ir.Role.SYSTEM not in roles
    assert all(a is not b for a, b in itertools.pairwise(roles))
    for message in out:
        assert all(isinstance(p, ir.Text) and p.text for p in message.parts)
        assert len(message.parts) == 1  # adjacent texts are one
    every = "".join(t for _, texts in turns for t in texts).replace("\n", "")
    got = "".join(p.text for m in out for p in m.parts if isinstance(p, ir.Text))
    for tag in ("<system>", "</system>"):
        got = got.replace(tag, "")
    assert got.replace("\n", "") == every


# ------------------------------------------------- shapes servers accept


TOOL_TURNS = (
    user(ir.Text("")),  # empty text: dropped
    user(ir.Text("Weather?")),
    assistant(ir.Thinking("hmm"), ir.ToolCall("c1", "w", '{"city":"P"}')),
    user(
        ir.ToolResult("c1", (ir.Text("sunny"), ir.Image("image/png", "QUJD"))),
        ir.ToolResult("c2", (ir.Text("a"), ir.Text("b")), is_error=True),
    ),
    system("Answer in French."),
    assistant(ir.Thinking("only thinking")),  # nothing Chat can carry
    user(ir.Text("Thanks")),
)


def test_chat_turns_every_server_accepts() -> None:
    req = ir.Request("m", TOOL_TURNS, system=(ir.Text("Be brief."),))
    messages = encoded("chat", req)["messages"]
    assert messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "w", "arguments": '{"city":"P"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "c2", "content": "Error: a\nb"},
        {
            "role": "user",
            "content": [
                {
                    "type": "image_url",
                    "image_url": {"url": "data:image/png;base64,QUJD"},
                },
                {
                    "type": "text",
                    "text": f"{system_note('Answer in French.')}\nThanks",
                },
            ],
        },
    ]


def test_messages_turns() -> None:
    req = ir.Request("m", TOOL_TURNS)
    messages = encoded("messages", req)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    last = messages[2]["content"]
    assert [b["type"] for b in last] == ["tool_result", "tool_result", "text"]
    assert last[1]["content"] == [{"type": "text", "text": "a\nb"}]
    assert last[2]["text"] == f"{system_note('Answer in French.')}\nThanks"


def test_responses_turns_keep_the_system_message_in_place() -> None:
    req = ir.Request("m", TOOL_TURNS)
    items = encoded("responses", req)["input"]
    kinds = [(i["type"], i.get("role")) for i in items]
    assert kinds == [
        ("message", "user"),
        ("function_call", None),
        ("function_call_output", None),
        ("function_call_output", None),
        ("message", "developer"),
        ("message", "user"),
    ]
    assert items[3]["output"] == "a\nb"
    assert items[4]["content"] == [{"type": "input_text", "text": "Answer in French."}]


@pytest.mark.parametrize("api", APIS)
def test_encoding_of_a_turn_does_not_depend_on_what_follows(api: str) -> None:
    # Prefix stability: the history's encoding only grows turn by turn.
    turns = TOOL_TURNS[:4]
    before = encoded(api, ir.Request("m", turns))
    after = encoded(api, ir.Request("m", (*turns, assistant(ir.Text("ok")))))
    key = "input" if api == "responses" else "messages"
    assert after[key][: len(before[key])] == before[key]


# --------------------------------------------------------- front doors


def test_front_doors_keep_late_system_messages_in_place() -> None:
    chat = chat_request(
        messages=[
            {"role": "system", "content": "top"},
            {"role": "user", "content": "a"},
            {"role": "developer", "content": [{"type": "text", "text": "late"}]},
            {"role": "user", "content": [{"type": "text", "text": "b"}]},
        ]
    )
    assert chat.system == (ir.Text("top"),)
    assert chat.messages == (user(ir.Text("a")), system("late"), user(ir.Text("b")))


def test_chat_front_door_joins_content_parts_of_system_and_assistant() -> None:
    req = chat_request(
        messages=[
            {
                "role": "system",
                "content": [
                    {"type": "text", "text": "a"},
                    {"type": "text", "text": "b"},
                ],
            },
            {"role": "user", "content": "x"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "c"},
                    {"type": "text", "text": "d"},
                ],
            },
        ]
    )
    assert req.system == (ir.Text("a\nb"),)
    assert req.messages[1] == assistant(ir.Text("c\nd"))


def test_chat_front_door_lists_dropped_tools() -> None:
    req = chat_request(
        tools=[
            {"type": "function", "function": {"name": "f"}},
            {"type": "custom", "custom": {"name": "patch"}},
        ],
        tool_choice={"type": "custom", "custom": {"name": "patch"}},
    )
    assert [t.name for t in req.tools] == ["f"]
    assert req.dropped == (
        "tools[1]: type 'custom' is not carried",
        "tool_choice: type 'custom' is not carried (auto)",
    )
    assert req.tool_choice == ir.ToolChoice(ir.ToolChoiceMode.AUTO)


def test_chat_allowed_tools_narrow_the_tools() -> None:
    req = chat_request(
        tools=[
            {"type": "function", "function": {"name": "f"}},
            {"type": "function", "function": {"name": "g"}},
        ],
        tool_choice={
            "type": "allowed_tools",
            "allowed_tools": {
                "mode": "required",
                "tools": [{"type": "function", "function": {"name": "g"}}],
            },
        },
    )
    assert [t.name for t in req.tools] == ["g"]
    assert req.tool_choice == ir.ToolChoice(ir.ToolChoiceMode.REQUIRED)


# ----------------------------------------- Chat-only fields, structured output


@pytest.mark.parametrize(
    ("fields", "first"),
    [
        ({"n": 2}, "n: asks for 2 choices"),
        ({"logprobs": True}, "logprobs: "),
        ({"logprobs": True, "top_logprobs": 2}, "logprobs: "),
        ({"modalities": ["text", "audio"]}, "audio: "),
        ({"functions": [{"name": "f"}]}, "functions: "),
    ],
)
@pytest.mark.parametrize("api", ["messages", "responses"])
def test_chat_only_fields_are_refused_by_other_apis(
    fields: dict[str, Any], first: str, api: str
) -> None:
    req = chat_request(**fields)
    assert req.unportable[0].startswith(first)
    with pytest.raises(errors.InvalidRequest) as caught:
        upstream_codec(api).encode_request(req)
    assert caught.value.status == 400
    assert caught.value.message.startswith(first)
    assert caught.value.param == first.partition(":")[0]
    # A Chat upstream carries them.
    body = encoded("chat", req)
    assert all(body[key] == value for key, value in fields.items())


@pytest.mark.parametrize(
    "fields",
    [
        {"n": 1},
        {"logprobs": False},
        {"top_logprobs": 0},
        {"presence_penalty": 0.5, "frequency_penalty": 0.2},
        {"modalities": ["text"]},
        {"function_call": "none"},
    ],
)
def test_neutral_or_hint_fields_are_not_refused(fields: dict[str, Any]) -> None:
    req = chat_request(**fields)
    assert req.unportable == ()
    for api in ("messages", "responses"):
        upstream_codec(api).encode_request(req)
    hints = upstream_codec("messages").omitted(req)
    assert all(f"{key}: not a Messages field" in hints for key in fields)


SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}}


def test_chat_response_format_in_every_direction() -> None:
    req = chat_request(
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "out", "schema": SCHEMA, "strict": True},
        }
    )
    assert req.output_format == ir.OutputFormat(
        "json_schema", SCHEMA, "out", None, True
    )
    assert "response_format" not in req.extras
    assert encoded("chat", req)["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "out", "schema": SCHEMA, "strict": True},
    }
    assert encoded("messages", req)["output_config"] == {
        "format": {"type": "json_schema", "schema": SCHEMA}
    }
    assert encoded("responses", req)["text"] == {
        "format": {
            "type": "json_schema",
            "name": "out",
            "schema": SCHEMA,
            "strict": True,
        }
    }
    plain = chat_request(response_format={"type": "text"})
    assert plain.output_format is None
    whole = chat_request(response_format={"type": "json_object"})
    with pytest.raises(errors.InvalidRequest) as caught:
        encoded("messages", whole)
    assert caught.value.param == "response_format"


def test_anthropic_output_config_reaches_each_api() -> None:
    body = {
        "model": "m",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": "x"}],
        "output_config": {"format": {"type": "json_schema", "schema": SCHEMA}},
        "thinking": {"type": "adaptive"},
    }
    req = front_door("anthropic").parse_request(json.dumps(body).encode())
    assert encoded("chat", req)["response_format"]["json_schema"] == {
        "name": "response",
        "schema": SCHEMA,
    }
    assert encoded("chat", req)["reasoning_effort"] == "medium"
    assert encoded("messages", req)["output_config"] == body["output_config"]
    assert encoded("responses", req)["text"]["format"]["schema"] == SCHEMA


# ------------------------------------------------------------ bounded numbers


BOUNDS = [
    ("openai", "max_tokens", 2**31 - 1, 2**31),
    ("openai", "max_completion_tokens", 1, 0),
    ("openai", "seed", -(2**63), 2**63),
    ("openai", "n", 128, 129),
    ("openai", "top_logprobs", 20, 21),
    ("openai", "temperature", 2, 2.5),
    ("openai", "top_k", -1, -2),
    ("anthropic", "max_tokens", 2**31 - 1, 2**70),
    ("anthropic", "top_k", 0, -1),
    ("anthropic", "temperature", 1, 1.1),
    ("responses", "max_output_tokens", 2**31 - 1, 2**31),
]


def _body(protocol: str, field: str, value: Any) -> bytes:
    base: dict[str, Any] = {"model": "m"}
    if protocol == "responses":
        base["input"] = "x"
    else:
        base["messages"] = [{"role": "user", "content": "x"}]
    if protocol == "anthropic":
        base["max_tokens"] = 10
    return json.dumps({**base, field: value}).encode()


@pytest.mark.parametrize(("protocol", "field", "ok", "bad"), BOUNDS)
def test_numbers_are_bounded(protocol: str, field: str, ok: Any, bad: Any) -> None:
    door = front_door(protocol)
    req = door.parse_request(_body(protocol, field, ok))
    for api in APIS:
        if not req.unportable:
            upstream_codec(api).encode_request(req)
    with pytest.raises(errors.InvalidRequest) as caught:
        door.parse_request(_body(protocol, field, bad))
    assert caught.value.status == 400
    assert caught.value.param == field


def test_chat_max_tokens_minus_one_is_no_limit() -> None:
    # LM Studio's clients send -1 for "no limit".
    assert chat_request(max_tokens=-1).max_tokens is None
    assert chat_request(max_tokens=-1, max_completion_tokens=5).max_tokens == 5


@settings(max_examples=300, deadline=None)
@given(
    protocol=st.sampled_from([b[0] for b in BOUNDS]),
    field=st.sampled_from(sorted({b[1] for b in BOUNDS})),
    value=st.integers(min_value=-(2**80), max_value=2**80)
    | st.sampled_from([0, 1, -1, 2**31 - 1, 2**31, 2**63 - 1, 2**63, 2**64]),
)
def test_any_integer_is_a_request_or_a_400(
    protocol: str, field: str, value: int
) -> None:
    try:
        req = front_door(protocol).parse_request(_body(protocol, field, value))
    except errors.InvalidRequest as exc:
        assert exc.status == 400
        return
    for name in ("max_tokens", "top_k", "seed"):
        number = getattr(req, name)
        assert number is None or -(2**63) <= number < 2**63
    for api in APIS:
        if not req.unportable:
            upstream_codec(api).encode_request(req)


# ------------------------------------------------ interleaved tool-call deltas


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return (
        b"data: "
        + json.dumps({"id": "x", "model": "m", "choices": [choice]}).encode()
        + b"\n\n"
    )


def _call_delta(index: int, arguments: str, call_id: str | None = None) -> bytes:
    call: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if call_id is not None:
        call["id"] = call_id
        call["function"]["name"] = "f"
    return _chunk({"tool_calls": [call]})


def _answer(frames: list[bytes]) -> tuple[ir.Response, list[ir.Event]]:
    decoder = ChatStreamDecoder()
    events: list[ir.Event] = []
    for frame in frames:
        events += decoder.feed(frame)
    events += decoder.close()
    assembler = Assembler()
    for event in events:
        assembler.feed(event)
    return assembler.result(), events


def _sequential(events: list[ir.Event]) -> None:
    """IR blocks one at a time: start, deltas of that block, stop."""
    open_index: int | None = None
    seen: set[int] = set()
    for event in events:
        if isinstance(event, ir.BlockStart):
            assert open_index is None and event.index not in seen
            open_index = event.index
            seen.add(event.index)
        elif isinstance(event, ir.BlockStop):
            assert event.index == open_index
            open_index = None
        elif isinstance(event, ir.TextDelta | ir.ThinkingDelta | ir.ToolArgsDelta):
            assert event.index == open_index
    assert open_index is None


def test_interleaved_tool_call_deltas_keep_every_argument() -> None:
    # The stream of issue 17.2.
    frames = [
        _call_delta(0, '{"n"', "c0"),
        _call_delta(1, '{"n"', "c1"),
        _call_delta(1, ": 2}"),
        _call_delta(0, ": 1}"),
        _chunk({}, "tool_calls"),
        b"data: [DONE]\n\n",
    ]
    answer, events = _answer(frames)
    _sequential(events)
    calls = [p for p in answer.parts if isinstance(p, ir.ToolCall)]
    assert [(c.id, json.loads(c.arguments)) for c in calls] == [
        ("c0", {"n": 1}),
        ("c1", {"n": 2}),
    ]
    assert answer.stop_reason is ir.StopReason.TOOL_USE


def test_sequential_calls_still_stream_as_they_come() -> None:
    frames = [
        _call_delta(0, '{"a":', "c0"),
        _call_delta(0, "1}"),
        _call_delta(1, '{"b":', "c1"),
        _call_delta(1, "2}"),
    ]
    decoder = ChatStreamDecoder()
    seen = [decoder.feed(frame) for frame in frames]
    # Call 0 closes as soon as call 1 starts: nothing waits for the end.
    assert ir.BlockStop(0) in seen[2]
    assert ir.ToolArgsDelta(1, "2}") in seen[3]


def test_calls_numbered_zero_with_new_ids_are_separate() -> None:
    frames = [
        _call_delta(0, '{"a": 1}', "c0"),
        _call_delta(0, '{"b": 2}', "c1"),
        _chunk({}, "tool_calls"),
    ]
    answer, _ = _answer(frames)
    calls = [p for p in answer.parts if isinstance(p, ir.ToolCall)]
    assert [c.id for c in calls] == ["c0", "c1"]


def test_text_after_an_unfinished_call_waits_its_turn() -> None:
    frames = [
        _call_delta(0, '{"a"', "c0"),
        _chunk({"content": "note"}),
        _call_delta(0, ": 1}"),
        _chunk({}, "tool_calls"),
    ]
    answer, events = _answer(frames)
    _sequential(events)
    assert answer.parts[0] == ir.ToolCall("c0", "f", '{"a": 1}')
    assert answer.parts[1] == ir.Text("note")


def interleaved_streams() -> st.SearchStrategy[
    tuple[list[dict[str, Any]], list[bytes]]
]:
    """Parallel calls whose argument pieces arrive in any order."""

    def build(
        calls: list[dict[str, Any]], seed: int, sizes: list[int]
    ) -> tuple[list[dict[str, Any]], list[bytes]]:
        rng = random.Random(seed)
        queues = []
        for i, args in enumerate(calls):
            text = json.dumps(args)
            size = sizes[i % len(sizes)]
            queues.append([text[j : j + size] for j in range(0, len(text), size)])
        frames = [_call_delta(i, "", f"c{i}") for i in range(len(calls))]
        while any(queues):
            i = rng.choice([k for k, q in enumerate(queues) if q])
            frames.append(_call_delta(i, queues[i].pop(0)))
        frames.append(_chunk({}, "tool_calls"))
        return calls, frames

    arguments = st.dictionaries(
        st.text("abcxyz", min_size=1, max_size=4),
        st.integers() | st.text(max_size=6) | st.booleans(),
        max_size=3,
    )
    return st.builds(
        build,
        st.lists(arguments, min_size=1, max_size=4),
        st.integers(0, 2**32),
        st.lists(st.integers(1, 9), min_size=1, max_size=4),
    )


@settings(max_examples=500, deadline=None)
@given(interleaved_streams())
def test_any_interleaving_gives_every_call_whole(
    case: tuple[list[dict[str, Any]], list[bytes]],
) -> None:
    calls, frames = case
    answer, events = _answer(frames)
    _sequential(events)
    got = [p for p in answer.parts if isinstance(p, ir.ToolCall)]
    assert [c.id for c in got] == [f"c{i}" for i in range(len(calls))]
    assert [json.loads(c.arguments) for c in got] == calls
