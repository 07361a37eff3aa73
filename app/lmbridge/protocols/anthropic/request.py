"""Anthropic Messages request body -> `ir.Request`.

Policies (quoted by docs/translation.md):

- **System messages inside `messages`.** Claude Code 2.1 sends messages
  with role `system` among the turns. Those before the first user or
  assistant message join the system prompt; the others stay where they
  are, as IR `SYSTEM` messages (each upstream encoder writes them in place
  in a form its API takes), so the start of the prompt does not change
  from turn to turn and servers' prompt caches hold.
- **Web search is LM Bridge's to run.** A `web_search_*` server tool is
  kept apart as `Request.web_search` (with its domains and `max_uses`):
  the pipeline offers it to the model as a function when a search
  provider is set up, else drops it with a note (server/websearch.py).
  An earlier turn's `server_tool_use` named `web_search` and its
  `web_search_tool_result` become the call and result the model was shown
  then (protocols/websearch.py), the result in a user message between the
  assistant's; their call ids are listed in `Request.searches`.
- **Other server tools are dropped.** Anthropic server tools (tools with a
  versioned `type` such as `web_search_20250305`, `bash_20250124`,
  `text_editor_*`, `code_execution_*`, `computer_*`, `web_fetch_*`,
  `memory_*`, `tool_search_tool_*`) run on Anthropic's servers; a local
  model cannot run them. Their names are recorded in `Request.dropped`
  (the request's record lists them). A `tool_choice` naming a dropped
  tool becomes `auto`.
- **`defer_loading` tools are forwarded** as ordinary tools: they are
  client tools whose description Anthropic loads lazily; without tool
  search every offered tool is simply described up front.
- **Unknown content blocks never fail a request.** `document` blocks with
  text (`source` of type `text` or `content`) and `search_result` blocks
  become text; any other block with a `text` string becomes text. PDF/URL
  documents, image sources other than `base64`/`url`, and server-side
  tool blocks (`server_tool_use`, `*_tool_result`, `mcp_tool_use`,
  `container_upload`, ...) are dropped (each listed in `Request.dropped`),
  as are empty text blocks and assistant messages left with no content. A
  user message left with nothing is a 400: the model would be answering
  a turn it cannot see.
- **Validated as Anthropic does**, before anything is sent: `messages`
  must not be empty, nor any message's content (but a final assistant
  prefill); numbers are bounded (`protocols/limits.py`).
- **Structured output and effort**: `output_config.format` (or the beta's
  top-level `output_format`) is `Request.output_format`;
  `output_config.effort` is the reasoning effort, unless thinking is
  disabled. Adaptive thinking without an effort is effort `medium`.
- **Anthropic-only fields are not forwarded**: `metadata`,
  `context_management`, `container`, `mcp_servers`, `service_tier` and
  the like are read (at most for the session key) and never put in
  `extras`. The session key is `session_id` from `metadata.user_id` when
  that is a JSON string, or the `_session_<id>` suffix of the older
  `user_..._session_...` form.
"""

from __future__ import annotations

import re

import msgspec

from lmbridge.core import ir
from lmbridge.core.errors import DECODE_ERRORS
from lmbridge.protocols import websearch
from lmbridge.protocols.anthropic import wire
from lmbridge.protocols.anthropic.blocks import content, decode, invalid, system_parts

_REQUEST = msgspec.json.Decoder(wire.WireRequest)
_USER_ID = msgspec.json.Decoder(wire.UserIdJson)

_ROLES = {"user": ir.Role.USER, "assistant": ir.Role.ASSISTANT}
_CUSTOM_TOOL_TYPES = (None, "custom")
_SESSION_SUFFIX = re.compile(r"_session_([0-9A-Za-z-]+)$")


