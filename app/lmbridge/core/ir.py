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
from collections.abc import Iterable
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


class ToolKind(enum.StrEnum):
    """How the client declared a tool, so its calls go back in that shape.

    `CUSTOM` is a freeform tool (OpenAI Responses `custom`): upstream it is a
    function with one string argument, `input` (see `CUSTOM_INPUT`).
    """

    FUNCTION = "function"
    CUSTOM = "custom"


CUSTOM_INPUT = "input"
"""The one argument of a freeform (`ToolKind.CUSTOM`) tool, upstream."""


class ToolCall(msgspec.Struct, frozen=True, tag="tool_call"):
    """A call the model makes; `arguments` is JSON object text.

    `name` is the tool's name as the model sees it (`Tool.name`); `kind` and
    `namespace` say how the client sent the call in a history (a Responses
    `custom_tool_call`, a `function_call` with `namespace`).
    """

    id: str
    name: str
    arguments: str = "{}"
    kind: ToolKind = ToolKind.FUNCTION
    namespace: str | None = None


class ToolResult(msgspec.Struct, frozen=True, tag="tool_result"):
    """The client's answer to a `ToolCall`."""

    call_id: str
    content: tuple[Text | Image, ...] = ()
    is_error: bool = False

    def text(self) -> str:
        """The textual content joined by `join_text`; images are left out."""
        return join_text(p.text for p in self.content if isinstance(p, Text))


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


def join_text(texts: Iterable[str]) -> str:
    """Text parts as one text, losing no word or line boundary.

    The one rule every codec joins parts by: empty parts are skipped, and a
    line break goes between two parts unless the first already ends with
    whitespace or the second begins with it (`"a"`, `"b"` -> `"a\\nb"`;
    `"Output:\\n"`, `"x"` -> `"Output:\\nx"`).
    """
    out: list[str] = []
    for text in texts:
        if not text:
            continue
        if out and not out[-1][-1].isspace() and not text[0].isspace():
            out.append("\n")
        out.append(text)
    return "".join(out)


class SearchHit(msgspec.Struct, frozen=True):
    """One result of a web search: the page, and the text the model read."""

    url: str
    title: str = ""
    snippet: str = ""
    page_age: str | None = None


class WebSearch(msgspec.Struct, frozen=True, tag="web_search"):
    """A web search LM Bridge ran for the model in place of a vendor's
    server tool (server/websearch.py): the query, and its hits or the
    `error` code (`unavailable`, `max_uses_exceeded`, ...) the model read."""

    call_id: str
    query: str
    hits: tuple[SearchHit, ...] = ()
    error: str | None = None
    # The id the model gave its call, where the client knows the search by
    # another (`call_id`: Responses clients' is made from the query).
    model_call_id: str = ""


class WebSearchTool(msgspec.Struct, frozen=True):
    """A client's web search server tool (Anthropic `web_search_*`,
    Responses `web_search*`): what it allows. LM Bridge offers it to a
    model that cannot search as a function, when a provider is set up."""

    type: str = "web_search"
    allowed_domains: tuple[str, ...] = ()
    blocked_domains: tuple[str, ...] = ()
    max_uses: int | None = None


class Role(enum.StrEnum):
    """Who wrote a message. `SYSTEM` is a system message in the middle of
    the conversation (Claude Code and Codex send them): it stays where it
    is, and each upstream codec encodes it there in a form its API takes.
    Leading system text is `Request.system`, never a `SYSTEM` message."""

    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"


class Message(msgspec.Struct, frozen=True):
    role: Role
    parts: tuple[Part, ...]


class Tool(msgspec.Struct, frozen=True):
    """A function tool the model may call; `parameters` is a JSON Schema.

    `name` is what the model sees and calls. A tool the client declared
    inside a namespace (Responses `namespace` tools) has that `namespace`
    and its own `client_name`; `name` is then a flattened name made from
    both (`mcp__srv__read`). `kind` says how the client declared it.
    """

    name: str
    description: str = ""
    parameters: dict[str, Any] = msgspec.field(default_factory=dict)
    kind: ToolKind = ToolKind.FUNCTION
    namespace: str | None = None
    client_name: str | None = None

    @property
    def declared_name(self) -> str:
        """The tool's name as the client declared it."""
        return self.client_name or self.name


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


