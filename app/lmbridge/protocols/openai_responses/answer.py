"""Wire types of the OpenAI Responses API's answer, as msgspec Structs.

What we answer a client with, shaped after the official `openai` SDK types
(`openai/types/responses/`): the Response object (`ResponseObject`), as
returned whole and inside the stream's lifecycle events, its output items
(messages, function and custom tool calls, reasoning), usage and error.
The content parts and the tool and reasoning settings it echoes are shared
with the requests, in `wire.py`; stream events are in `events.py`.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import msgspec

from lmbridge.protocols.openai_responses.wire import (
    FunctionTool,
    OutputText,
    ReasoningConfig,
    Refusal,
    SummaryText,
    ToolChoiceWire,
)


class OutputMessage(msgspec.Struct, tag="message", tag_field="type"):
    """An assistant message in a response's `output`."""

    id: str
    status: str
    content: list[OutputText | Refusal]
    role: str = "assistant"


class FunctionCall(
    msgspec.Struct, tag="function_call", tag_field="type", omit_defaults=True
):
    """A tool call in a response's `output`; `namespace` names the client's
    namespace of the tool (Codex resolves MCP calls by it)."""

    id: str
    call_id: str
    name: str
    arguments: str
    status: str
    namespace: str | None = None


class CustomToolCall(
    msgspec.Struct, tag="custom_tool_call", tag_field="type", omit_defaults=True
):
    """A call of a freeform (`custom`) tool in a response's `output`."""

    id: str
    call_id: str
    name: str
    input: str
    status: str
    namespace: str | None = None


class Reasoning(msgspec.Struct, tag="reasoning", tag_field="type"):
    """A reasoning item in a response's `output`."""

    id: str
    summary: list[SummaryText]
    encrypted_content: str | None = None


class WebSearchAction(msgspec.Struct, tag="search", tag_field="type"):
    """What a web search call did: searched for `query`."""

    query: str


class WebSearchCall(msgspec.Struct, tag="web_search_call", tag_field="type"):
    """A web search LM Bridge ran for the model (status `in_progress`,
    `searching`, `completed` or `failed`)."""

    id: str
    status: str
    action: WebSearchAction


OutputItem: TypeAlias = (
    OutputMessage | FunctionCall | CustomToolCall | Reasoning | WebSearchCall
)


class InputTokensDetails(msgspec.Struct):
    """Cache figures of the prompt."""

    cached_tokens: int = 0
    cache_write_tokens: int = 0


class OutputTokensDetails(msgspec.Struct):
    """Reasoning share of the output."""

    reasoning_tokens: int = 0


class ResponseUsage(msgspec.Struct):
    """Token usage of a response."""

    input_tokens: int
    output_tokens: int
    total_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens_details: OutputTokensDetails


class ResponseErrorBody(msgspec.Struct):
    """`error` of a failed response."""

    code: str
    message: str


class IncompleteDetails(msgspec.Struct):
    """Why a response is incomplete (`max_output_tokens`, `content_filter`)."""

    reason: str


class ResponseObject(msgspec.Struct):
    """The Response object, as returned whole and inside lifecycle events."""

    id: str
    created_at: int
    model: str
    status: str
    output: list[OutputItem]
    object: str = "response"
    error: ResponseErrorBody | None = None
    incomplete_details: IncompleteDetails | None = None
    instructions: str | None = None
    max_output_tokens: int | None = None
    parallel_tool_calls: bool = True
    previous_response_id: str | None = None
    reasoning: ReasoningConfig | None = None
    temperature: float | None = None
    top_p: float | None = None
    tool_choice: ToolChoiceWire = "auto"
    tools: list[FunctionTool] = msgspec.field(default_factory=list)
    truncation: str = "disabled"
    usage: ResponseUsage | None = None
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    completed_at: int | None = None
