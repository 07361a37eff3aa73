"""Whole responses and errors in the Responses (OpenAI) shape.

`encode_response` renders an `ir.Response` as a Response object that the
official SDK's `Response` model accepts; `encode_error` and `parse_error`
convert errors between our tree and OpenAI's `{"error": {...}}` answer. The
helpers here (ids, usage, status) are shared with the stream encoder.
"""

from __future__ import annotations

import re
import secrets
import time

import msgspec

from lmbridge.core import errors, ir
from lmbridge.core.errors import DECODE_ERRORS
from lmbridge.protocols import overflow
from lmbridge.protocols.openai_errors import encode_error as encode_error
from lmbridge.protocols.openai_responses import answer, wire
from lmbridge.protocols.openai_responses.tools import ClientTools
from lmbridge.protocols.openai_responses.upstream import is_openai_reasoning


class UpstreamErrorDetail(msgspec.Struct):
    """An upstream's error object, every field optional."""

    message: str | None = None
    type: str | None = None
    param: str | None = None
    code: str | int | None = None


class UpstreamErrorBody(msgspec.Struct):
    """An upstream's error answer; some servers send `error` as a string."""

    error: UpstreamErrorDetail | str | None = None
    message: str | None = None


# Codes of a failed response; the SDK's `ResponseError.code` lists the
# known ones, and clients such as Codex CLI key on context_length_exceeded.
_STREAM_ERROR_CODES = {
    errors.ErrorKind.CONTEXT_OVERFLOW.value: "context_length_exceeded",
    errors.ErrorKind.RATE_LIMIT.value: "rate_limit_exceeded",
    errors.ErrorKind.INVALID_REQUEST.value: "invalid_prompt",
}
_PREVIOUS_RESPONSE = re.compile(r"previous.?response", re.IGNORECASE)
_MISSING = re.compile(r"not (be )?found|does not exist|no such|unknown", re.IGNORECASE)
_BODY_LIMIT = 500
_ERROR_BODY = msgspec.json.Decoder(UpstreamErrorBody)


def new_id(prefix: str) -> str:
    """A fresh OpenAI-style id such as `resp_<48 hex>`."""
    return f"{prefix}_{secrets.token_hex(24)}"


def response_id_for(candidate: str) -> str:
    """`candidate` when it is already a Responses id, else a new one."""
    return candidate if candidate.startswith("resp_") else new_id("resp")


def now() -> int:
    """Seconds since the epoch, as `created_at` wants it."""
    return int(time.time())


def usage_wire(usage: ir.Usage) -> answer.ResponseUsage:
    """IR usage in the Responses shape."""
    return answer.ResponseUsage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        total_tokens=usage.input_tokens + usage.output_tokens,
        input_tokens_details=answer.InputTokensDetails(
            cached_tokens=usage.cached_tokens or 0
        ),
        output_tokens_details=answer.OutputTokensDetails(
            reasoning_tokens=usage.reasoning_tokens
        ),
    )


def status_for(
    stop_reason: ir.StopReason,
) -> tuple[str, answer.IncompleteDetails | None]:
    """A response's `status` and `incomplete_details` for a stop reason."""
    if stop_reason is ir.StopReason.MAX_TOKENS:
        return "incomplete", answer.IncompleteDetails("max_output_tokens")
    return "completed", None


def stream_error_code(kind: str) -> str:
    """The `code` of an `error` event and failed response for an error kind."""
    return _STREAM_ERROR_CODES.get(kind, "server_error")


def reasoning_item(item_id: str, text: str, data: str | None) -> answer.Reasoning:
    """A reasoning output item; `data` is OpenAI encrypted content or None."""
    summary = [wire.SummaryText(text)] if text else []
    return answer.Reasoning(id=item_id, summary=summary, encrypted_content=data)


def web_search_call(
    item_id: str, query: str, status: str = "completed"
) -> answer.WebSearchCall:
    """A web search LM Bridge ran, as an output item."""
    return answer.WebSearchCall(item_id, status, answer.WebSearchAction(query))


def output_items(
    parts: list[ir.Text | ir.ToolCall | ir.Thinking | ir.WebSearch],
    tools: ClientTools | None = None,
) -> list[answer.OutputItem]:
    """IR response parts as Responses output items, in order; with the
    request's `tools`, calls go back in the shape the client declared."""
    tools = tools or ClientTools(())
    items: list[answer.OutputItem] = []
    for part in parts:
        match part:
            case ir.Text():
                if part.text:
                    content: list[wire.OutputText | wire.Refusal] = [
                        wire.OutputText(part.text)
                    ]
                    items.append(
                        answer.OutputMessage(new_id("msg"), "completed", content)
                    )
            case ir.ToolCall():
                item_id = new_id("ctc" if tools.is_custom(part.name) else "fc")
                items.append(
                    tools.output_item(
                        item_id, part.id, part.name, part.arguments or "{}", "completed"
                    )
                )
            case ir.Thinking():
                data = part.data if is_openai_reasoning(part) else None
                if part.text or data:
                    items.append(reasoning_item(new_id("rs"), part.text, data))
            case ir.WebSearch():
                status = "failed" if part.error is not None else "completed"
                items.append(web_search_call(part.call_id, part.query, status))
    return items


def encode_response(response: ir.Response, request: ir.Request | None = None) -> bytes:
    """A whole (non-streaming) answer to `request` as a Response object."""
    status, incomplete = status_for(response.stop_reason)
    created = now()
    body = answer.ResponseObject(
        id=response_id_for(response.id),
        created_at=created,
        model=response.model,
        status=status,
        output=output_items(
            response.parts, ClientTools(request.tools) if request else None
        ),
        incomplete_details=incomplete,
        usage=usage_wire(response.usage),
        completed_at=created if status == "completed" else None,
    )
    return msgspec.json.encode(body)


def parse_error(status: int, body: bytes) -> errors.LMBridgeError:
    """An upstream's error answer as our error, keeping its message and code."""
    detail = UpstreamErrorDetail()
    top_message: str | None = None
    try:
        decoded = _ERROR_BODY.decode(body)
    except DECODE_ERRORS:
        decoded = None
    if decoded is not None:
        top_message = decoded.message
        if isinstance(decoded.error, str):
            top_message = decoded.error
        elif decoded.error is not None:
            detail = decoded.error
    message = detail.message or top_message
    if not message:
        text = body.decode("utf-8", "replace").strip()[:_BODY_LIMIT]
        message = text or f"the upstream answered HTTP {status} with no details"
    code = None if detail.code is None else str(detail.code)

    if code == "previous_response_not_found" or (
        _PREVIOUS_RESPONSE.search(message) and _MISSING.search(message)
    ):
        return errors.NotFound(
            message, param="previous_response_id", code="previous_response_not_found"
        )
    too_long = overflow.error(message, status=status, code=code, body=body)
    if too_long is not None:
        too_long.param = detail.param
        return too_long
    error = errors.from_status(status, message)
    error.param = detail.param
    error.code = code
    return error
