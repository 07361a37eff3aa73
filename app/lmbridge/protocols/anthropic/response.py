"""IR -> Anthropic: whole responses and error bodies, and the error mapping.

Usage convention: `ir.Usage.input_tokens` counts the whole prompt and
`cached_tokens` the part of it served from a cache (the OpenAI reading).
Anthropic counts cache reads apart, so `input_tokens` on the wire is the
difference and `cache_read_input_tokens` the cached part.
"""

from __future__ import annotations

import secrets

import msgspec

from lmbridge.core import errors, ir
from lmbridge.protocols import websearch
from lmbridge.protocols.anthropic import wire
from lmbridge.protocols.jsonutil import parse_json_object

_ENCODER = msgspec.json.Encoder()

_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}
_STATUS_BY_TYPE = {
    **{name: status for status, name in _TYPE_BY_STATUS.items()},
    "api_error": 502,
    "timeout_error": 504,
}


def new_message_id() -> str:
    """A fresh message id in Anthropic's `msg_...` style."""
    return "msg_" + secrets.token_hex(12)


def error_type(status: int, kind: str = "") -> str:
    """The Anthropic error `type` for an HTTP status (and our error kind)."""
    if kind == errors.ErrorKind.CONTEXT_OVERFLOW:
        return "invalid_request_error"
    known = _TYPE_BY_STATUS.get(status)
    if known is not None:
        return known
    return "invalid_request_error" if 400 <= status < 500 else "api_error"


def status_for(error_type: str) -> int:
    """The HTTP status an Anthropic error `type` stands for (502 if unknown)."""
    return _STATUS_BY_TYPE.get(error_type, 502)


def encode_error(error: errors.LMBridgeError) -> bytes:
    """`{"type":"error","error":{"type":...,"message":...}}` for `error`."""
    body = wire.ErrorBody(error_type(error.status, error.kind), error.message)
    return _ENCODER.encode(wire.ErrorEvent(body))


def wire_usage(usage: ir.Usage, input_tokens: int = 0) -> wire.Usage:
    """Anthropic usage; `input_tokens` stands in when `usage` has none."""
    total = usage.input_tokens or input_tokens
    cached = min(usage.cached_tokens or 0, total)
    searches = usage.web_search_requests
    return wire.Usage(
        input_tokens=total - cached,
        output_tokens=usage.output_tokens,
        cache_read_input_tokens=cached or None,
        server_tool_use=wire.ServerToolUsage(searches) if searches else None,
    )


def tool_input(call: ir.ToolCall) -> msgspec.Raw:
    """The call's arguments as a JSON object, repaired if unambiguous.

    Raises `UpstreamError` when the model's arguments cannot be read: broken
    JSON is never passed on to a client.
    """
    repaired = parse_json_object(call.arguments)
    if repaired is None:
        raise errors.UpstreamError(
            f"The model produced invalid tool arguments for `{call.name}`:"
            f" {call.arguments[:200]!r}. Retry, or try a model that is better"
            " at tool calling."
        )
    return msgspec.Raw(_ENCODER.encode(repaired))


def output_block(part: ir.Text | ir.ToolCall | ir.Thinking) -> wire.OutputBlock:
    """One assistant content block."""
    if isinstance(part, ir.Text):
        return wire.TextBlock(part.text)
    if isinstance(part, ir.ToolCall):
        return wire.ToolUseBlock(part.id, part.name, tool_input(part))
    if part.redacted:
        return wire.RedactedThinkingBlock(part.data or "")
    return wire.ThinkingBlock(part.text, part.signature or "")


def search_call(search: ir.WebSearch, whole: bool = True) -> wire.ServerToolUseBlock:
    """The `server_tool_use` block of a web search LM Bridge ran (its
    input empty when `whole` is False: a stream sends it as a delta)."""
    query = websearch.call_arguments(search.query) if whole else "{}"
    return wire.ServerToolUseBlock(
        search.call_id, websearch.TOOL_NAME, msgspec.Raw(query.encode())
    )


def search_result(search: ir.WebSearch) -> wire.WebSearchToolResultBlock:
    """The `web_search_tool_result` block of a web search LM Bridge ran."""
    if search.error is not None:
        return wire.WebSearchToolResultBlock(
            search.call_id, wire.WebSearchErrorBlock(search.error)
        )
    hits = [
        wire.WebSearchResultBlock(
            hit.url, hit.title or hit.url, websearch.sealed(hit.snippet), hit.page_age
        )
        for hit in search.hits
    ]
    return wire.WebSearchToolResultBlock(search.call_id, hits)


def output_blocks(
    parts: list[ir.Text | ir.ToolCall | ir.Thinking | ir.WebSearch],
) -> list[wire.OutputBlock]:
    """An answer's content blocks (a web search is two)."""
    blocks: list[wire.OutputBlock] = []
    for part in parts:
        if isinstance(part, ir.WebSearch):
            blocks.extend((search_call(part), search_result(part)))
        else:
            blocks.append(output_block(part))
    return blocks


def encode_response(response: ir.Response) -> bytes:
    """A complete `/v1/messages` answer (the `"type": "message"` body)."""
    body = wire.MessageBody(
        id=response.id or new_message_id(),
        model=response.model,
        content=output_blocks(response.parts),
        stop_reason=response.stop_reason.value,
        stop_sequence=response.stop_sequence,
        usage=wire_usage(response.usage),
    )
    return _ENCODER.encode(body)
