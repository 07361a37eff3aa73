"""Anthropic Messages wire types, as msgspec structs.

Leaf content blocks (`TextBlock`, `ImageBlock`, `ToolUseBlock`, ...) serve
both directions. Containers differ: what we *decode* from a client keeps
content blocks as `msgspec.Raw` so that each block can be dispatched on its
`type` and unknown block types can be skipped instead of failing the whole
body; what we *encode* is fully typed. Stream events we emit are tagged
structs; stream events we read from an upstream are decoded into one lenient
`UpstreamEvent` so an unknown event or delta type never breaks a stream.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import msgspec

from lmbridge.protocols.limits import Count, TokenCount, Unit

# ------------------------------------------------------------ content blocks


class TextBlock(msgspec.Struct, tag="text", tag_field="type"):
    text: str


class ImageSource(msgspec.Struct, omit_defaults=True):
    """`base64` (media_type + data) or `url`; other source types are skipped."""

    type: str
    media_type: str | None = None
    data: str | None = None
    url: str | None = None


class ImageBlock(msgspec.Struct, tag="image", tag_field="type"):
    source: ImageSource


class ToolUseBlock(msgspec.Struct, tag="tool_use", tag_field="type"):
    """`input` is kept as raw JSON: decoded text becomes IR arguments as-is."""

    id: str
    name: str
    input: msgspec.Raw


class ThinkingBlock(msgspec.Struct, tag="thinking", tag_field="type"):
    thinking: str = ""
    signature: str | None = None


class RedactedThinkingBlock(msgspec.Struct, tag="redacted_thinking", tag_field="type"):
    data: str


class ToolResultBlock(
    msgspec.Struct, tag="tool_result", tag_field="type", omit_defaults=True
):
    """A tool result as sent to an upstream (typed content)."""

    tool_use_id: str
    content: list[TextBlock | ImageBlock] = msgspec.field(default_factory=list)
    is_error: bool = False


class ServerToolUseBlock(msgspec.Struct, tag="server_tool_use", tag_field="type"):
    """A server tool's call (web search that LM Bridge ran for the model)."""

    id: str
    name: str
    input: msgspec.Raw


class WebSearchResultBlock(
    msgspec.Struct, tag="web_search_result", tag_field="type", omit_defaults=True
):
    """One hit; `encrypted_content` is opaque to the client (ours: the text)."""

    url: str
    title: str
    encrypted_content: str
    page_age: str | None = None


class WebSearchErrorBlock(
    msgspec.Struct, tag="web_search_tool_result_error", tag_field="type"
):
    error_code: str


class WebSearchToolResultBlock(
    msgspec.Struct, tag="web_search_tool_result", tag_field="type"
):
    tool_use_id: str
    content: list[WebSearchResultBlock] | WebSearchErrorBlock


ContentBlock: TypeAlias = (
    TextBlock
    | ImageBlock
    | ToolUseBlock
    | ThinkingBlock
    | RedactedThinkingBlock
    | ToolResultBlock
)
OutputBlock: TypeAlias = (
    TextBlock
    | ToolUseBlock
    | ThinkingBlock
    | RedactedThinkingBlock
    | ServerToolUseBlock
    | WebSearchToolResultBlock
)


# ------------------------------------------------- client request (decoding)


class BlockHead(msgspec.Struct):
    """Just the `type` of a content block, read before the block itself."""

    type: str


class WireToolResult(msgspec.Struct):
    tool_use_id: str
    content: str | list[msgspec.Raw] | None = None
    is_error: bool | None = None


class DocumentSource(msgspec.Struct):
    type: str
    data: str | None = None
    content: str | list[msgspec.Raw] | None = None


class WireDocument(msgspec.Struct):
    source: DocumentSource
    title: str | None = None


class WireSearchResult(msgspec.Struct):
    content: list[msgspec.Raw]
    source: str = ""
    title: str = ""


class WireServerToolUse(msgspec.Struct):
    """A client's history: a server tool's call."""

    id: str
    name: str = ""
    input: dict[str, Any] | None = None


class WireWebSearchHit(msgspec.Struct):
    """A client's history: one hit of a web search result (lenient)."""

    type: str = ""
    url: str = ""
    title: str | None = None
    encrypted_content: str | None = None
    page_age: str | None = None


class WireWebSearchResult(msgspec.Struct):
    """A client's history: a web search's result, hits or an error object."""

    tool_use_id: str
    content: list[WireWebSearchHit] | dict[str, Any] | None = None


class LooseTextBlock(msgspec.Struct):
    """Any block that may carry a `text` string (unknown block types)."""

    type: str
    text: str | None = None


class WireMessage(msgspec.Struct):
    role: str
    content: str | list[msgspec.Raw]


class SystemBlock(msgspec.Struct):
    text: str
    type: str = "text"


class WireTool(msgspec.Struct, omit_defaults=True):
    """A custom tool, or an Anthropic server tool (which has a versioned `type`)."""

    name: str = ""
    type: str | None = None
    description: str | None = None
    input_schema: dict[str, Any] | None = None
    # web_search_* server tools
    allowed_domains: list[str] | None = None
    blocked_domains: list[str] | None = None
    max_uses: int | None = None


class WireToolChoice(msgspec.Struct, omit_defaults=True):
    type: str
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class WireThinkingConfig(msgspec.Struct, omit_defaults=True):
    type: str
    budget_tokens: TokenCount | None = None


class WireOutputFormat(msgspec.Struct, omit_defaults=True):
    """`output_config.format` (and the beta's top-level `output_format`)."""

    type: str
    schema: dict[str, Any] | None = None


