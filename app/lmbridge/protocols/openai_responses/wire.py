"""Wire types of the OpenAI Responses API's requests, as msgspec Structs.

The requests, in both directions, each shaped after the official `openai`
SDK types (`openai/types/responses/`), with the content parts, tools and
reasoning settings that the answer shares:

- what a client sends us (`CreateRequest` and its items, decoded leniently
  where the API is lenient, e.g. messages without `type`);
- what we send a Responses upstream (`Upstream*`, compact: defaults omitted).

What we answer a client with (`ResponseObject`, output items, usage) is in
`answer.py`; stream events, in both directions, are in `events.py`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeAlias

import msgspec

from lmbridge.protocols.limits import TokenCount

# ------------------------------------------------------------------ content parts


class InputText(msgspec.Struct, tag="input_text", tag_field="type"):
    """Text a user (or a tool output) sends."""

    text: str


class OutputText(msgspec.Struct, tag="output_text", tag_field="type"):
    """Text the model wrote; `annotations` is required by the SDK's types."""

    text: str
    annotations: list[Any] = msgspec.field(default_factory=list)


class InputImage(msgspec.Struct, tag="input_image", tag_field="type"):
    """An image by URL (http(s) or data URL) or by uploaded-file id."""

    image_url: str | None = None
    file_id: str | None = None
    detail: str | None = None


class InputFile(msgspec.Struct, tag="input_file", tag_field="type"):
    """A file attachment; decoded only so it can be refused by name."""

    file_id: str | None = None
    file_data: str | None = None
    file_url: str | None = None
    filename: str | None = None


class Refusal(msgspec.Struct, tag="refusal", tag_field="type"):
    """The model's refusal to answer."""

    refusal: str


class SummaryText(msgspec.Struct, tag="summary_text", tag_field="type"):
    """One part of a reasoning summary."""

    text: str


class ReasoningText(msgspec.Struct, tag="reasoning_text", tag_field="type"):
    """Raw reasoning text (open-weight models served by LM Studio)."""

    text: str


MessageContent: TypeAlias = InputText | OutputText | InputImage | InputFile | Refusal
ToolOutputContent: TypeAlias = InputText | OutputText | InputImage | InputFile

# ----------------------------------------------------------- client request items


class ItemHead(msgspec.Struct):
    """Just enough of an input item to know which struct decodes the rest."""

    type: str | None = None
    role: str | None = None


class MessageItem(msgspec.Struct):
    """An input message; `type` may be absent (the "easy" input message)."""

    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[MessageContent]


class FunctionCallItem(msgspec.Struct):
    """A tool call the model made in an earlier turn; `namespace` is set for
    a tool declared inside a `namespace` tool."""

    call_id: str
    name: str
    arguments: str
    namespace: str | None = None


class FunctionCallOutputItem(msgspec.Struct):
    """The client's answer to a `function_call` (or `custom_tool_call`)."""

    call_id: str
    output: str | list[ToolOutputContent]


class CustomToolCallItem(msgspec.Struct):
    """A call of a freeform (`custom`) tool from an earlier turn."""

    call_id: str
    name: str
    input: str
    namespace: str | None = None


class ReasoningItem(msgspec.Struct):
    """Reasoning from an earlier turn, possibly only as encrypted content."""

    summary: list[SummaryText] = msgspec.field(default_factory=list)
    content: list[ReasoningText] | None = None
    encrypted_content: str | None = None


class WebSearchActionParam(msgspec.Struct):
    """`action` of a web search call item (`search`; others carry no query)."""

    type: str = "search"
    query: str | None = None
    queries: list[str] | None = None


class WebSearchCallItem(msgspec.Struct):
    """A web search of an earlier turn (Codex sends it without its `id`)."""

    id: str | None = None
    status: str | None = None
    action: WebSearchActionParam | None = None


class WebSearchFilters(msgspec.Struct):
    allowed_domains: list[str] | None = None


class WebSearchToolParam(msgspec.Struct):
    """A `web_search` / `web_search_preview` hosted tool."""

    type: str
    filters: WebSearchFilters | None = None


class ToolHead(msgspec.Struct):
    """Just the `type` of a tool, to tell function tools from hosted ones."""

    type: str


