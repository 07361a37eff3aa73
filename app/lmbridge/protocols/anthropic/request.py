"""Anthropic Messages request body -> `ir.Request`.

Policies (quoted by the README):

- **System messages inside `messages`.** Claude Code 2.1 sends messages
  with role `system` among the turns. Their text is moved, in order, to the
  end of the request's system parts (after the top-level `system`): most
  local chat templates accept a system prompt only at the very start.
- **Server tools are dropped.** Anthropic server tools (tools with a
  versioned `type` such as `web_search_20250305`, `bash_20250124`,
  `text_editor_*`, `code_execution_*`, `computer_*`, `web_fetch_*`,
  `memory_*`, `tool_search_tool_*`) run on Anthropic's servers; a local
  model cannot run them. Their names are recorded in
  `Request.extras["dropped_tools"]`. A `tool_choice` naming a dropped
  tool becomes `auto`.
- **`defer_loading` tools are forwarded** as ordinary tools: they are
  client tools whose description Anthropic loads lazily; without tool
  search every offered tool is simply described up front.
- **Unknown content blocks never fail a request.** `document` blocks with
  text (`source` of type `text` or `content`) and `search_result` blocks
  become text; any other block with a `text` string becomes text. PDF/URL
  documents, image sources other than `base64`/`url`, and server-side
  tool blocks (`server_tool_use`, `*_tool_result`, `mcp_tool_use`,
  `container_upload`, ...) are dropped, as are empty text blocks and
  messages left with no content.
- **Anthropic-only fields are not forwarded**: `metadata`, `output_config`,
  `context_management`, `container`, `mcp_servers`, `service_tier` and
  the like are read (at most for the session key) and never put in
  `extras`. The session key is `session_id` from `metadata.user_id` when
  that is a JSON string, or the `_session_<id>` suffix of the older
  `user_..._session_...` form.
"""

from __future__ import annotations

import re
from typing import TypeVar

import msgspec

from lmbridge.core import ir
from lmbridge.core.errors import InvalidRequest
from lmbridge.protocols.anthropic import wire

T = TypeVar("T")

_REQUEST = msgspec.json.Decoder(wire.WireRequest)
_HEAD = msgspec.json.Decoder(wire.BlockHead)
_TEXT = msgspec.json.Decoder(wire.TextBlock)
_IMAGE = msgspec.json.Decoder(wire.ImageBlock)
_TOOL_USE = msgspec.json.Decoder(wire.ToolUseBlock)
_TOOL_RESULT = msgspec.json.Decoder(wire.WireToolResult)
_THINKING = msgspec.json.Decoder(wire.ThinkingBlock)
_REDACTED = msgspec.json.Decoder(wire.RedactedThinkingBlock)
_DOCUMENT = msgspec.json.Decoder(wire.WireDocument)
_SEARCH_RESULT = msgspec.json.Decoder(wire.WireSearchResult)
_LOOSE_TEXT = msgspec.json.Decoder(wire.LooseTextBlock)
_USER_ID = msgspec.json.Decoder(wire.UserIdJson)

_ROLES = {"user": ir.Role.USER, "assistant": ir.Role.ASSISTANT}
_CUSTOM_TOOL_TYPES = (None, "custom")
_SESSION_SUFFIX = re.compile(r"_session_([0-9A-Za-z-]+)$")
_MISSING_FIELD = re.compile(r"Object missing required field `([^`]+)`")


def parse_request(body: bytes) -> ir.Request:
    """Parse a `/v1/messages` body; raises `InvalidRequest` naming the field."""
    req = _decode(_REQUEST, body, "$")
    system = _system_parts(req.system)
    messages: list[ir.Message] = []
    for i, message in enumerate(req.messages):
        path = f"$.messages[{i}]"
        parts = _content(message.content, path)
        if message.role == "system":
            system.extend(part for part in parts if isinstance(part, ir.Text))
            continue
        role = _ROLES.get(message.role)
        if role is None:
            raise _invalid(
                f"must be user, assistant or system, not {message.role!r}",
                f"{path}.role",
            )
        if parts:
            messages.append(ir.Message(role, tuple(parts)))

    tools, dropped = _tools(req.tools)
    tool_choice, parallel = _tool_choice(req.tool_choice, dropped)
    return ir.Request(
        model=req.model,
        messages=tuple(messages),
        system=tuple(system),
        tools=tuple(tools),
        tool_choice=tool_choice,
        parallel_tool_calls=parallel,
        max_tokens=req.max_tokens,
        temperature=req.temperature,
        top_p=req.top_p,
        top_k=req.top_k,
        stop=tuple(req.stop_sequences or ()),
        reasoning=_reasoning(req.thinking),
        stream=bool(req.stream),
        client=ir.ClientInfo(session_key=_session_key(req.metadata)),
        extras={"dropped_tools": dropped} if dropped else {},
    )


