"""Tool calls printed as text become real tool calls (protocols/toolrepair.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmbridge.core import ir
from lmbridge.protocols.anthropic import AnthropicStreamEncoder
from lmbridge.protocols.jsonutil import parse_json_object
from lmbridge.protocols.toolrepair import ToolCallRepair, new_call_id
from lmbridge.protocols.toolscan import Scanner
from validators import parse_sse, validate_anthropic_stream

TOOLS = {"read_file", "bash"}
SCHEMAS: dict[str, dict[str, Any]] = {
    "read_file": {
        "type": "object",
        "properties": {"path": {"type": "string"}, "limit": {"type": "integer"}},
        "required": ["path"],
    },
    "bash": {"type": "object", "properties": {"command": {"type": "string"}}},
}
END = ir.Finish(ir.StopReason.END_TURN, ir.Usage(input_tokens=9, output_tokens=4))


def stream_of(text: str, chunk: int) -> list[ir.Event]:
    """An upstream answer: one text block carrying `text` in `chunk`-sized deltas."""
    events: list[ir.Event] = [
        ir.MessageStart("m", "x"),
        ir.BlockStart(0, ir.BlockKind.TEXT),
    ]
    events += [ir.TextDelta(0, text[i : i + chunk]) for i in range(0, len(text), chunk)]
    return [*events, ir.BlockStop(0), END]


def run(
    events: list[ir.Event], names: set[str] = TOOLS, schemas: Any = SCHEMAS
) -> list[ir.Event]:
    repair = ToolCallRepair(names, schemas)
    out = [o for event in events for o in repair.feed(event)]
    return out + repair.close()


def summary(events: list[ir.Event]) -> list[tuple[Any, ...]]:
    """Text blocks as ("text", joined text), calls as ("call", name, args)."""
    result: list[tuple[Any, ...]] = []
    kinds: dict[int, ir.BlockStart] = {}
    for event in events:
        if isinstance(event, ir.BlockStart):
            kinds[event.index] = event
            if event.kind is ir.BlockKind.TEXT:
                result.append(("text", ""))
            elif event.kind is ir.BlockKind.TOOL_CALL:
                result.append(("call", event.name, ""))
        elif isinstance(event, ir.TextDelta):
            assert result[-1][0] == "text"
            result[-1] = ("text", result[-1][1] + event.text)
        elif isinstance(event, ir.ToolArgsDelta):
            name, args = result[-1][1], result[-1][2] + event.partial_json
            result[-1] = ("call", name, args)
    return [
        (item[0], item[1], json.loads(item[2])) if item[0] == "call" else item
        for item in result
    ]


def assert_well_formed(events: list[ir.Event]) -> None:
    """Sequential indexes, one block at a time, every block stopped."""
    expected = 0
    open_index: int | None = None
    for event in events:
        if isinstance(event, ir.BlockStart):
            assert open_index is None
            assert event.index == expected
            open_index = event.index
            expected += 1
        elif isinstance(event, ir.BlockStop):
            assert event.index == open_index
            open_index = None
        elif isinstance(event, ir.TextDelta | ir.ToolArgsDelta | ir.ThinkingDelta):
            assert event.index == open_index
    assert open_index is None


def finish(events: list[ir.Event]) -> ir.Finish:
    last = events[-1]
    assert isinstance(last, ir.Finish)
    return last


CASES = [
    (
        'Let me look.\n<tool_call>\n{"name": "read_file", "arguments": {"path": "a.py"}}\n</tool_call>',
        [("text", "Let me look.\n"), ("call", "read_file", {"path": "a.py"})],
    ),
    (
        '<tool_call>{"name": "bash", "arguments": "{\\"command\\": \\"ls\\"}"}</tool_call>',
        [("call", "bash", {"command": "ls"})],
    ),
    (
        '<tool_call>{"type": "function", "function": {"name": "bash", "parameters": {"command": "pwd"}}}</tool_call>',
        [("call", "bash", {"command": "pwd"})],
    ),
    (
        "<function=bash>\n<parameter=command>\nls -la\n</parameter>\n</function>",
        [("call", "bash", {"command": "ls -la"})],
    ),
    (
        "<tool_call>\n<function=read_file>\n<parameter=path>\nx.py\n</parameter>\n"
        "<parameter=limit>\n20\n</parameter>\n</function>\n</tool_call>",
        [("call", "read_file", {"path": "x.py", "limit": 20})],
    ),
    (
        '<function=bash>{"command": "echo hi"}</function>',
        [("call", "bash", {"command": "echo hi"})],
    ),
    (
        "<read_file><path>src/x.py</path><limit>5</limit></read_file>",
        [("call", "read_file", {"path": "src/x.py", "limit": 5})],
    ),
    ("<read_file>src/x.py</read_file>", [("call", "read_file", {"path": "src/x.py"})]),
    (
        'Sure.\n{"type": "tool_use", "name": "bash", "input": {"command": "ls"}}\nDone.',
        [("text", "Sure.\n"), ("call", "bash", {"command": "ls"}), ("text", "\nDone.")],
    ),
    (
        '{"name": "read_file", "arguments": {"path": "p"}}',
        [("call", "read_file", {"path": "p"})],
    ),
    (
        "One <tool_call>"
        '{"name": "bash", "arguments": {"command": "a"}}</tool_call> two <tool_call>'
        '{"name": "bash", "arguments": {"command": "b"}}</tool_call>\n',
        [
            ("text", "One "),
            ("call", "bash", {"command": "a"}),
            ("text", " two "),
            ("call", "bash", {"command": "b"}),
        ],
    ),
    (
        '<tool_call>{"name": "bash", "arguments": {"command": "ls"}}',
        [("call", "bash", {"command": "ls"})],
    ),
]


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 1000])
@pytest.mark.parametrize(("text", "expected"), CASES)
def test_printed_calls_become_tool_calls(
    text: str, expected: list[tuple[str, Any]], chunk: int
) -> None:
    out = run(stream_of(text, chunk))
    assert summary(out) == expected
    assert_well_formed(out)
    assert finish(out).stop_reason is ir.StopReason.TOOL_USE
    assert finish(out).usage == END.usage
    ids = [e.call_id for e in out if isinstance(e, ir.BlockStart) and e.call_id]
    assert all(i.startswith("call_") and len(i) == 29 for i in ids)
    assert len(set(ids)) == len(ids)


PLAIN = [
    "a < b and c > d, x<y",
    "<b>bold</b> and <div class='x'>html</div>",
    "Use <read_file> to read files, and <tool_call> tags if you must.",
    "Compare: if (a <bash) {\n  return;\n}",
    'Here is JSON:\n{"name": "someone", "age": 3}\n{"a": 1}\n{"type": "object"}',
    "{not json at all",
    "<function=bash but never closed",
    '<tool_call>{"name": "bash", "arguments": [1]}</tool_call>',
    "<read_file><path>x</path>",
    '{"name": "bash", "description": "no arguments key"}',
]


@pytest.mark.parametrize("chunk", [1, 4, 1000])
@pytest.mark.parametrize("text", PLAIN)
def test_plain_text_is_kept(text: str, chunk: int) -> None:
    out = run(stream_of(text, chunk))
    assert summary(out) == [("text", text)]
    assert_well_formed(out)
    assert finish(out) == END


def test_text_without_candidates_flows_through_at_once() -> None:
    repair = ToolCallRepair(TOOLS, SCHEMAS)
    assert repair.feed(ir.BlockStart(0, ir.BlockKind.TEXT)) == []
    assert repair.feed(ir.TextDelta(0, "Hello a < b")) == [
        ir.BlockStart(0, ir.BlockKind.TEXT),
        ir.TextDelta(0, "Hello a < b"),
    ]
    assert repair.feed(ir.TextDelta(0, " then <")) == [ir.TextDelta(0, " then ")]
    assert repair.feed(ir.TextDelta(0, "p>")) == [ir.TextDelta(0, "<p>")]
    assert repair.feed(ir.TextDelta(0, "x\n{")) == [ir.TextDelta(0, "x\n")]
    assert repair.feed(ir.TextDelta(0, '"a": 1}')) == [ir.TextDelta(0, '{"a": 1}')]
    assert repair.feed(ir.TextDelta(0, " mid { brace")) == [
        ir.TextDelta(0, " mid { brace")
    ]


def test_held_tag_prefix_is_released_at_block_end() -> None:
    out = run(stream_of("ends with <read_fi", 3))
    assert summary(out) == [("text", "ends with <read_fi")]


def test_no_tools_is_a_pass_through() -> None:
    events = stream_of('<tool_call>{"name": "bash", "arguments": {}}</tool_call>', 2)
    repair = ToolCallRepair(set())
    assert [o for e in events for o in repair.feed(e)] == events
    assert repair.close() == []


def test_other_blocks_are_reindexed_and_kept() -> None:
    events: list[ir.Event] = [
        ir.MessageStart("m", "x"),
        ir.BlockStart(0, ir.BlockKind.THINKING),
        ir.ThinkingDelta(0, "<tool_call> in thinking stays"),
        ir.SignatureDelta(0, "sig"),
        ir.BlockStop(0),
        ir.BlockStart(1, ir.BlockKind.TEXT),
        ir.TextDelta(1, "x <bash>ls</bash> y"),
        ir.BlockStop(1),
        ir.BlockStart(2, ir.BlockKind.TOOL_CALL, "toolu_1", "read_file"),
        ir.ToolArgsDelta(2, '{"path": "z"}'),
        ir.BlockStop(2),
        ir.Finish(ir.StopReason.STOP_SEQUENCE, ir.Usage(), stop_sequence="</x>"),
    ]
    out = run(events)
    assert_well_formed(out)
    assert out[:5] == [
        ir.MessageStart("m", "x"),
        ir.BlockStart(0, ir.BlockKind.THINKING),
        ir.ThinkingDelta(0, "<tool_call> in thinking stays"),
        ir.SignatureDelta(0, "sig"),
        ir.BlockStop(0),
    ]
    assert summary(out) == [
        ("text", "x "),
        ("call", "bash", {"command": "ls"}),
        ("text", " y"),
        ("call", "read_file", {"path": "z"}),
    ]
    assert out[-4:] == [
        ir.BlockStart(4, ir.BlockKind.TOOL_CALL, "toolu_1", "read_file"),
        ir.ToolArgsDelta(4, '{"path": "z"}'),
        ir.BlockStop(4),
        ir.Finish(ir.StopReason.TOOL_USE, ir.Usage()),
    ]
    assert finish(out).stop_sequence is None


def test_whitespace_around_calls_makes_no_empty_blocks() -> None:
    text = '\n\n<tool_call>{"name": "bash", "arguments": {}}</tool_call>\n\n'
    out = run(stream_of(text, 2))
    assert summary(out) == [("call", "bash", {})]


def test_unknown_bare_tag_value_goes_to_input_without_schema() -> None:
    out = run(stream_of("<bash>ls -l</bash>", 1), schemas=None)
    assert summary(out) == [("call", "bash", {"input": "ls -l"})]


def test_stream_error_releases_held_text_first() -> None:
    repair = ToolCallRepair(TOOLS)
    out = repair.feed(ir.BlockStart(0, ir.BlockKind.TEXT))
    out += repair.feed(ir.TextDelta(0, "hi <tool_call>{"))
    error = ir.StreamError("upstream_error", "cut")
    out += repair.feed(error)
    assert summary(out) == [("text", "hi <tool_call>{")]
    assert out[-2:] == [ir.BlockStop(0), error]


def test_for_request_uses_schemas() -> None:
    request = ir.Request(
        model="m",
        messages=(),
        tools=(ir.Tool("read_file", parameters=SCHEMAS["read_file"]),),
    )
    repair = ToolCallRepair.for_request(request)
    assert repair.tool_names == {"read_file"}
    out = [o for e in stream_of("<read_file>a</read_file>", 5) for o in repair.feed(e)]
    assert summary(out) == [("call", "read_file", {"path": "a"})]


def test_repaired_stream_is_valid_anthropic() -> None:
    text = 'I will run it.\n<tool_call>{"name": "bash", "arguments": {"command": "ls"}}</tool_call>'
    encoder = AnthropicStreamEncoder(model="m")
    raw = b"".join(encoder.encode(e) for e in run(stream_of(text, 3)))
    events = parse_sse(raw)
    validate_anthropic_stream(events)
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {}),
        ("  {} ", {}),
        ('{"a": 1}', {"a": 1}),
        ('```json\n{"a": 1}\n```', {"a": 1}),
        ('{"a": 1}}', {"a": 1}),
        ('{"a": {"b": [1, "x]"', {"a": {"b": [1, "x]"]}}),
        ('{"a": 1,', {"a": 1}),
        ('{"a": "x\\"', {"a": 'x"'}),
        ('{"a": "x\\', None),
        ('{"a":', None),
        ("[1]", None),
        ("null", None),
        ("nothing", None),
        ('{"a": 1]', None),
    ],
)
def test_parse_json_object(text: str, expected: dict[str, Any] | None) -> None:
    assert parse_json_object(text) == expected


def test_new_call_id() -> None:
    assert new_call_id() != new_call_id()
    assert new_call_id().startswith("call_")


PIECES = [*'ab <>{}/"\n:=_', "<tool_call>", "</tool_call>", "<bash>", "</bash>"]
PIECES += ['{"name": "bash", "arguments": {}}', "<function=bash>", "</function>"]


@settings(max_examples=300)
@given(
    st.lists(st.sampled_from(PIECES), max_size=30).map("".join),
    st.integers(1, 8),
)
def test_any_text_gives_a_well_formed_stream(text: str, chunk: int) -> None:
    out = run(stream_of(text, chunk))
    assert_well_formed(out)
    assert isinstance(out[-1], ir.Finish)
    if not any(
        isinstance(e, ir.BlockStart) and e.kind is ir.BlockKind.TOOL_CALL for e in out
    ):
        joined = "".join(e.text for e in out if isinstance(e, ir.TextDelta))
        assert joined == (text if text.strip() else "")


@settings(max_examples=300)
@given(st.text(max_size=40), st.integers(1, 5))
def test_chunking_never_changes_the_result(text: str, chunk: int) -> None:
    whole = summary(run(stream_of(text, 1000)))
    assert summary(run(stream_of(text, chunk))) == whole


def _candidate_by_character(buf: str, line_start: bool) -> int:
    """Where a call may start, as the scanner once found it, a character at
    a time: any `<`, or a `{` with only whitespace before it on its line."""
    for pos, char in enumerate(buf):
        if char == "<" or (char == "{" and line_start):
            return pos
        if char == "\n":
            line_start = True
        elif not char.isspace():
            line_start = False
    return -1


@settings(max_examples=500)
@given(
    st.text(
        alphabet=st.sampled_from("<{x \t\r\n\x0b\x1c\u00a0\u2028\u3000"), max_size=30
    )
    | st.text(max_size=30),
    st.booleans(),
)
def test_a_call_may_start_where_the_character_loop_said(
    buf: str, line_start: bool
) -> None:
    """`Scanner._candidate` searches with a pattern in C; it finds exactly
    what the loop over every character (above) found, for any whitespace."""
    scanner = Scanner(ToolCallRepair(TOOLS, SCHEMAS))
    scanner._buf, scanner._line_start = buf, line_start
    assert scanner._candidate() == _candidate_by_character(buf, line_start)
