"""OpenAI Chat Completions wire types (the request side, parsed leniently)."""

from __future__ import annotations

from typing import Any

import msgspec


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


class NamedToolChoice(msgspec.Struct):
    function: NamedFunction
    type: str = "function"


class ChatRequest(msgspec.Struct, kw_only=True):
    model: str
    messages: list[ChatMessage]
    stream: bool | None = False
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
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


class PromptDetails(msgspec.Struct):
    cached_tokens: int | None = None


class CompletionDetails(msgspec.Struct):
    reasoning_tokens: int | None = None


class UsageWire(msgspec.Struct):
    prompt_tokens: int | None = 0
    completion_tokens: int | None = 0
    prompt_tokens_details: PromptDetails | None = None
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


class ErrorEnvelope(msgspec.Struct):
    error: ErrorBody | str | None = None
    message: str | None = None