class OutputFormat(msgspec.Struct, frozen=True):
    """Structured output: the answer is JSON matching `schema` (`json_schema`)
    or any JSON object (`json_object`, `schema` None). `name`, `description`
    and `strict` are the OpenAI APIs' own; Anthropic takes only the schema."""

    type: Literal["json_schema", "json_object"] = "json_schema"
    schema: dict[str, Any] | None = None
    name: str | None = None
    description: str | None = None
    strict: bool | None = None


class ClientInfo(msgspec.Struct, frozen=True):
    user_agent: str = ""
    session_key: str | None = None
    # The subagent within the session that sent the request (Claude Code's
    # X-Claude-Code-Agent-Id); None for the session's main agent.
    agent: str | None = None

    @property
    def chain_key(self) -> str | None:
        """The key of this agent's own response chain in its session."""
        if self.session_key is None or not self.agent:
            return self.session_key
        return f"{self.session_key}{AGENT_SEPARATOR}{self.agent}"


# Joins a session key and a subagent's id in the key of the subagent's chain.
AGENT_SEPARATOR = "/agent/"


def split_chain_key(key: str) -> tuple[str, str | None]:
    """A chain's key as (its session, its subagent; None for the main agent)."""
    session, sep, agent = key.partition(AGENT_SEPARATOR)
    return session, (agent if sep else None)


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
    # What the front door dropped or rewrote of the client's request, one
    # line each ("tool web_search (type web_search_preview)"); the pipeline
    # lists them on the request's record.
    dropped: tuple[str, ...] = ()
    # The answer's required shape (JSON schema / any JSON object).
    output_format: OutputFormat | None = None
    # Fields kept in `extras` that change what the answer holds (Chat `n`,
    # `logprobs`) and that only an upstream of the client's own protocol
    # carries (the Chat codec sends all of `extras`), one "field: what it
    # asks for" line each. The other upstream codecs refuse the request
    # with a 400 naming them, rather than answer something else.
    unportable: tuple[str, ...] = ()
    # The client's web search server tool, if it offered one (it is not in
    # `tools`: server/websearch.py offers it or drops it).
    web_search: WebSearchTool | None = None
    # Ids of the `ToolCall`s in `messages` that are earlier web searches
    # (a client's history of server tool blocks, as a call and its result).
    searches: tuple[str, ...] = ()

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
    """Token counts of one answer.

    `input_tokens` counts every prompt token; `cached_tokens` the part of
    them the upstream served from its prompt cache, None when the upstream
    did not say (never guessed: see `cached_count`).
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int | None = None
    reasoning_tokens: int = 0
    # Web searches LM Bridge ran for the answer (server/websearch.py).
    web_search_requests: int = 0


def cached_count(cached: object, prompt: object = None) -> int | None:
    """`cached` as a cached-prompt-token count, or None when it is not one.

    Upstreams report nonsense now and then (a string, a negative number,
    more cached tokens than the prompt had): that leaves the count unknown
    rather than failing the answer. `prompt`, when it is a count, bounds it.
    """
    if not isinstance(cached, int) or isinstance(cached, bool) or cached < 0:
        return None
    if isinstance(prompt, int) and not isinstance(prompt, bool) and cached > prompt:
        return None
    return cached


class Response(msgspec.Struct):
    """A complete answer, as assembled from a stream or decoded at once."""

    id: str
    model: str
    parts: list[Text | ToolCall | Thinking | WebSearch]
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


class WebSearchStarted(msgspec.Struct, frozen=True, tag="web_search_started"):
    """LM Bridge began a web search for the model (the block `index`)."""

    index: int
    call_id: str
    query: str


class WebSearchDone(msgspec.Struct, frozen=True, tag="web_search_done"):
    """The web search of block `index` ended: its hits, or its error."""

    index: int
    search: WebSearch


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
    | WebSearchStarted
    | WebSearchDone
)