# ------------------------------------------------------------------ errors


def _invalid(message: str, path: str) -> InvalidRequest:
    """An error about the field at JSON path `path` (`$.messages[0].role`).

    Worded like `jsonutil.invalid` so every front door reads the same:
    `invalid request: messages[0].role: ...`.
    """
    param = path.removeprefix("$").removeprefix(".")
    where = f"{param}: " if param else ""
    return InvalidRequest(f"invalid request: {where}{message}", param=param or None)


def _decode(
    decoder: msgspec.json.Decoder[T], data: bytes | msgspec.Raw, path: str
) -> T:
    """Decode `data` found at `path`; errors name the full field path."""
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise _validation_error(exc, path) from None
    except RecursionError:
        raise InvalidRequest("the request body is nested too deeply") from None
    except (msgspec.DecodeError, UnicodeError) as exc:
        if not data:
            raise InvalidRequest(
                "the request body is empty; send a JSON object"
            ) from None
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from None


def _validation_error(exc: msgspec.ValidationError, path: str) -> InvalidRequest:
    """msgspec's error, its location made relative to the whole body."""
    message, found, where = str(exc).rpartition(" - at `")
    if not found:  # the error is about the value at `path` itself
        message, where = str(exc), "$"
    field = path + where.rstrip("`").removeprefix("$")
    missing = _MISSING_FIELD.match(message)
    if missing:
        field = f"{field}.{missing[1]}"
    return _invalid(message, field)


def _lenient(decoder: msgspec.json.Decoder[T], raw: msgspec.Raw) -> T | None:
    """Decode an optional block; a shape we do not know drops it (policy)."""
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError:
        return None


# ------------------------------------------------------------------ content


def _system_parts(system: str | list[wire.SystemBlock] | None) -> list[ir.Text]:
    if system is None:
        return []
    if isinstance(system, str):
        return [ir.Text(system)] if system else []
    return [ir.Text(b.text) for b in system if b.type == "text" and b.text]


def _content(content: str | list[msgspec.Raw], path: str) -> list[ir.Part]:
    if isinstance(content, str):
        return [ir.Text(content)] if content else []
    parts: list[ir.Part] = []
    for j, raw in enumerate(content):
        parts.extend(_block(raw, f"{path}.content[{j}]"))
    return parts


def _block(raw: msgspec.Raw, path: str) -> list[ir.Part]:
    """One content block as IR parts (none when policy drops it)."""
    kind = _decode(_HEAD, raw, path).type
    if kind == "text":
        text = _decode(_TEXT, raw, path).text
        return [ir.Text(text)] if text else []
    if kind == "image":
        image = _image(_decode(_IMAGE, raw, path).source, f"{path}.source")
        return [image] if image else []
    if kind == "tool_use":
        use = _decode(_TOOL_USE, raw, path)
        arguments = bytes(use.input).decode()
        if not arguments.startswith("{"):
            raise _invalid("Expected `object`", f"{path}.input")
        return [ir.ToolCall(use.id, use.name, arguments)]
    if kind == "tool_result":
        result = _decode(_TOOL_RESULT, raw, path)
        content = result.content if result.content is not None else ""
        inner = [
            part
            for part in _content(content, path)
            if isinstance(part, ir.Text | ir.Image)
        ]
        return [ir.ToolResult(result.tool_use_id, tuple(inner), bool(result.is_error))]
    if kind == "thinking":
        thinking = _decode(_THINKING, raw, path)
        return [ir.Thinking(thinking.thinking, thinking.signature or None)]
    if kind == "redacted_thinking":
        return [ir.Thinking(redacted=True, data=_decode(_REDACTED, raw, path).data)]
    if kind == "document":
        return _document(raw, path)
    if kind == "search_result":
        return _search_result(raw, path)
    loose = _lenient(_LOOSE_TEXT, raw)
    return [ir.Text(loose.text)] if loose and loose.text else []


