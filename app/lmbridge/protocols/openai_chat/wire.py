"""OpenAI Chat Completions wire types (the request side, parsed leniently)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from lmbridge.protocols.limits import (
    ChatTokenCount,
    OpenAITemperature,
    Seed,
    TopK,
    Unit,
)


class ImageURL(msgspec.Struct):
    url: str
    detail: str | None = None


class ContentPart(msgspec.Struct):
    type: str
    text: str | None = None
    image_url: ImageURL | None = None


class FunctionCall(msgspec.Struct):
    name: str = ""
    arguments: str = ""


class ToolCallWire(msgspec.Struct):
    function: FunctionCall
    id: str = ""
    type: str = "function"


class ChatMessage(msgspec.Struct):
    role: str
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCallWire] | None = None
    tool_call_id: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None


class FunctionDef(msgspec.Struct):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolDef(msgspec.Struct):
    type: str = "function"
    function: FunctionDef | None = None


class NamedFunction(msgspec.Struct):
    name: str


class AllowedTools(msgspec.Struct):
    mode: str = "auto"
    tools: list[ToolDef] = []


class NamedToolChoice(msgspec.Struct):
    """The object form: a named function, a named custom tool, allowed_tools."""

    function: NamedFunction | None = None
    type: str = "function"
    allowed_tools: AllowedTools | None = None


class JSONSchemaFormat(msgspec.Struct):
    """`response_format.json_schema`; OpenAI requires `name`, servers do not."""

    name: str | None = None
    description: str | None = None
    schema: dict[str, Any] | None = None
    strict: bool | None = None


class ResponseFormat(msgspec.Struct):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchemaFormat | None = None


class ChatRequest(msgspec.Struct, kw_only=True):
    model: str
    messages: list[ChatMessage]
    stream: bool | None = False
    max_tokens: ChatTokenCount | None = None
    max_completion_tokens: ChatTokenCount | None = None
    temperature: OpenAITemperature | None = None
    top_p: Unit | None = None
    top_k: TopK | None = None
    stop: str | list[str] | None = None
    seed: Seed | None = None
    n: Annotated[int, msgspec.Meta(ge=1, le=128)] | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, msgspec.Meta(ge=0, le=20)] | None = None
    response_format: ResponseFormat | None = None
    tools: list[ToolDef] | None = None
    tool_choice: str | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    reasoning_effort: str | None = None
    user: str | None = None
    prompt_cache_key: str | None = None
    stream_options: dict[str, Any] | None = None


# Fields the IR models itself; every other top-level field rides in `extras`
# and is forwarded only to an upstream that speaks Chat Completions.
KNOWN_FIELDS = frozenset(ChatRequest.__struct_fields__)


# ---------------------------------------------------------------- stream side


class DeltaFunction(msgspec.Struct):
    name: str | None = None
    arguments: str | None = None


class DeltaToolCall(msgspec.Struct):
    index: int = 0
    id: str | None = None
    function: DeltaFunction | None = None


class Delta(msgspec.Struct):
    content: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    tool_calls: list[DeltaToolCall] | None = None
    refusal: str | None = None


class ChunkChoice(msgspec.Struct):
    delta: Delta | None = None
    message: Delta | None = None
    finish_reason: str | None = None
    index: int = 0


class CompletionDetails(msgspec.Struct):
    reasoning_tokens: int | None = None


class UsageWire(msgspec.Struct):
    prompt_tokens: int | None = 0
    completion_tokens: int | None = 0
    # Read by hand (decode.usage_from_wire): a server's nonsense here leaves
    # the cached count unknown instead of failing the answer.
    prompt_tokens_details: Any = None
    completion_tokens_details: CompletionDetails | None = None


class ErrorBody(msgspec.Struct):
    message: str = ""
    type: str | None = None
    code: str | int | None = None


class Chunk(msgspec.Struct):
    id: str = ""
    model: str = ""
    choices: list[ChunkChoice] = []
    usage: UsageWire | None = None
    error: ErrorBody | str | None = None
    # llama.cpp's server: `cache_n` (prompt tokens reused), `prompt_n`
    # (evaluated), ... in its last chunk or whole answer.
    timings: Any = None


class ErrorEnvelope(msgspec.Struct):
    error: ErrorBody | str | None = None
    message: str | None = None
