"""IR -> Gemini answers: whole `GenerateContentResponse`s, usage, finish
reasons, errors in Google's shape, token counts and model lists.

Usage: `promptTokenCount` is every prompt token, `cachedContentTokenCount`
the part the upstream served from its cache (only when it said),
`thoughtsTokenCount` the reasoning tokens and `candidatesTokenCount` the
rest of the answer (OpenAI counts reasoning inside the output; Gemini
apart), so `totalTokenCount` is prompt plus answer.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from typing import Any

import msgspec

from lmbridge.core import errors, ir
from lmbridge.protocols.base import ListedModel
from lmbridge.protocols.jsonutil import parse_json_object

_encode = msgspec.json.Encoder()

FINISH_REASONS = {
    ir.StopReason.END_TURN: "STOP",
    ir.StopReason.STOP_SEQUENCE: "STOP",
    ir.StopReason.TOOL_USE: "STOP",
    ir.StopReason.PAUSE: "STOP",
    ir.StopReason.MAX_TOKENS: "MAX_TOKENS",
    ir.StopReason.REFUSAL: "SAFETY",
}
"""Gemini's `finishReason` for each IR stop reason (a call is a STOP)."""

# google.rpc.Code names by HTTP status, as Google's APIs answer them.
_STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    413: "INVALID_ARGUMENT",
    415: "INVALID_ARGUMENT",
    422: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
    529: "UNAVAILABLE",
}
# LM Bridge's overflow wording (core/errors.overflow_wording).
_OVERFLOW = re.compile(r"prompt is too long: (\d+) tokens > (\d+) maximum")


def response_id() -> str:
    """A fresh `responseId`."""
    return secrets.token_urlsafe(16)


def usage_metadata(usage: ir.Usage) -> dict[str, Any]:
    """`usageMetadata` for an answer's usage."""
    thoughts = min(usage.reasoning_tokens, usage.output_tokens)
    out: dict[str, Any] = {
        "promptTokenCount": usage.input_tokens,
        "candidatesTokenCount": usage.output_tokens - thoughts,
        "totalTokenCount": usage.input_tokens + usage.output_tokens,
    }
    if thoughts:
        out["thoughtsTokenCount"] = thoughts
    if usage.cached_tokens is not None:
        out["cachedContentTokenCount"] = usage.cached_tokens
    return out


def call_part(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    """A `functionCall` part; arguments that are no JSON object give `{}`
    rather than a part the client cannot read."""
    args = parse_json_object(arguments) or {}
    return {"functionCall": {"id": call_id, "name": name, "args": args}}


def encode_response(response: ir.Response, model: str, show_thoughts: bool) -> bytes:
    """A whole answer as a `GenerateContentResponse`."""
    parts: list[dict[str, Any]] = []
    for part in response.parts:
        if isinstance(part, ir.Text) and part.text:
            parts.append({"text": part.text})
        elif isinstance(part, ir.Thinking) and part.text and show_thoughts:
            parts.append({"text": part.text, "thought": True})
        elif isinstance(part, ir.ToolCall) and part.name:
            parts.append(call_part(part.id, part.name, part.arguments))
    candidate: dict[str, Any] = {
        "content": {"role": "model", "parts": parts},
        "finishReason": FINISH_REASONS[response.stop_reason],
        "index": 0,
    }
    body = {
        "candidates": [candidate],
        "usageMetadata": usage_metadata(response.usage),
        "modelVersion": model,
        "responseId": response_id(),
    }
    return _encode.encode(body)


def error_status(error: errors.LMBridgeError) -> int:
    """The HTTP status the error is answered with (an upstream's 500 is a
    502 here, as server/pipeline.answer_status says)."""
    if isinstance(error, errors.UpstreamError) and error.status == 500:
        return 502
    return error.status


def overflow_message(error: errors.LMBridgeError) -> str | None:
    """An overflow in the words Gemini answers it with, N > M; None when
    `error` is no overflow or its counts are not known."""
    if error.kind is not errors.ErrorKind.CONTEXT_OVERFLOW:
        return None
    prompt = getattr(error, "prompt_tokens", None)
    window = getattr(error, "context_window", None)
    found = _OVERFLOW.search(error.message)
    if found is not None:
        prompt, window = int(found[1]), int(found[2])
    if window is not None:
        prompt = max(prompt or 0, window + 1)
    elif prompt is not None:
        window = prompt - 1
    else:
        return None
    return (
        f"The input token count ({prompt}) exceeds the maximum number of tokens"
        f" allowed ({window})."
    )


def error_body(error: errors.LMBridgeError) -> dict[str, Any]:
    """`{"error": {"code", "message", "status"}}`, Google's error shape."""
    status = error_status(error)
    message = error.message
    overflow = overflow_message(error)
    if overflow is not None:
        message = f"{overflow} ({message})" if overflow not in message else message
    name = _STATUSES.get(status) or ("INTERNAL" if status >= 500 else "UNKNOWN")
    return {"error": {"code": status, "message": message, "status": name}}


def encode_error(error: errors.LMBridgeError) -> bytes:
    """An error answer body in Google's shape."""
    return _encode.encode(error_body(error))


def model_entry(model: ListedModel) -> dict[str, Any]:
    """A `Model` resource for one model LM Bridge serves."""
    return {
        "name": f"models/{model.id}",
        "baseModelId": model.id,
        "version": "lmbridge",
        "displayName": model.id,
        "description": f"{model.id}, served by {model.owner} through LM Bridge",
        "supportedGenerationMethods": [
            "generateContent",
            "streamGenerateContent",
            "countTokens",
        ],
    }


def encode_models(models: Sequence[ListedModel]) -> bytes:
    """`models.list`: every model on one page."""
    return _encode.encode({"models": [model_entry(m) for m in models]})


def encode_model(model: ListedModel) -> bytes:
    """`models.get`."""
    return _encode.encode(model_entry(model))


def encode_count(total: int) -> bytes:
    """`countTokens`' answer."""
    return _encode.encode({"totalTokens": total})
