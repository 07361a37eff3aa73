"""The Gemini door's codec on its own: bodies in, IR out, IR in, bytes out.

What the SDK tests (test_gemini_front_door.py) cannot reach cheaply:
both spellings of Google's JSON, schema conversion, call ids and how
function responses find their call, every drop and refusal, usage and
finish reasons, error shapes and overflow wording, stream framing.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from lmbridge.core import errors, ir
from lmbridge.protocols.base import Address, ListedModel
from lmbridge.protocols.gemini import GEMINI
from lmbridge.protocols.gemini.schema import json_schema
from validators import validate_gemini_stream

GENERATE = Address(params={"model": "qwen/qwen3-8b", "method": "generateContent"})
STREAM = Address(
    params={"model": "m", "method": "streamGenerateContent"}, query={"alt": "sse"}
)


def parse(body: dict[str, Any], address: Address = GENERATE) -> ir.Request:
    return GEMINI.parse_call(json.dumps(body).encode(), address)


def refused(body: dict[str, Any] | bytes, address: Address = GENERATE) -> str:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(errors.InvalidRequest) as caught:
        GEMINI.parse_call(data, address)
    return caught.value.message


def user(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "parts": list(parts)}


def model(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"role": "model", "parts": list(parts)}


def call(name: str, **args: Any) -> dict[str, Any]:
    return {"functionCall": {"name": name, "args": args}}


def answer(
    name: str, response: dict[str, Any], id_: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "response": response}
    if id_ is not None:
        body["id"] = id_
    return {"functionResponse": body}


# ------------------------------------------------------------------ requests


def test_model_and_stream_come_from_the_url() -> None:
    req = parse({"contents": [user({"text": "hi"})]})
    assert (req.model, req.stream) == ("qwen/qwen3-8b", False)
    assert parse({"contents": [user({"text": "hi"})]}, STREAM).stream is True
    assert "alt=sse" in refused(
        {"contents": [user({"text": "hi"})]},
        Address(params={"model": "m", "method": "streamGenerateContent"}),
    )


def test_snake_case_is_read_like_camel_case_but_not_inside_user_data() -> None:
    camel = {
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "contents": [
            user({"inlineData": {"mimeType": "image/png", "data": "AAAA"}}),
            model(call("read_file", file_path="a.py")),
        ],
        "generationConfig": {"maxOutputTokens": 9, "stopSequences": ["X"]},
    }
    snake = {
        "system_instruction": {"parts": [{"text": "Be brief."}]},
        "contents": [
            user({"inline_data": {"mime_type": "image/png", "data": "AAAA"}}),
            model(
                {"function_call": {"name": "read_file", "args": {"file_path": "a.py"}}}
            ),
        ],
        "generation_config": {"max_output_tokens": 9, "stop_sequences": ["X"]},
    }
    assert parse(camel) == parse(snake)
    req = parse(snake)
    assert req.system == (ir.Text("Be brief."),)
    assert req.max_tokens == 9 and req.stop == ("X",)
    (tool_call,) = req.messages[1].parts
    assert isinstance(tool_call, ir.ToolCall)
    assert json.loads(tool_call.arguments) == {"file_path": "a.py"}


def test_gemini_schemas_become_json_schema() -> None:
    schema = {
        "type": "OBJECT",
        "properties": {
            "city": {"type": "STRING", "nullable": True},
            "days": {"type": "ARRAY", "items": {"type": "INTEGER"}},
            "type": {"type": "STRING", "enum": ["a", "b"]},
        },
        "required": ["city"],
        "propertyOrdering": ["city", "days"],
    }
    assert json_schema(schema) == {
        "type": "object",
        "properties": {
            "city": {"type": ["string", "null"]},
            "days": {"type": "array", "items": {"type": "integer"}},
            "type": {"type": "string", "enum": ["a", "b"]},
        },
        "required": ["city"],
    }
    declared = {"type": "object", "properties": {"Q": {"type": "STRING"}}}
    req = parse(
        {
            "contents": [user({"text": "hi"})],
            "tools": [
                {
                    "functionDeclarations": [
                        {"name": "a", "parameters": schema},
                        {"name": "b", "parametersJsonSchema": declared},
                        {"name": "c"},
                    ]
                }
            ],
        }
    )
    a, b, c = req.tools
    assert a.parameters == json_schema(schema)
    assert b.parameters == declared  # JSON Schema already: as given
    assert c.parameters == {"type": "object", "properties": {}}


def test_calls_without_ids_get_stable_ids_and_responses_find_them_by_name() -> None:
    contents = [
        user({"text": "weather?"}),
        model({"text": "Let me look."}, call("weather", city="Paris"), call("time")),
        user(
            answer("time", {"output": "noon"}),
            answer("weather", {"result": "sunny"}),
        ),
        model(call("weather", city="Rome")),
        user(answer("weather", {"error": "no data"})),
    ]
    req = parse({"contents": contents})
    calls = [p for m in req.messages for p in m.parts if isinstance(p, ir.ToolCall)]
    results = [p for m in req.messages for p in m.parts if isinstance(p, ir.ToolResult)]
    assert [(c.id, c.name) for c in calls] == [
        ("call_1_0", "weather"),
        ("call_1_1", "time"),
        ("call_3_0", "weather"),
    ]
    assert [(r.call_id, r.text(), r.is_error) for r in results] == [
        ("call_1_1", "noon", False),
        ("call_1_0", "sunny", False),
        ("call_3_0", "no data", True),
    ]
    # The next turn gives the same ids: the upstream's prompt only grows.
    longer = parse({"contents": [*contents, model({"text": "Sorry."})]})
    assert longer.messages[: len(req.messages)] == req.messages


def test_ids_given_are_kept_and_matched_before_names() -> None:
    contents = [
        user({"text": "two files"}),
        model(
            {"functionCall": {"id": "c_a", "name": "read", "args": {"p": "a"}}},
            {"functionCall": {"id": "c_b", "name": "read", "args": {"p": "b"}}},
        ),
        user(
            answer("read", {"output": "B"}, id_="c_b"),
            # Gemini CLI's own id for a call that had none: matched by name.
            answer("read", {"output": "A"}, id_="read-1712-ab"),
        ),
    ]
    req = parse({"contents": contents})
    results = [p for p in req.messages[-1].parts if isinstance(p, ir.ToolResult)]
    assert [(r.call_id, r.text()) for r in results] == [("c_b", "B"), ("c_a", "A")]


def test_a_response_to_no_call_reaches_the_model_as_text() -> None:
    req = parse(
        {
            "contents": [
                user({"text": "hi"}),
                user(answer("lookup", {"rows": [1, 2]})),
            ]
        }
    )
    (message,) = req.messages
    assert message.parts[1] == ir.Text('[result of lookup]\n{"rows":[1,2]}')


def test_what_cannot_reach_a_model_is_listed_as_dropped() -> None:
    req = parse(
        {
            "contents": [
                user(
                    {"text": "read these"},
                    {"inlineData": {"mimeType": "application/pdf", "data": "JVBE"}},
                    {"fileData": {"mimeType": "image/png", "fileUri": "files/abc"}},
                    {
                        "fileData": {
                            "mimeType": "image/png",
                            "fileUri": "https://x/y.png",
                        }
                    },
                ),
                model({"text": "ok", "thoughtSignature": "c2ln"}),
            ],
            "tools": [{"googleSearch": {}}, {"codeExecution": {}}],
            "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT"}],
            "generationConfig": {"presencePenalty": 1, "responseLogprobs": True},
        }
    )
    assert req.dropped == (
        "inlineData application/pdf (only images) in a user turn",
        "fileData image/png (only image URLs) in a user turn",
        "tool googleSearch (it runs only at Google)",
        "tool codeExecution (it runs only at Google)",
        "generationConfig.presencePenalty",
        "generationConfig.responseLogprobs",
        "safetySettings (accepted and ignored: no Google filters here)",
    )
    assert req.messages[0].parts[-1] == ir.Image(
        media_type="image/png", url="https://x/y.png"
    )
    assert req.messages[1].parts == (ir.Text("ok"),)


def test_sampling_thinking_tool_choice_and_structured_output() -> None:
    tools = [{"functionDeclarations": [{"name": "a"}, {"name": "b"}]}]
    req = parse(
        {
            "contents": [user({"text": "hi"})],
            "tools": tools,
            "toolConfig": {
                "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["b"]}
            },
            "generationConfig": {
                "temperature": 0.3,
                "topP": 0.8,
                "topK": 40.0,
                "seed": 7,
                "thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": True},
                "responseMimeType": "application/json",
                "responseSchema": {"type": "OBJECT"},
            },
        }
    )
    assert (req.temperature, req.top_p, req.top_k, req.seed) == (0.3, 0.8, 40, 7)
    assert [t.name for t in req.tools] == ["b"]
    assert req.tool_choice == ir.ToolChoice(ir.ToolChoiceMode.TOOL, "b")
    assert req.reasoning == ir.Reasoning(budget_tokens=2048)
    assert req.output_format == ir.OutputFormat(
        schema={"type": "object"}, name="response"
    )

    def config(**fields: Any) -> ir.Request:
        return parse({"contents": [user({"text": "hi"})], "generationConfig": fields})

    assert config(thinkingConfig={"thinkingBudget": 0}).reasoning is None
    assert config(thinkingConfig={"thinkingLevel": "HIGH"}).reasoning == ir.Reasoning(
        effort="high"
    )
    assert config(thinkingConfig={"includeThoughts": True}).reasoning == ir.Reasoning(
        effort="medium"
    )
    assert config(responseMimeType="application/json").output_format == (
        ir.OutputFormat(type="json_object")
    )
    assert config(responseMimeType="text/plain").output_format is None
    none = parse(
        {
            "contents": [user({"text": "hi"})],
            "toolConfig": {"functionCallingConfig": {"mode": "none"}},
        }
    )
    assert none.tool_choice == ir.ToolChoice(ir.ToolChoiceMode.NONE)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"generationConfig": {"candidateCount": 2}}, "one candidate"),
        ({"generationConfig": {"topK": 2.5}}, "whole number"),
        ({"generationConfig": {"maxOutputTokens": 0}}, "maxOutputTokens"),
        ({"generationConfig": {"responseMimeType": "text/x.enum"}}, "text/x.enum"),
        (
            {
                "generationConfig": {
                    "responseMimeType": "text/plain",
                    "responseSchema": {"type": "STRING"},
                }
            },
            "application/json",
        ),
        ({"generationConfig": {"thinkingConfig": {"thinkingLevel": "max"}}}, "level"),
        ({"toolConfig": {"functionCallingConfig": {"mode": "SOME"}}}, "mode"),
        ({"cachedContent": "cachedContents/abc"}, "context caches"),
        ({"contents": [{"role": "system", "parts": [{"text": "x"}]}]}, "role"),
        ({"contents": [{"role": "user", "parts": []}]}, "contents"),
        ({"contents": [{"parts": [{"text": 5}]}]}, "text"),
    ],
)
def test_refusals_name_the_field(change: dict[str, Any], words: str) -> None:
    body = {"contents": [user({"text": "hi"})], **change}
    assert words in refused(body)


def test_bodies_that_are_no_request() -> None:
    assert "not valid JSON" in refused(b"{nope")
    assert "empty" in refused(b"")
    assert "JSON object" in refused(b"[1]")


def test_count_tokens_takes_contents_or_a_whole_request() -> None:
    address = Address(params={"model": "m"})
    text = {"contents": [user({"text": "The quick brown fox " * 20})]}
    by_contents = json.loads(GEMINI.count_tokens(json.dumps(text).encode(), address))
    wrapped = {"generateContentRequest": {**text, "model": "models/m"}}
    by_request = json.loads(GEMINI.count_tokens(json.dumps(wrapped).encode(), address))
    assert by_contents == by_request
    assert by_contents["totalTokens"] > 20
    empty = json.loads(GEMINI.count_tokens(b'{"contents": []}', address))
    # The estimate's few tokens of framing (protocols/tokens.py), no more.
    assert 0 <= empty["totalTokens"] < 5


def test_keys_are_read_from_the_header_or_the_query() -> None:
    assert GEMINI.presented_key({"x-goog-api-key": "a"}, {"key": "b"}) == "a"
    assert GEMINI.presented_key({}, {"key": "b"}) == "b"
    assert GEMINI.presented_key({}, {}) is None
    assert GEMINI.claims({"x-goog-api-client": "google-genai-sdk/3"}, {})
    assert not GEMINI.claims({"Authorization": "Bearer x"}, {})


# ------------------------------------------------------------------- answers


def whole(
    parts: list[Any], stop: ir.StopReason, usage: ir.Usage, reasoning: bool = True
) -> dict[str, Any]:
    response = ir.Response("r", "upstream-model", parts, stop, usage=usage)
    request = ir.Request(
        "asked-model",
        (),
        reasoning=ir.Reasoning(effort="low") if reasoning else None,
    )
    body: dict[str, Any] = json.loads(GEMINI.encode_response(response, request))
    return body


def test_a_whole_answer_with_thoughts_calls_and_usage() -> None:
    usage = ir.Usage(
        input_tokens=100, output_tokens=30, cached_tokens=60, reasoning_tokens=12
    )
    parts = [
        ir.Thinking("hmm"),
        ir.Text("Looking."),
        ir.ToolCall("call_1", "read", '{"path": "a.py"}'),
    ]
    body = whole(parts, ir.StopReason.TOOL_USE, usage)
    (candidate,) = body["candidates"]
    assert candidate["content"] == {
        "role": "model",
        "parts": [
            {"text": "hmm", "thought": True},
            {"text": "Looking."},
            {
                "functionCall": {
                    "id": "call_1",
                    "name": "read",
                    "args": {"path": "a.py"},
                }
            },
        ],
    }
    assert candidate["finishReason"] == "STOP"
    assert body["modelVersion"] == "asked-model"
    assert body["usageMetadata"] == {
        "promptTokenCount": 100,
        "candidatesTokenCount": 18,
        "thoughtsTokenCount": 12,
        "cachedContentTokenCount": 60,
        "totalTokenCount": 130,
    }
    hidden = whole(parts, ir.StopReason.TOOL_USE, usage, reasoning=False)
    assert {"text": "hmm", "thought": True} not in hidden["candidates"][0]["content"][
        "parts"
    ]
    # No cached count when the upstream did not say.
    plain = whole([ir.Text("x")], ir.StopReason.END_TURN, ir.Usage(5, 2))
    assert "cachedContentTokenCount" not in plain["usageMetadata"]


@pytest.mark.parametrize(
    ("stop", "reason"),
    [
        (ir.StopReason.END_TURN, "STOP"),
        (ir.StopReason.STOP_SEQUENCE, "STOP"),
        (ir.StopReason.TOOL_USE, "STOP"),
        (ir.StopReason.MAX_TOKENS, "MAX_TOKENS"),
        (ir.StopReason.REFUSAL, "SAFETY"),
        (ir.StopReason.PAUSE, "STOP"),
    ],
)
def test_finish_reasons(stop: ir.StopReason, reason: str) -> None:
    body = whole([ir.Text("x")], stop, ir.Usage())
    assert body["candidates"][0]["finishReason"] == reason


@pytest.mark.parametrize(
    ("error", "code", "status"),
    [
        (errors.InvalidRequest("bad"), 400, "INVALID_ARGUMENT"),
        (errors.AuthenticationFailed("who"), 401, "UNAUTHENTICATED"),
        (errors.PermissionDenied("no"), 403, "PERMISSION_DENIED"),
        (errors.NotFound("gone"), 404, "NOT_FOUND"),
        (errors.PayloadTooLarge("big"), 413, "INVALID_ARGUMENT"),
        (errors.RateLimited("slow"), 429, "RESOURCE_EXHAUSTED"),
        (errors.UpstreamError("boom", status=500), 502, "INTERNAL"),
        (errors.UpstreamUnavailable("down"), 503, "UNAVAILABLE"),
        (errors.Timeout("late"), 504, "DEADLINE_EXCEEDED"),
        (errors.Overloaded("busy"), 529, "UNAVAILABLE"),
        (errors.LMBridgeError("oops"), 500, "INTERNAL"),
    ],
)
def test_errors_in_googles_shape(
    error: errors.LMBridgeError, code: int, status: str
) -> None:
    body = json.loads(GEMINI.encode_error(error))
    assert body == {"error": {"code": code, "message": error.message, "status": status}}


def test_overflows_say_n_over_m_as_gemini_does() -> None:
    head = (
        "The input token count ({}) exceeds the maximum number of tokens allowed ({})."
    )
    ours = errors.ContextOverflow.for_prompt(9000, 8192, "m")
    message = json.loads(GEMINI.encode_error(ours))["error"]["message"]
    assert message.startswith(head.format(9000, 8192))
    assert "prompt is too long: 9000 tokens > 8192 maximum" in message
    # Only the window known: the prompt was at least one more.
    window_only = errors.ContextOverflow.from_upstream("too long", context_window=4096)
    message = json.loads(GEMINI.encode_error(window_only))["error"]["message"]
    assert message.startswith(head.format(4097, 4096))
    prompt_only = errors.ContextOverflow.from_upstream("too long", prompt_tokens=5000)
    message = json.loads(GEMINI.encode_error(prompt_only))["error"]["message"]
    assert message.startswith(head.format(5000, 4999))
    # In a stream only the words travel: the counts are read back from them.
    event = ir.StreamError("context_overflow", ours.message, 400)
    frame = GEMINI.stream_encoder(ir.Request("m", ())).encode(event)
    error = json.loads(frame.removeprefix(b"data: "))["error"]
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
    assert error["message"].startswith(head.format(9000, 8192))
    unknown = errors.ContextOverflow(errors.OVERFLOW_UNCOUNTED)
    body = json.loads(GEMINI.encode_error(unknown))["error"]
    assert body["message"] == errors.OVERFLOW_UNCOUNTED


def test_models_are_listed_by_resource_name() -> None:
    listed = json.loads(GEMINI.encode_models([ListedModel("qwen/qwen3-8b", "lms")]))
    (entry,) = listed["models"]
    assert entry["name"] == "models/qwen/qwen3-8b"
    assert "generateContent" in entry["supportedGenerationMethods"]
    one = json.loads(GEMINI.encode_model(ListedModel("m", "lms")))
    assert one["name"] == "models/m"


# ------------------------------------------------------------------- streams


def frames(raw: bytes) -> list[dict[str, Any]]:
    return [json.loads(f.removeprefix(b"data: ")) for f in raw.split(b"\r\n\r\n") if f]


def test_a_stream_sends_text_as_it_comes_and_each_call_whole() -> None:
    encoder = GEMINI.stream_encoder(
        ir.Request("m", (), reasoning=ir.Reasoning(effort="low"))
    )
    events: list[ir.Event] = [
        ir.MessageStart("id", "m"),
        ir.Ping(),
        ir.BlockStart(0, ir.BlockKind.THINKING),
        ir.ThinkingDelta(0, "hmm"),
        ir.BlockStop(0),
        ir.BlockStart(1, ir.BlockKind.TEXT),
        ir.TextDelta(1, "Hel"),
        ir.TextDelta(1, "lo"),
        ir.BlockStop(1),
        ir.BlockStart(2, ir.BlockKind.TOOL_CALL, call_id="c1", name="read"),
        ir.ToolArgsDelta(2, '{"path"'),
        ir.ToolArgsDelta(2, ': "a"}'),
        ir.BlockStop(2),
        ir.BlockStart(3, ir.BlockKind.TOOL_CALL, call_id="c2", name="read"),
        ir.ToolArgsDelta(3, '{"path": "b"}'),
        ir.Finish(ir.StopReason.TOOL_USE, ir.Usage(10, 5)),
        ir.TextDelta(1, "after the end"),
    ]
    raw = b"".join(encoder.encode(e) for e in events)
    validate_gemini_stream(raw)
    parts = [f["candidates"][0]["content"]["parts"] for f in frames(raw)]
    assert parts == [
        [{"text": "hmm", "thought": True}],
        [{"text": "Hel"}],
        [{"text": "lo"}],
        [{"functionCall": {"id": "c1", "name": "read", "args": {"path": "a"}}}],
        # A call still open at the end goes out with the last frame.
        [{"functionCall": {"id": "c2", "name": "read", "args": {"path": "b"}}}],
    ]
    last = frames(raw)[-1]
    assert last["candidates"][0]["finishReason"] == "STOP"
    assert last["usageMetadata"]["totalTokenCount"] == 15
    assert len({f["responseId"] for f in frames(raw)}) == 1


def test_a_stream_that_fails_ends_with_one_error_frame() -> None:
    encoder = GEMINI.stream_encoder(ir.Request("m", ()))
    events: list[ir.Event] = [
        ir.BlockStart(0, ir.BlockKind.THINKING),
        ir.ThinkingDelta(0, "hidden: no thinking was asked"),
        ir.BlockStart(1, ir.BlockKind.TEXT),
        ir.TextDelta(1, "partial"),
        ir.StreamError("upstream_error", "the upstream closed the connection", 502),
        ir.Finish(ir.StopReason.END_TURN, ir.Usage()),
    ]
    raw = b"".join(encoder.encode(e) for e in events)
    validate_gemini_stream(raw)
    sent = frames(raw)
    assert sent[0]["candidates"][0]["content"]["parts"] == [{"text": "partial"}]
    assert sent[-1] == {
        "error": {
            "code": 502,
            "message": "the upstream closed the connection",
            "status": "INTERNAL",
        }
    }
    assert len(sent) == 2
