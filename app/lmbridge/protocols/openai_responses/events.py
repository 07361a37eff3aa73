"""Responses stream events, as msgspec Structs.

`Emitted*` events are what our stream encoder writes; their fields follow
the official SDK's event models (`openai.types.responses.*Event`), so the SDK
parses every one of them. `Seen*` structs are what the stream decoder reads
from an upstream; every field is optional because servers differ (LM Studio,
Azure, OpenAI) and garbage must not raise.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import msgspec

from lmbridge.protocols.openai_responses.answer import OutputItem, ResponseObject
from lmbridge.protocols.openai_responses.wire import OutputText, SummaryText

# --------------------------------------------------------------- emitted events


class _Emitted(msgspec.Struct, tag_field="type"):
    """Base of every emitted event: `type` (the tag) and `sequence_number`."""

    sequence_number: int


class _Lifecycle(_Emitted):
    response: ResponseObject


class ResponseCreated(_Lifecycle, tag="response.created"):
    """The response exists, status `in_progress`, no output yet."""


class ResponseInProgress(_Lifecycle, tag="response.in_progress"):
    """The response is being generated."""


class ResponseCompleted(_Lifecycle, tag="response.completed"):
    """Terminal: the whole response with usage."""


class ResponseIncomplete(_Lifecycle, tag="response.incomplete"):
    """Terminal: the response stopped early (`max_output_tokens`)."""


class ResponseFailed(_Lifecycle, tag="response.failed"):
    """Terminal: the response failed; `response.error` says why."""


class _ItemEvent(_Emitted):
    output_index: int
    item: OutputItem


class OutputItemAdded(_ItemEvent, tag="response.output_item.added"):
    """An output item opens."""


class OutputItemDone(_ItemEvent, tag="response.output_item.done"):
    """An output item is complete."""


class _ContentPartEvent(_Emitted):
    item_id: str
    output_index: int
    content_index: int
    part: OutputText


class ContentPartAdded(_ContentPartEvent, tag="response.content_part.added"):
    """A content part of a message opens."""


class ContentPartDone(_ContentPartEvent, tag="response.content_part.done"):
    """A content part of a message is complete."""


class OutputTextDelta(_Emitted, tag="response.output_text.delta"):
    """A piece of message text."""

    item_id: str
    output_index: int
    content_index: int
    delta: str
    logprobs: list[Any] = msgspec.field(default_factory=list)


class OutputTextDone(_Emitted, tag="response.output_text.done"):
    """The whole text of a content part."""

    item_id: str
    output_index: int
    content_index: int
    text: str
    logprobs: list[Any] = msgspec.field(default_factory=list)


class FunctionCallArgumentsDelta(
    _Emitted, tag="response.function_call_arguments.delta"
):
    """A piece of a tool call's JSON arguments."""

    item_id: str
    output_index: int
    delta: str


class FunctionCallArgumentsDone(_Emitted, tag="response.function_call_arguments.done"):
    """The whole JSON arguments of a tool call."""

    item_id: str
    output_index: int
    arguments: str


class CustomToolCallInputDelta(_Emitted, tag="response.custom_tool_call_input.delta"):
    """A piece of a freeform (`custom`) tool call's input text."""

    item_id: str
    output_index: int
    delta: str


class CustomToolCallInputDone(_Emitted, tag="response.custom_tool_call_input.done"):
    """The whole input text of a freeform tool call."""

    item_id: str
    output_index: int
    input: str


class _SummaryPartEvent(_Emitted):
    item_id: str
    output_index: int
    summary_index: int
    part: SummaryText


class ReasoningSummaryPartAdded(
    _SummaryPartEvent, tag="response.reasoning_summary_part.added"
):
    """A reasoning summary part opens."""


class ReasoningSummaryPartDone(
    _SummaryPartEvent, tag="response.reasoning_summary_part.done"
):
    """A reasoning summary part is complete."""


