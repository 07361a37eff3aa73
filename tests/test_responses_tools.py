"""Responses namespace and freeform (`custom`) tools, and content-array
tool outputs: the codec, then the `openai` SDK through LM Bridge to each
upstream API.

Codex sends MCP tools as `{"type": "namespace", "name": "mcp__srv",
"tools": [...]}` and resolves a call only from a `function_call` carrying
`"namespace": "mcp__srv", "name": "read"`; `apply_patch` is a `custom`
tool answered by `custom_tool_call` items. Upstream, both are functions.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fakes.openai_upstream import FakeOpenAIUpstream, ToolCallScript
from lmbridge.core import ir
from lmbridge.protocols.openai_responses import RESPONSES
from lmbridge.protocols.openai_responses.freeform import InputStream, input_from
from lmbridge.protocols.openai_responses.tools import flat_name
from support import RunningProxy, oai, running, settings_for, start_proxy
from test_responses_codec import check_sdk_events, frames, sdk_client
from validators import validate_responses_stream

MODEL = "claude-sonnet-4-6"  # routed to the fake by settings_for
PNG_URL = "data:image/png;base64,iVBORw0KGgo="
GRAMMAR = 'start: begin_patch hunk+ end_patch\nbegin_patch: "*** Begin Patch" LF'
READ_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"path": {"type": "string"}},
    "required": ["path"],
}
NAMESPACE_TOOL: dict[str, Any] = {
    "type": "namespace",
    "name": "mcp__srv",
    "description": "Tools of the srv MCP server.",
    "tools": [
        {"type": "function", "name": "read", "parameters": READ_SCHEMA},
        {"type": "custom", "name": "note", "description": "Write a note."},
        {"type": "web_search"},
    ],
}
CUSTOM_TOOL: dict[str, Any] = {
    "type": "custom",
    "name": "apply_patch",
    "description": "Edit files with a patch.",
    "format": {"type": "grammar", "syntax": "lark", "definition": GRAMMAR},
}
PLAIN_TOOL: dict[str, Any] = {
    "type": "function",
    "name": "exec_command",
    "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}},
}
PATCH = '*** Begin Patch\n*** Add File: a.txt\n+say "hi" \\ \u00e9\n*** End Patch\n'


def parse(body: dict[str, Any]) -> ir.Request:
    return RESPONSES.parse_request(json.dumps(body).encode())


def codex_request(**extra: Any) -> ir.Request:
    body = {
        "model": "m",
        "input": "hi",
        "stream": True,
        "tools": [PLAIN_TOOL, NAMESPACE_TOOL, CUSTOM_TOOL],
    }
    return parse({**body, **extra})


def call_events(name: str, arguments: list[str]) -> list[ir.Event]:
    """An answer that calls `name`, its JSON arguments in `arguments` pieces."""
    return [
        ir.MessageStart("resp_x", "m"),
        ir.BlockStart(0, ir.BlockKind.TOOL_CALL, "call_1", name),
        *(ir.ToolArgsDelta(0, piece) for piece in arguments),
        ir.BlockStop(0),
        ir.Finish(ir.StopReason.TOOL_USE, ir.Usage(5, 3)),
    ]


def encode(request: ir.Request, events: list[ir.Event]) -> bytes:
    encoder = RESPONSES.stream_encoder(request)
    return b"".join(encoder.encode(e) for e in events)


# ------------------------------------------------------------ declarations


def test_namespace_tools_are_flattened_and_keep_their_identity() -> None:
    request = codex_request()
    tools = {t.name: t for t in request.tools}
    assert list(tools) == [
        "exec_command",
        "mcp__srv__read",
        "mcp__srv__note",
        "apply_patch",
    ]
    read = tools["mcp__srv__read"]
    assert (read.namespace, read.client_name, read.kind) == (
        "mcp__srv",
        "read",
        ir.ToolKind.FUNCTION,
    )
    assert read.parameters == READ_SCHEMA
    assert tools["mcp__srv__note"].kind is ir.ToolKind.CUSTOM
    assert tools["exec_command"].namespace is None
    assert request.dropped == ("tools[1].tools[2]: type 'web_search' is not carried",)


def test_custom_tool_is_a_function_of_one_string_with_its_grammar() -> None:
    request = parse({"model": "m", "input": "hi", "tools": [CUSTOM_TOOL]})
    (tool,) = request.tools
    assert (tool.name, tool.kind) == ("apply_patch", ir.ToolKind.CUSTOM)
    assert tool.parameters["properties"]["input"]["type"] == "string"
    assert tool.parameters["required"] == ["input"]
    assert tool.description.startswith("Edit files with a patch.")
    assert "lark grammar" in tool.description and GRAMMAR in tool.description


def test_flat_names_are_deterministic_safe_and_distinct() -> None:
    long = "a" * 70
    assert flat_name("mcp__srv", "read") == "mcp__srv__read"
    assert flat_name(None, "read") == "read"
    hashed = flat_name("mcp__srv", long)
    assert len(hashed) == 64 and hashed == flat_name("mcp__srv", long)
    assert flat_name("mcp__srv", "read.file") != flat_name("mcp__srv", "read_file")
    assert all(c.isalnum() or c in "_-" for c in flat_name("ns", "read.file"))
    # A plain tool keeps its name; the namespaced one that clashes moves.
    clash = {"type": "function", "name": "mcp__srv__read"}
    request = parse({"model": "m", "input": "hi", "tools": [NAMESPACE_TOOL, clash]})
    names = [t.name for t in request.tools]
    assert names[2] == "mcp__srv__read"
    assert names[0].startswith("mcp__srv__read_") and len(set(names)) == 3


def test_tool_choice_names_the_flat_tool() -> None:
    request = codex_request(
        tool_choice={"type": "function", "name": "read", "namespace": "mcp__srv"}
    )
    assert request.tool_choice == ir.ToolChoice(
        ir.ToolChoiceMode.TOOL, "mcp__srv__read"
    )
    request = codex_request(tool_choice={"type": "custom", "name": "apply_patch"})
    assert request.tool_choice == ir.ToolChoice(ir.ToolChoiceMode.TOOL, "apply_patch")


# ----------------------------------------------------------------- history


def test_history_calls_and_outputs_map_to_the_upstream_names() -> None:
    request = codex_request(
        input=[
            {"role": "user", "content": "go"},
            {
                "type": "function_call",
                "call_id": "c1",
                "name": "read",
                "namespace": "mcp__srv",
                "arguments": '{"path": "a"}',
            },
            {
                "type": "custom_tool_call",
                "call_id": "c2",
                "name": "apply_patch",
                "input": PATCH,
                "status": "completed",
            },
            {
                "type": "function_call_output",
                "call_id": "c1",
                "output": [
                    {"type": "input_text", "text": "file a"},
                    {"type": "input_image", "image_url": PNG_URL},
                ],
            },
            {"type": "custom_tool_call_output", "call_id": "c2", "output": "Done!"},
        ]
    )
    _user, assistant, results = request.messages
    read, patch = assistant.parts
    assert read == ir.ToolCall(
        "c1", "mcp__srv__read", '{"path": "a"}', namespace="mcp__srv"
    )
    assert isinstance(patch, ir.ToolCall) and patch.kind is ir.ToolKind.CUSTOM
    assert patch.name == "apply_patch"
    assert json.loads(patch.arguments) == {"input": PATCH}
    first, second = results.parts
    assert first == ir.ToolResult(
        "c1",
        (ir.Text("file a"), ir.Image(media_type="image/png", data="iVBORw0KGgo=")),
    )
    assert second == ir.ToolResult("c2", (ir.Text("Done!"),))


def test_custom_output_as_content_parts() -> None:
    request = codex_request(
        input=[
            {
                "type": "custom_tool_call",
                "call_id": "c2",
                "name": "apply_patch",
                "input": "x",
            },
            {
                "type": "custom_tool_call_output",
                "call_id": "c2",
                "output": [{"type": "input_text", "text": "ok"}],
            },
        ]
    )
    assert request.messages[1].parts == (ir.ToolResult("c2", (ir.Text("ok"),)),)


def test_namespaced_or_custom_requests_are_not_relayed() -> None:
    passthrough = RESPONSES.passthrough
    assert not passthrough.relayable(codex_request())
    plain = parse({"model": "m", "input": "hi", "tools": [PLAIN_TOOL]})
    assert passthrough.relayable(plain)
    history = parse(
        {
            "model": "m",
            "input": [
                {"type": "custom_tool_call", "call_id": "c", "name": "x", "input": "y"},
            ],
        }
    )
    assert not passthrough.relayable(history)


# ----------------------------------------------------------------- answers


def test_stream_answers_a_namespaced_call_as_codex_resolves_it() -> None:
    request = codex_request()
    data = encode(request, call_events("mcp__srv__read", ['{"pa', 'th": "a"}']))
    events = frames(data)
    validate_responses_stream(events)
    check_sdk_events(events)
    added = next(e for e in events if e["type"] == "response.output_item.added")
    done = next(e for e in events if e["type"] == "response.output_item.done")
    for item in (added["item"], done["item"]):
        assert (item["type"], item["name"], item["namespace"]) == (
            "function_call",
            "read",
            "mcp__srv",
        )
    assert done["item"]["arguments"] == '{"path": "a"}'
    deltas = [e["delta"] for e in events if e["type"].endswith("arguments.delta")]
    assert deltas == ['{"pa', 'th": "a"}']


def test_stream_answers_a_freeform_call_with_input_deltas() -> None:
    request = codex_request()
    arguments = json.dumps({"input": PATCH})
    pieces = [arguments[i : i + 3] for i in range(0, len(arguments), 3)]
    data = encode(request, call_events("apply_patch", pieces))
    events = frames(data)
    validate_responses_stream(events)
    check_sdk_events(events)
    kinds = [e["type"] for e in events]
    assert "response.function_call_arguments.delta" not in kinds
    deltas = [e["delta"] for e in events if e["type"].endswith("input.delta")]
    assert len(deltas) > 3 and "".join(deltas) == PATCH
    (done,) = [e for e in events if e["type"] == "response.output_item.done"]
    assert done["item"]["type"] == "custom_tool_call"
    assert (done["item"]["name"], done["item"]["input"]) == ("apply_patch", PATCH)
    assert "namespace" not in done["item"]
    with (
        sdk_client(data, "text/event-stream") as client,
        client.responses.stream(model="m", input="hi") as stream,
    ):
        final = stream.get_final_response()
    (item,) = final.output
    assert item.type == "custom_tool_call" and item.input == PATCH


def test_stream_freeform_call_in_another_shape_still_gives_the_input() -> None:
    request = codex_request()
    data = encode(request, call_events("mcp__srv__note", ['{"text": ', '"n1"}']))
    events = frames(data)
    validate_responses_stream(events)
    done = next(e for e in events if e["type"] == "response.output_item.done")
    assert (done["item"]["name"], done["item"]["namespace"]) == ("note", "mcp__srv")
    assert done["item"]["input"] == "n1"


def test_whole_answer_with_its_request_uses_the_client_shapes() -> None:
    response = ir.Response(
        "resp_1",
        "m",
        [
            ir.ToolCall("c1", "mcp__srv__read", '{"path": "a"}'),
            ir.ToolCall("c2", "apply_patch", json.dumps({"input": PATCH})),
            ir.ToolCall("c3", "exec_command", '{"cmd": "ls"}'),
        ],
        stop_reason=ir.StopReason.TOOL_USE,
    )
    body = RESPONSES.encode_response(response, codex_request())
    with sdk_client(body, "application/json") as client:
        final = client.responses.create(model="m", input="hi")
    read, patch, shell = final.output
    assert read.type == "function_call" and read.namespace == "mcp__srv"
    assert read.name == "read"
    assert patch.type == "custom_tool_call" and patch.input == PATCH
    assert shell.type == "function_call" and shell.namespace is None
    assert "namespace" not in json.loads(body)["output"][2]


@given(st.text(max_size=40), st.lists(st.integers(1, 7), min_size=1, max_size=30))
def test_input_stream_gives_the_input_however_the_json_is_cut(
    text: str, cuts: list[int]
) -> None:
    arguments = json.dumps({"input": text}, ensure_ascii=len(cuts) % 2 == 0)
    stream, out, pos = InputStream(), "", 0
    for size in cuts * 20:
        out += stream.feed(arguments[pos : pos + size])
        pos += size
    out += stream.feed(arguments[pos:])
    whole, rest = stream.finish(arguments)
    assert whole == text == input_from(arguments)
    assert out + rest == text


@given(
    st.sampled_from(["apply_patch", "mcp__srv__note", "mcp__srv__read"]),
    st.lists(st.text(max_size=6), max_size=8),
    st.booleans(),
)
def test_any_arguments_give_a_well_formed_stream(
    name: str, pieces: list[str], stop: bool
) -> None:
    """Whatever the model writes as arguments (not JSON, cut short), the
    client's stream is well formed and the item's input is what it got."""
    events = call_events(name, pieces)
    if not stop:  # the upstream broke off before the block ended
        events = [*events[:-2], ir.StreamError("upstream_error", "gone")]
    out = frames(encode(codex_request(), events))
    validate_responses_stream(out)
    check_sdk_events(out)


# --------------------------------------------- through LM Bridge, each API


@pytest.fixture(params=["chat", "messages"])
async def bridge(
    request: pytest.FixtureRequest, fake_upstream: FakeOpenAIUpstream
) -> AsyncIterator[RunningProxy]:
    api = request.param
    proxy = await start_proxy(
        settings_for(fake_upstream.url, upstream_extra=f'api = "{api}"')
    )
    yield proxy
    await proxy.server.stop()


@pytest.fixture
async def client(bridge: RunningProxy) -> AsyncIterator[openai.AsyncOpenAI]:
    async with oai(bridge) as sdk:
        yield sdk


def upstream_tools(fake: FakeOpenAIUpstream) -> dict[str, dict[str, Any]]:
    """The tools of the last upstream request, by name, in a common shape."""
    body = fake.requests[-1].body
    out: dict[str, dict[str, Any]] = {}
    for tool in body.get("tools") or []:
        fn = tool.get("function", tool)
        out[fn["name"]] = fn.get("parameters") or fn.get("input_schema") or {}
    return out


def upstream_calls(fake: FakeOpenAIUpstream) -> list[tuple[str, str, Any]]:
    """(id, name, arguments) of the history calls of the last upstream body."""
    body = fake.requests[-1].body
    calls: list[tuple[str, str, Any]] = []
    for message in body.get("messages", []):
        for call in message.get("tool_calls") or []:
            args = json.loads(call["function"]["arguments"])
            calls.append((call["id"], call["function"]["name"], args))
        content = message.get("content")
        for block in content if isinstance(content, list) else []:
            if block.get("type") == "tool_use":
                calls.append((block["id"], block["name"], block["input"]))
    return calls


def upstream_result_text(fake: FakeOpenAIUpstream) -> str:
    return json.dumps(fake.requests[-1].body["messages"][-3:])


async def streamed(client: openai.AsyncOpenAI, **body: Any) -> list[dict[str, Any]]:
    stream = await client.responses.create(model=MODEL, stream=True, **body)
    events = [event.model_dump(exclude_unset=True) async for event in stream]
    validate_responses_stream(events)
    return events


def done_items(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["item"] for e in events if e["type"] == "response.output_item.done"]


async def test_namespace_tool_round_trip(
    bridge: RunningProxy,
    client: openai.AsyncOpenAI,
    fake_upstream: FakeOpenAIUpstream,
) -> None:
    fake_upstream.script.text = ""
    fake_upstream.script.tool_calls = [
        ToolCallScript("mcp__srv__read", '{"path": "a.txt"}', "call_r1")
    ]
    tools = [PLAIN_TOOL, NAMESPACE_TOOL]
    events = await streamed(client, input="read a.txt", tools=tools)
    assert upstream_tools(fake_upstream)["mcp__srv__read"] == READ_SCHEMA
    (item,) = done_items(events)
    assert (item["type"], item["name"], item["namespace"]) == (
        "function_call",
        "read",
        "mcp__srv",
    )
    assert json.loads(item["arguments"]) == {"path": "a.txt"}
    record = await bridge.record()
    assert "dropped: tools[1].tools[2]: type 'web_search' is not carried" in (
        record.note_texts
    )

    fake_upstream.script.tool_calls = []
    fake_upstream.script.text = "It says hello."
    history = [
        {"role": "user", "content": "read a.txt"},
        {
            k: v
            for k, v in item.items()
            if k in ("type", "call_id", "name", "namespace", "arguments")
        },
        {"type": "function_call_output", "call_id": item["call_id"], "output": "hello"},
    ]
    events = await streamed(client, input=history, tools=tools)
    assert done_items(events)[0]["content"][0]["text"] == "It says hello."
    assert upstream_calls(fake_upstream) == [
        ("call_r1", "mcp__srv__read", {"path": "a.txt"})
    ]
    assert "hello" in upstream_result_text(fake_upstream)


async def test_custom_tool_round_trip(
    client: openai.AsyncOpenAI, fake_upstream: FakeOpenAIUpstream
) -> None:
    fake_upstream.script.text = ""
    fake_upstream.script.tool_calls = [
        ToolCallScript("apply_patch", json.dumps({"input": PATCH}), "call_p1")
    ]
    events = await streamed(client, input="patch it", tools=[CUSTOM_TOOL])
    schema = upstream_tools(fake_upstream)["apply_patch"]
    assert schema["properties"]["input"]["type"] == "string"
    deltas = [e["delta"] for e in events if e["type"].endswith("input.delta")]
    assert "".join(deltas) == PATCH
    (item,) = done_items(events)
    assert (item["type"], item["name"], item["input"]) == (
        "custom_tool_call",
        "apply_patch",
        PATCH,
    )

    fake_upstream.script.tool_calls = []
    fake_upstream.script.text = "Patched."
    history = [
        {"role": "user", "content": "patch it"},
        {
            "type": "custom_tool_call",
            "call_id": item["call_id"],
            "name": "apply_patch",
            "input": item["input"],
        },
        {
            "type": "custom_tool_call_output",
            "call_id": item["call_id"],
            "output": "Success. Updated a.txt",
        },
    ]
    events = await streamed(client, input=history, tools=[CUSTOM_TOOL])
    assert done_items(events)[0]["content"][0]["text"] == "Patched."
    assert upstream_calls(fake_upstream) == [
        ("call_p1", "apply_patch", {"input": PATCH})
    ]
    assert "Success. Updated a.txt" in upstream_result_text(fake_upstream)


async def test_tool_output_as_text_and_image_parts(
    client: openai.AsyncOpenAI, fake_upstream: FakeOpenAIUpstream
) -> None:
    history = [
        {"role": "user", "content": "look"},
        {
            "type": "function_call",
            "call_id": "c1",
            "name": "exec_command",
            "arguments": "{}",
        },
        {
            "type": "function_call_output",
            "call_id": "c1",
            "output": [
                {"type": "input_text", "text": "SCREEN-TEXT-41"},
                {"type": "input_image", "image_url": PNG_URL},
            ],
        },
    ]
    await streamed(client, input=history, tools=[PLAIN_TOOL])
    sent = json.dumps(fake_upstream.requests[-1].body)
    assert "SCREEN-TEXT-41" in sent
    assert "iVBORw0KGgo=" in sent  # the image reaches the upstream


async def test_whole_answer_through_the_bridge(
    client: openai.AsyncOpenAI, fake_upstream: FakeOpenAIUpstream
) -> None:
    fake_upstream.script.text = ""
    fake_upstream.script.tool_calls = [
        ToolCallScript("mcp__srv__read", '{"path": "a"}', "call_w1")
    ]
    final = await client.responses.create(
        model=MODEL,
        input="read",
        # web_search inside a namespace: a shape the SDK's types do not allow
        tools=[NAMESPACE_TOOL],  # type: ignore[list-item]
    )
    (item,) = final.output
    assert item.type == "function_call"
    assert (item.name, item.namespace) == ("read", "mcp__srv")


async def test_responses_upstream_gets_flat_tools_and_codex_shaped_calls(
    fake_upstream: FakeOpenAIUpstream,
) -> None:
    settings = settings_for(fake_upstream.url, upstream_extra='api = "responses"')
    fake_upstream.script.text = ""
    fake_upstream.script.tool_calls = [
        ToolCallScript("mcp__srv__read", '{"path": "a"}', "call_x1")
    ]
    async with running(settings) as proxy, oai(proxy) as sdk:
        events = await streamed(sdk, input="read", tools=[NAMESPACE_TOOL, CUSTOM_TOOL])
        sent = fake_upstream.requests[-1].body["tools"]
        assert {t["type"] for t in sent} == {"function"}
        assert {t["name"] for t in sent} == {
            "mcp__srv__read",
            "mcp__srv__note",
            "apply_patch",
        }
        (item,) = done_items(events)
        assert (item["name"], item["namespace"]) == ("read", "mcp__srv")
