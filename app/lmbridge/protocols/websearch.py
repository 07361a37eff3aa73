"""Web search for models that cannot search: the facts every codec shares.

A client's web search server tool (Anthropic `web_search_*`, Responses
`web_search` / `web_search_preview`) is offered to a model that cannot
search as the function `web_search(query)`; LM Bridge runs the search
(server/websearch.py) and the model reads the result as that function's
answer. Everything the model sees of a search is made here, from the
search alone (`ir.WebSearch`), so the same search in a later turn's
history gives the same bytes upstream and a server's prompt cache holds:

- the call: `web_search` with the arguments `{"query":"..."}`, whatever
  else the model wrote (`call_arguments`);
- the result: `result_text`, the hits numbered with title, URL, age and
  text, or one fixed sentence per error code.

Anthropic clients keep a hit's text in the `encrypted_content` of their
`web_search_result` blocks (`sealed` / `unsealed`): opaque to them, read
back when they send the history again. No I/O here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

import msgspec

from lmbridge.core import ir

TOOL_NAME = "web_search"
"""The function the model is offered in place of the server tool."""

_SEALED_PREFIX = "lmbridge-ws1."
_ARGS = msgspec.json.Encoder()


class _Arguments(msgspec.Struct):
    query: str = ""


_ARGUMENTS = msgspec.json.Decoder(_Arguments)

ERROR_TEXTS = {
    "unavailable": "The web search failed: the search service did not answer."
    " Answer without it, or say that searching failed.",
    "max_uses_exceeded": "No more web searches are allowed for this answer."
    " Answer with what the earlier searches found.",
    "invalid_tool_input": "The web search needs a non-empty `query` string.",
    "query_too_long": "The web search query is too long; use fewer words.",
    "too_many_requests": "The search service refused: too many searches."
    " Answer without searching again.",
}
"""What the model reads for a failed search, by Anthropic's error codes."""

MAX_QUERY = 500
"""Longest query sent to a search service, in characters."""

_RESPONSES_TYPES = ("web_search", "web_search_preview")


def is_anthropic_tool(tool_type: str | None) -> bool:
    """Whether an Anthropic server tool's `type` is web search."""
    return bool(tool_type) and str(tool_type).startswith("web_search_")


def is_responses_tool(tool_type: str | None) -> bool:
    """Whether a Responses hosted tool's `type` is web search (with the
    dated variants, `web_search_preview_2025_03_11`)."""
    if not tool_type:
        return False
    return tool_type in _RESPONSES_TYPES or tool_type.startswith(
        tuple(f"{t}_20" for t in _RESPONSES_TYPES)
    )


def function_tool(spec: ir.WebSearchTool) -> ir.Tool:
    """The function the model is offered for the client's tool."""
    description = (
        "Search the web for current information. Returns the top results"
        " (title, URL, text). Use it for anything that may have changed"
        " after your training or that you do not know."
    )
    if spec.allowed_domains:
        description += " Only these sites are searched: " + ", ".join(
            spec.allowed_domains
        )
        description += "."
    if spec.blocked_domains:
        description += " These sites are never searched: " + ", ".join(
            spec.blocked_domains
        )
        description += "."
    return ir.Tool(
        name=TOOL_NAME,
        description=description,
        parameters={
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "The search query."}
            },
            "required": ["query"],
        },
    )


def query_of(arguments: str) -> str | None:
    """The query a model's call asks for; None if it names none."""
    try:
        query = _ARGUMENTS.decode(arguments or "{}").query.strip()
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeError):
        return None
    return query or None


def call_arguments(query: str) -> str:
    """The call's arguments as the model is shown them, in every turn."""
    return _ARGS.encode({"query": query}).decode()


def result_text(search: ir.WebSearch) -> str:
    """What the model reads as the search's result."""
    if search.error is not None:
        return ERROR_TEXTS.get(search.error, ERROR_TEXTS["unavailable"])
    if not search.hits:
        return f"No results for {search.query!r}."
    lines = [f"Results for {search.query!r}:"]
    for number, hit in enumerate(search.hits, 1):
        lines.append("")
        lines.append(f"[{number}] {hit.title or hit.url}")
        lines.append(f"URL: {hit.url}")
        if hit.page_age:
            lines.append(f"Age: {hit.page_age}")
        if hit.snippet:
            lines.append(hit.snippet)
    return "\n".join(lines)


def as_call_and_result(search: ir.WebSearch) -> tuple[ir.ToolCall, ir.ToolResult]:
    """The search as the model sees it: its call (with the id the model
    gave it), and the call's result."""
    call_id = search.model_call_id or search.call_id
    call = ir.ToolCall(call_id, TOOL_NAME, call_arguments(search.query))
    result = ir.ToolResult(call_id, (ir.Text(result_text(search)),))
    return call, result


def search_id(query: str) -> str:
    """The id of a Responses search (its item's and its call's): made from
    the query, because Codex sends a search back without its id, so the
    history reads the same every turn."""
    digest = hashlib.sha1(query.encode(), usedforsecurity=False).hexdigest()
    return f"ws_{digest[:32]}"


def sealed(snippet: str) -> str:
    """A hit's text as the opaque `encrypted_content` a client keeps."""
    data = base64.urlsafe_b64encode(snippet.encode()).decode()
    return _SEALED_PREFIX + data


def unsealed(content: str | None) -> str:
    """The text `sealed` made; "" for anything else (Anthropic's own)."""
    if not content or not content.startswith(_SEALED_PREFIX):
        return ""
    try:
        return base64.urlsafe_b64decode(content[len(_SEALED_PREFIX) :]).decode()
    except (binascii.Error, UnicodeError, ValueError):
        return ""


def answer_messages(
    parts: list[ir.Text | ir.ToolCall | ir.Thinking | ir.WebSearch],
) -> list[ir.Message]:
    """An answer as the history the model saw: the assistant's parts, each
    web search its call there and its result in a user message after."""
    messages: list[ir.Message] = []
    run: list[ir.Part] = []
    for part in parts:
        if not isinstance(part, ir.WebSearch):
            run.append(part)
            continue
        call, result = as_call_and_result(part)
        messages.append(ir.Message(ir.Role.ASSISTANT, (*run, call)))
        messages.append(ir.Message(ir.Role.USER, (result,)))
        run = []
    if run:
        messages.append(ir.Message(ir.Role.ASSISTANT, tuple(run)))
    return messages