def _image(source: wire.ImageSource, path: str) -> ir.Image | None:
    if source.type == "base64":
        if not source.data or not source.media_type:
            raise _invalid("a base64 image needs `media_type` and `data`", path)
        return ir.Image(media_type=source.media_type, data=source.data)
    if source.type == "url":
        if not source.url:
            raise _invalid("a url image needs `url`", path)
        return ir.Image(media_type=source.media_type or "", url=source.url)
    return None


def _texts(parts: list[ir.Part]) -> str:
    return "\n".join(p.text for p in parts if isinstance(p, ir.Text))


def _document(raw: msgspec.Raw, path: str) -> list[ir.Part]:
    document = _lenient(_DOCUMENT, raw)
    if document is None:
        return []
    source = document.source
    if source.type == "text" and source.data:
        text = source.data
    elif source.type == "content" and source.content:
        text = _texts(_content(source.content, f"{path}.source"))
    else:
        return []
    if document.title:
        text = f"{document.title}\n\n{text}"
    return [ir.Text(text)] if text else []


def _search_result(raw: msgspec.Raw, path: str) -> list[ir.Part]:
    result = _lenient(_SEARCH_RESULT, raw)
    if result is None:
        return []
    body = _texts(_content(result.content, path))
    head = "\n".join(line for line in (result.title, result.source) if line)
    text = f"{head}\n\n{body}" if head and body else head or body
    return [ir.Text(text)] if text else []


# ------------------------------------------------------- tools and settings


def _tools(tools: list[wire.WireTool] | None) -> tuple[list[ir.Tool], list[str]]:
    """Custom tools as IR tools, and the names of dropped server tools."""
    kept: list[ir.Tool] = []
    dropped: list[str] = []
    for i, tool in enumerate(tools or ()):
        if tool.type not in _CUSTOM_TOOL_TYPES:
            dropped.append(tool.name or tool.type or "")
            continue
        path = f"$.tools[{i}]"
        if not tool.name:
            raise _invalid("a custom tool needs a `name`", f"{path}.name")
        if tool.input_schema is None:
            raise _invalid(
                "a custom tool needs an `input_schema`", f"{path}.input_schema"
            )
        kept.append(ir.Tool(tool.name, tool.description or "", tool.input_schema))
    return kept, dropped


def _tool_choice(
    choice: wire.WireToolChoice | None, dropped: list[str]
) -> tuple[ir.ToolChoice | None, bool | None]:
    if choice is None:
        return None, None
    parallel = False if choice.disable_parallel_tool_use else None
    if choice.type == "auto":
        return ir.ToolChoice(ir.ToolChoiceMode.AUTO), parallel
    if choice.type == "any":
        return ir.ToolChoice(ir.ToolChoiceMode.REQUIRED), parallel
    if choice.type == "none":
        return ir.ToolChoice(ir.ToolChoiceMode.NONE), parallel
    if choice.type == "tool":
        if not choice.name:
            raise _invalid("`tool` choice needs a `name`", "$.tool_choice.name")
        if choice.name in dropped:
            return ir.ToolChoice(ir.ToolChoiceMode.AUTO), parallel
        return ir.ToolChoice(ir.ToolChoiceMode.TOOL, choice.name), parallel
    raise _invalid(
        f"must be auto, any, tool or none, not {choice.type!r}",
        "$.tool_choice.type",
    )


def _reasoning(thinking: wire.WireThinkingConfig | None) -> ir.Reasoning | None:
    if thinking is None or thinking.type == "disabled":
        return None
    if thinking.type == "enabled":
        if thinking.budget_tokens is None:
            raise _invalid(
                "enabled thinking needs `budget_tokens`", "$.thinking.budget_tokens"
            )
        return ir.Reasoning(budget_tokens=thinking.budget_tokens)
    if thinking.type == "adaptive":
        return ir.Reasoning(effort="medium")
    raise _invalid(
        f"must be enabled, adaptive or disabled, not {thinking.type!r}",
        "$.thinking.type",
    )


def _session_key(metadata: wire.WireMetadata | None) -> str | None:
    user_id = metadata.user_id if metadata else None
    if not user_id:
        return None
    if user_id.lstrip().startswith("{"):
        try:
            return _USER_ID.decode(user_id).session_id or None
        except (msgspec.DecodeError, UnicodeError, RecursionError):
            return None  # not the JSON form after all: no session key
    match = _SESSION_SUFFIX.search(user_id)
    return match[1] if match else None