def parse_request(body: bytes) -> ir.Request:
    """Parse a `/v1/messages` body; raises `InvalidRequest` naming the field."""
    req = decode(_REQUEST, body, "$")
    if not req.messages:
        raise invalid("at least one message is required", "$.messages")
    system = system_parts(req.system)
    messages: list[ir.Message] = []
    skipped: list[str] = []
    searches: list[str] = []
    last = len(req.messages) - 1
    for i, message in enumerate(req.messages):
        path = f"$.messages[{i}]"
        role = _ROLES.get(message.role)
        if role is None and message.role != "system":
            raise invalid(
                f"must be user, assistant or system, not {message.role!r}",
                f"{path}.role",
            )
        prefill = i == last and role is ir.Role.ASSISTANT
        if not message.content and role is not None and not prefill:
            raise invalid(
                "all messages must have non-empty content except for the"
                " optional final assistant message",
                f"{path}.content",
            )
        before = len(skipped)
        parts = content(
            message.content, path, skipped, assistant=role is ir.Role.ASSISTANT
        )
        if role is None:
            texts = [part for part in parts if isinstance(part, ir.Text)]
            if messages:
                if texts:
                    messages.append(ir.Message(ir.Role.SYSTEM, tuple(texts)))
            else:
                system.extend(texts)
        elif parts:
            _add(messages, role, parts, searches)
        elif role is ir.Role.USER and message.content:
            why = "; ".join(skipped[before:]) or "only empty text"
            raise invalid(
                f"holds nothing LM Bridge can send to a model ({why})",
                f"{path}.content",
            )
    if not any(m.role is not ir.Role.SYSTEM for m in messages):
        raise invalid("holds no user or assistant message", "$.messages")

    tools, dropped, web_search, search_at = _tools(req.tools)
    tool_choice, parallel = _tool_choice(req.tool_choice, dropped)
    server_tools = [
        f"tool {name}: a server tool LM Bridge cannot run"
        for i, name in enumerate(dropped)
        if i != search_at
    ]
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
        reasoning=_reasoning(req.thinking, req.output_config),
        stream=bool(req.stream),
        client=ir.ClientInfo(session_key=_session_key(req.metadata)),
        dropped=(*server_tools, *skipped),
        output_format=_output_format(req),
        web_search=web_search,
        searches=tuple(searches),
    )


def _add(
    messages: list[ir.Message],
    role: ir.Role,
    parts: list[ir.Part],
    searches: list[str],
) -> None:
    """Append a message; an assistant's web search results (blocks.py)
    go into user messages between its other parts, as the model saw them."""
    calls = (
        {
            p.id
            for p in parts
            if isinstance(p, ir.ToolCall) and p.name == websearch.TOOL_NAME
        }
        if role is ir.Role.ASSISTANT
        else None
    )
    # Most messages hold no web search: no result to move, nothing searched.
    if not calls or not any(
        isinstance(p, ir.ToolResult) and p.call_id in calls for p in parts
    ):
        if searches and role is ir.Role.USER and _searched(messages, searches):
            # After a search that ended the assistant's turn: one user turn.
            messages[-1] = ir.Message(role, messages[-1].parts + tuple(parts))
        else:
            messages.append(ir.Message(role, tuple(parts)))
        return
    run: list[ir.Part] = []
    for part in parts:
        if isinstance(part, ir.ToolResult) and part.call_id in calls:
            if run:
                messages.append(ir.Message(ir.Role.ASSISTANT, tuple(run)))
                run = []
            if _searched(messages, searches):
                messages[-1] = ir.Message(ir.Role.USER, (*messages[-1].parts, part))
            else:
                messages.append(ir.Message(ir.Role.USER, (part,)))
            searches.append(part.call_id)
        else:
            run.append(part)
    if run:
        messages.append(ir.Message(ir.Role.ASSISTANT, tuple(run)))


def _searched(messages: list[ir.Message], searches: list[str]) -> bool:
    """Whether the last message holds only web search results."""
    if not messages or messages[-1].role is not ir.Role.USER:
        return False
    return all(
        isinstance(p, ir.ToolResult) and p.call_id in searches
        for p in messages[-1].parts
    )