class ReasoningSummaryTextDelta(_Emitted, tag="response.reasoning_summary_text.delta"):
    """A piece of reasoning summary text."""

    item_id: str
    output_index: int
    summary_index: int
    delta: str


class ReasoningSummaryTextDone(_Emitted, tag="response.reasoning_summary_text.done"):
    """The whole text of a reasoning summary part."""

    item_id: str
    output_index: int
    summary_index: int
    text: str


class ErrorEvent(_Emitted, tag="error"):
    """A stream error; `response.failed` follows it."""

    message: str
    code: str | None = None
    param: str | None = None


class _WebSearchEvent(_Emitted):
    output_index: int
    item_id: str


class WebSearchCallInProgress(
    _WebSearchEvent, tag="response.web_search_call.in_progress"
):
    """A web search call began."""


class WebSearchCallSearching(_WebSearchEvent, tag="response.web_search_call.searching"):
    """A web search call is searching."""


class WebSearchCallCompleted(_WebSearchEvent, tag="response.web_search_call.completed"):
    """A web search call ended."""


EmittedEvent: TypeAlias = (
    ResponseCreated
    | ResponseInProgress
    | ResponseCompleted
    | ResponseIncomplete
    | ResponseFailed
    | OutputItemAdded
    | OutputItemDone
    | ContentPartAdded
    | ContentPartDone
    | OutputTextDelta
    | OutputTextDone
    | FunctionCallArgumentsDelta
    | FunctionCallArgumentsDone
    | CustomToolCallInputDelta
    | CustomToolCallInputDone
    | ReasoningSummaryPartAdded
    | ReasoningSummaryPartDone
    | ReasoningSummaryTextDelta
    | ReasoningSummaryTextDone
    | WebSearchCallInProgress
    | WebSearchCallSearching
    | WebSearchCallCompleted
    | ErrorEvent
)

# ------------------------------------------------------------ upstream (seen)


class SeenHead(msgspec.Struct):
    """The `type` of an upstream event or item, decoded before the rest."""

    type: str | None = None


class SeenInputDetails(msgspec.Struct):
    """Cached-token figure of upstream usage (checked by hand: nonsense
    leaves it unknown)."""

    cached_tokens: Any = None


class SeenOutputDetails(msgspec.Struct):
    """Reasoning-token figure of upstream usage."""

    reasoning_tokens: int | None = None


class SeenUsage(msgspec.Struct):
    """Upstream usage."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    input_tokens_details: SeenInputDetails | None = None
    output_tokens_details: SeenOutputDetails | None = None


class SeenError(msgspec.Struct):
    """An upstream error object (in `error` events or failed responses)."""

    message: str | None = None
    code: str | int | None = None
    type: str | None = None


class SeenIncomplete(msgspec.Struct):
    """Why an upstream response is incomplete."""

    reason: str | None = None


class SeenResponse(msgspec.Struct):
    """The parts of an upstream Response object the decoder needs."""

    id: str | None = None
    model: str | None = None
    status: str | None = None
    usage: SeenUsage | None = None
    error: SeenError | None = None
    incomplete_details: SeenIncomplete | None = None


class SeenPart(msgspec.Struct):
    """A content or summary part of an upstream item."""

    type: str | None = None
    text: str | None = None
    refusal: str | None = None


class SeenItem(msgspec.Struct):
    """A message, function_call or reasoning item of an upstream stream."""

    type: str | None = None
    id: str | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    content: list[SeenPart] | None = None
    summary: list[SeenPart] | None = None
    encrypted_content: str | None = None


class SeenEvent(msgspec.Struct):
    """An upstream stream event of a kind the decoder handles."""

    type: str | None = None
    response: SeenResponse | None = None
    # Decoded only for the item kinds the decoder handles.
    item: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b""))
    item_id: str | None = None
    output_index: int | None = None
    content_index: int | None = None
    summary_index: int | None = None
    delta: str | None = None
    text: str | None = None
    arguments: str | None = None
    refusal: str | None = None
    message: str | None = None
    code: str | int | None = None
    error: SeenError | None = None