class WireOutputConfig(msgspec.Struct, omit_defaults=True):
    effort: str | None = None
    format: WireOutputFormat | None = None


class WireMetadata(msgspec.Struct):
    user_id: str | None = None


class UserIdJson(msgspec.Struct):
    """Claude Code 2.1 sends `metadata.user_id` as a JSON string."""

    session_id: str | None = None


class WireRequest(msgspec.Struct):
    """A client's request body. Fields not listed here are ignored."""

    model: str
    messages: list[WireMessage]
    max_tokens: TokenCount
    system: str | list[SystemBlock] | None = None
    tools: list[WireTool] | None = None
    tool_choice: WireToolChoice | None = None
    temperature: Unit | None = None
    top_p: Unit | None = None
    top_k: Count | None = None
    stop_sequences: list[str] | None = None
    stream: bool | None = None
    thinking: WireThinkingConfig | None = None
    metadata: WireMetadata | None = None
    output_config: WireOutputConfig | None = None
    output_format: WireOutputFormat | None = None


# ------------------------------------------------- upstream request (encoding)


class OutMessage(msgspec.Struct):
    role: str
    content: list[ContentBlock]


class OutTool(msgspec.Struct, omit_defaults=True):
    name: str
    input_schema: dict[str, Any]
    description: str | None = None


class OutRequest(msgspec.Struct, omit_defaults=True):
    """The body we send to an Anthropic-compatible upstream."""

    model: str
    max_tokens: int
    messages: list[OutMessage]
    stream: bool
    system: str | list[TextBlock] | None = None
    tools: list[OutTool] | None = None
    tool_choice: WireToolChoice | None = None
    thinking: WireThinkingConfig | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop_sequences: list[str] | None = None
    output_config: WireOutputConfig | None = None


# ----------------------------------------------------------- responses, errors


class ServerToolUsage(msgspec.Struct):
    web_search_requests: int = 0


class Usage(msgspec.Struct, omit_defaults=True):
    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int | None = None
    server_tool_use: ServerToolUsage | None = None


class MessageBody(msgspec.Struct):
    """A whole message: the non-streaming answer, or `message_start`'s payload."""

    id: str
    model: str
    content: list[OutputBlock]
    stop_reason: str | None
    stop_sequence: str | None
    usage: Usage
    type: str = "message"
    role: str = "assistant"


class ErrorBody(msgspec.Struct):
    type: str = "api_error"
    message: str = ""


class ErrorEnvelope(msgspec.Struct):
    """`{"type":"error","error":{...}}`; also tolerates `{"error":"text"}`."""

    error: ErrorBody | str | None = None
    message: str | None = None


# --------------------------------------------------- stream events (encoding)


class TextDelta(msgspec.Struct, tag="text_delta", tag_field="type"):
    text: str


class ThinkingDelta(msgspec.Struct, tag="thinking_delta", tag_field="type"):
    thinking: str


class SignatureDelta(msgspec.Struct, tag="signature_delta", tag_field="type"):
    signature: str


class InputJsonDelta(msgspec.Struct, tag="input_json_delta", tag_field="type"):
    partial_json: str


class MessageStartEvent(msgspec.Struct, tag="message_start", tag_field="type"):
    message: MessageBody


class BlockStartEvent(msgspec.Struct, tag="content_block_start", tag_field="type"):
    index: int
    content_block: OutputBlock


class BlockDeltaEvent(msgspec.Struct, tag="content_block_delta", tag_field="type"):
    index: int
    delta: TextDelta | ThinkingDelta | SignatureDelta | InputJsonDelta


class BlockStopEvent(msgspec.Struct, tag="content_block_stop", tag_field="type"):
    index: int


class StopDelta(msgspec.Struct):
    stop_reason: str | None
    stop_sequence: str | None


class MessageDeltaEvent(msgspec.Struct, tag="message_delta", tag_field="type"):
    delta: StopDelta
    usage: Usage


class MessageStopEvent(msgspec.Struct, tag="message_stop", tag_field="type"):
    pass


class PingEvent(msgspec.Struct, tag="ping", tag_field="type"):
    pass


class ErrorEvent(msgspec.Struct, tag="error", tag_field="type"):
    error: ErrorBody


StreamEvent: TypeAlias = (
    MessageStartEvent
    | BlockStartEvent
    | BlockDeltaEvent
    | BlockStopEvent
    | MessageDeltaEvent
    | MessageStopEvent
    | PingEvent
    | ErrorEvent
)


# --------------------------------------------------- stream events (decoding)


class UpstreamUsage(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None
    # Checked by hand (stream.add_usage): nonsense leaves them unknown.
    cache_read_input_tokens: Any = None
    cache_creation_input_tokens: Any = None


class UpstreamMessage(msgspec.Struct):
    id: str = ""
    model: str = ""
    usage: UpstreamUsage | None = None


class UpstreamBlock(msgspec.Struct):
    type: str
    id: str = ""
    name: str = ""
    text: str = ""
    thinking: str = ""
    signature: str = ""


class UpstreamDelta(msgspec.Struct):
    """A block delta or a `message_delta` delta; the unused fields stay empty."""

    type: str = ""
    text: str = ""
    thinking: str = ""
    signature: str = ""
    partial_json: str = ""
    stop_reason: str | None = None
    stop_sequence: str | None = None


class UpstreamEvent(msgspec.Struct):
    """Any Anthropic stream event, decoded leniently in one pass."""

    type: str
    index: int = 0
    message: UpstreamMessage | None = None
    content_block: UpstreamBlock | None = None
    delta: UpstreamDelta | None = None
    usage: UpstreamUsage | None = None
    error: ErrorBody | None = None
