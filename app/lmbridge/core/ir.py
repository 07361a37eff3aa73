"""The canonical representation every protocol codec meets in.

Inbound protocols parse into `Request`; upstream protocols encode from it.
Upstream decoders produce stream `Event`s; inbound encoders render them.
N front doors plus M upstream APIs make N + M codecs, never N x M.

The shape follows Anthropic Messages where the two OpenAI APIs differ:
system text is kept apart from the messages, tool results are parts of a
user message, and an assistant message holds text, thinking and tool calls
side by side.
"""

from __future__ import annotations

import enum
from typing import Any, Literal, TypeAlias

import msgspec


class Text(msgspec.Struct, frozen=True, tag="text"):
    """Plain text."""

    text: str


class Image(msgspec.Struct, frozen=True, tag="image"):
    """An image given inline (base64 `data`) or by `url` (http(s) or data URL)."""

    media_type: str = ""
    data: str | None = None
    url: str | None = None

    def as_data_url(self) -> str:
        """The image as a URL: the given one, or a data URL built from `data`."""
        if self.url is not None:
            return self.url
        return f"data:{self.media_type or 'image/png'};base64,{self.data or ''}"


class ToolCall(msgspec.Struct, frozen=True, tag="tool_call"):
    """A call the model makes; `arguments` is JSON object text."""

    id: str
    name: str
    arguments: str = "{}"


class ToolResult(msgspec.Struct, frozen=True, tag="tool_result"):
    """The client's answer to a `ToolCall`."""

    call_id: str
    content: tuple[Text | Image, ...] = ()
    is_error: bool = False

    def text(self) -> str:
        """The textual content joined; images are left out."""
        return "".join(p.text for p in self.content if isinstance(p, Text))


class Thinking(msgspec.Struct, frozen=True, tag="thinking"):
    """Reasoning from an earlier or the current turn.

    `signature` is Anthropic's; `data` holds opaque provider data such as
    Anthropic `redacted_thinking` or OpenAI `encrypted_content`.
    """

    text: str = ""
    signature: str | None = None
    redacted: bool = False
    data: str | None = None


Part: TypeAlias = Text | Image | ToolCall | ToolResult | Thinking


class Role(enum.StrEnum):
    USER = "user"
    ASSISTANT = "assistant"


class Message(msgspec.Struct, frozen=True):
    role: Role
    parts: tuple[Part, ...]


class Tool(msgspec.Struct, frozen=True):
    """A function tool the model may call; `parameters` is a JSON Schema."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = msgspec.field(default_factory=dict)


class ToolChoiceMode(enum.StrEnum):
    AUTO = "auto"
    REQUIRED = "required"
    NONE = "none"
    TOOL = "tool"


class ToolChoice(msgspec.Struct, frozen=True):
    mode: ToolChoiceMode = ToolChoiceMode.AUTO
    name: str | None = None


class Reasoning(msgspec.Struct, frozen=True):
    """A request for reasoning: `effort` (low/medium/high) or a token budget."""

    effort: str | None = None
    budget_tokens: int | None = None


class ClientInfo(msgspec.Struct, frozen=True):
    user_agent: str = ""
    session_key: str | None = None


class Request(msgspec.Struct, frozen=True):
    """One model request, whatever protocol it arrived in."""

    model: str
    messages: tuple[Message, ...]
    system: tuple[Text, ...] = ()
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    reasoning: Reasoning | None = None
    stream: bool = False
    client: ClientInfo = ClientInfo()
    # Provider-specific fields that must round-trip to an upstream of the same
    # protocol, keyed by the wire name (e.g. "presence_penalty").
    extras: dict[str, Any] = msgspec.field(default_factory=dict)

    def system_text(self) -> str:
        return "\n\n".join(p.text for p in self.system)


class StopReason(enum.StrEnum):
    END_TURN = "end_turn"
    MAX_TOKENS = "max_tokens"
    STOP_SEQUENCE = "stop_sequence"
    TOOL_USE = "tool_use"
    REFUSAL = "refusal"
    PAUSE = "pause_turn"


class Usage(msgspec.Struct):
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0


class Response(msgspec.Struct):
    """A complete answer, as assembled from a stream or decoded at once."""

    id: str
    model: str
    parts: list[Text | ToolCall | Thinking]
    stop_reason: StopReason = StopReason.END_TURN
    stop_sequence: str | None = None
    usage: Usage = msgspec.field(default_factory=Usage)


# ----------------------------------------------------------------- stream events


class BlockKind(enum.StrEnum):
    TEXT = "text"
    THINKING = "thinking"
    TOOL_CALL = "tool_call"


class MessageStart(msgspec.Struct, frozen=True, tag="message_start"):
    id: str
    model: str
    input_tokens: int = 0


class BlockStart(msgspec.Struct, frozen=True, tag="block_start"):
    """A content block opens. Indexes count from 0 in the order blocks open."""

    index: int
    kind: BlockKind
    call_id: str = ""
    name: str = ""


class TextDelta(msgspec.Struct, frozen=True, tag="text_delta"):
    index: int
    text: str


class ThinkingDelta(msgspec.Struct, frozen=True, tag="thinking_delta"):
    index: int
    text: str


class SignatureDelta(msgspec.Struct, frozen=True, tag="signature_delta"):
    index: int
    signature: str


class ToolArgsDelta(msgspec.Struct, frozen=True, tag="tool_args_delta"):
    index: int
    partial_json: str


class BlockStop(msgspec.Struct, frozen=True, tag="block_stop"):
    index: int


class Finish(msgspec.Struct, frozen=True, tag="finish"):
    stop_reason: StopReason
    usage: Usage
    stop_sequence: str | None = None


class StreamError(msgspec.Struct, frozen=True, tag="error"):
    """The upstream failed after the stream began. `kind` is an ErrorKind value."""

    kind: str
    message: str
    status: int = 502


class Ping(msgspec.Struct, frozen=True, tag="ping"):
    """Keep-alive during upstream silence."""


Event: TypeAlias = (
    MessageStart
    | BlockStart
    | TextDelta
    | ThinkingDelta
    | SignatureDelta
    | ToolArgsDelta
    | BlockStop
    | Finish
    | StreamError
    | Ping
)

ContentKind = Literal["text", "thinking", "tool_call"]