# ------------------------------------------------------- tools and settings


def _tools(
    tools: list[wire.WireTool] | None,
) -> tuple[list[ir.Tool], list[str], ir.WebSearchTool | None, int]:
    """Custom tools as IR tools, the names of the server tools left out,
    the web search tool and its place among those (-1: none)."""
    kept: list[ir.Tool] = []
    dropped: list[str] = []
    web_search = None
    search_at = -1
    for i, tool in enumerate(tools or ()):
        if websearch.is_anthropic_tool(tool.type) and web_search is None:
            web_search = ir.WebSearchTool(
                type=tool.type or "",
                allowed_domains=tuple(tool.allowed_domains or ()),
                blocked_domains=tuple(tool.blocked_domains or ()),
                max_uses=tool.max_uses,
            )
            search_at = len(dropped)
            dropped.append(tool.name or websearch.TOOL_NAME)
            continue
        if tool.type not in _CUSTOM_TOOL_TYPES:
            dropped.append(tool.name or tool.type or "")
            continue
        if not tool.name:
            raise invalid("a custom tool needs a `name`", f"$.tools[{i}].name")
        if tool.input_schema is None:
            raise invalid(
                "a custom tool needs an `input_schema`", f"$.tools[{i}].input_schema"
            )
        kept.append(ir.Tool(tool.name, tool.description or "", tool.input_schema))
    return kept, dropped, web_search, search_at


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
            raise invalid("`tool` choice needs a `name`", "$.tool_choice.name")
        if choice.name in dropped:
            return ir.ToolChoice(ir.ToolChoiceMode.AUTO), parallel
        return ir.ToolChoice(ir.ToolChoiceMode.TOOL, choice.name), parallel
    raise invalid(
        f"must be auto, any, tool or none, not {choice.type!r}",
        "$.tool_choice.type",
    )


_EFFORTS = ("low", "medium", "high", "xhigh", "max")


def _reasoning(
    thinking: wire.WireThinkingConfig | None, config: wire.WireOutputConfig | None
) -> ir.Reasoning | None:
    effort = config.effort if config is not None else None
    if effort is not None and effort not in _EFFORTS:
        raise invalid(
            f"must be one of {', '.join(_EFFORTS)}, not {effort!r}",
            "$.output_config.effort",
        )
    if thinking is None:
        return ir.Reasoning(effort=effort) if effort else None
    if thinking.type == "disabled":
        return None
    if thinking.type == "enabled":
        if thinking.budget_tokens is None:
            raise invalid(
                "enabled thinking needs `budget_tokens`", "$.thinking.budget_tokens"
            )
        return ir.Reasoning(effort=effort, budget_tokens=thinking.budget_tokens)
    if thinking.type in ("adaptive", "between_tools"):
        return ir.Reasoning(effort=effort or "medium")
    raise invalid(
        f"must be enabled, adaptive or disabled, not {thinking.type!r}",
        "$.thinking.type",
    )


def _output_format(req: wire.WireRequest) -> ir.OutputFormat | None:
    config = req.output_config
    given = config.format if config is not None else None
    path = "$.output_config.format"
    if given is None:
        given, path = req.output_format, "$.output_format"
    if given is None:
        return None
    if given.type != "json_schema":
        raise invalid(f"must be json_schema, not {given.type!r}", f"{path}.type")
    if given.schema is None:
        raise invalid("a json_schema format needs a `schema`", f"{path}.schema")
    return ir.OutputFormat("json_schema", given.schema)


def _session_key(metadata: wire.WireMetadata | None) -> str | None:
    user_id = metadata.user_id if metadata else None
    if not user_id:
        return None
    if user_id.lstrip().startswith("{"):
        try:
            return _USER_ID.decode(user_id).session_id or None
        except DECODE_ERRORS:
            return None  # not the JSON form after all: no session key
    match = _SESSION_SUFFIX.search(user_id)
    return match[1] if match else None