class FunctionToolParam(msgspec.Struct):
    """A function tool in the Responses (flattened) shape."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolChoiceParam(msgspec.Struct):
    """The object form of `tool_choice` (function, allowed_tools, hosted)."""

    type: str
    name: str | None = None
    mode: str | None = None
    namespace: str | None = None


class ReasoningParam(msgspec.Struct):
    """`reasoning`: effort and the kind of summary wanted."""

    effort: str | None = None
    summary: str | None = None
    generate_summary: str | None = None


class TextFormat(msgspec.Struct, omit_defaults=True):
    """`text.format`: plain text, a JSON schema or any JSON object."""

    type: Literal["text", "json_schema", "json_object"]
    name: str | None = None
    schema: dict[str, Any] | None = None
    description: str | None = None
    strict: bool | None = None


class TextConfig(msgspec.Struct, omit_defaults=True):
    """`text`: output format and verbosity."""

    format: TextFormat | None = None
    verbosity: str | None = None


class CreateRequest(msgspec.Struct):
    """A `POST /v1/responses` body. Items and tools are decoded one by one."""

    model: str
    input: str | list[msgspec.Raw] = msgspec.field(default_factory=list)
    instructions: str | None = None
    tools: list[msgspec.Raw] | None = None
    tool_choice: str | ToolChoiceParam | None = None
    parallel_tool_calls: bool | None = None
    max_output_tokens: TokenCount | None = None
    temperature: Annotated[float, msgspec.Meta(ge=0, le=2)] | None = None
    top_p: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    reasoning: ReasoningParam | None = None
    stream: bool | None = None
    previous_response_id: str | None = None
    store: bool | None = None
    include: list[str] | None = None
    prompt_cache_key: str | None = None
    client_metadata: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    user: str | None = None
    truncation: str | None = None
    text: TextConfig | None = None
    service_tier: str | None = None


# ------------------------------------------------------------- upstream request


class UpstreamImage(msgspec.Struct, tag="input_image", tag_field="type"):
    """An image in an upstream input message."""

    image_url: str
    detail: str = "auto"


class UpstreamAssistantText(msgspec.Struct, tag="output_text", tag_field="type"):
    """Assistant text replayed as input (no annotations, as Codex sends it)."""

    text: str


UpstreamContent: TypeAlias = InputText | UpstreamImage | UpstreamAssistantText


class UpstreamMessage(msgspec.Struct, tag="message", tag_field="type"):
    """An input message to the upstream."""

    role: str
    content: list[UpstreamContent]


class UpstreamFunctionCall(msgspec.Struct, tag="function_call", tag_field="type"):
    """A past tool call replayed to the upstream."""

    call_id: str
    name: str
    arguments: str


class UpstreamFunctionCallOutput(
    msgspec.Struct, tag="function_call_output", tag_field="type"
):
    """A tool result: text, or text and images."""

    call_id: str
    output: str | list[InputText | UpstreamImage]


class UpstreamReasoning(msgspec.Struct, tag="reasoning", tag_field="type"):
    """OpenAI reasoning replayed by its encrypted content."""

    summary: list[SummaryText]
    encrypted_content: str


UpstreamItem: TypeAlias = (
    UpstreamMessage
    | UpstreamFunctionCall
    | UpstreamFunctionCallOutput
    | UpstreamReasoning
)


class FunctionTool(
    msgspec.Struct, tag="function", tag_field="type", omit_defaults=True
):
    """A function tool, both in upstream requests and echoed in responses."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolChoiceFunction(msgspec.Struct, tag="function", tag_field="type"):
    """`tool_choice` naming one function."""

    name: str


ToolChoiceWire: TypeAlias = str | ToolChoiceFunction


class ReasoningConfig(msgspec.Struct, omit_defaults=True):
    """`reasoning` as sent upstream and echoed in responses."""

    effort: str | None = None
    summary: str | None = None


class UpstreamRequest(msgspec.Struct, omit_defaults=True):
    """A `POST /v1/responses` body we send; `stream` and `store` always go."""

    model: str
    input: list[UpstreamItem]
    stream: bool
    store: bool
    instructions: str | None = None
    tools: list[FunctionTool] | None = None
    tool_choice: ToolChoiceWire | None = None
    parallel_tool_calls: bool | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    reasoning: ReasoningConfig | None = None
    previous_response_id: str | None = None
    text: dict[str, Any] | None = None
