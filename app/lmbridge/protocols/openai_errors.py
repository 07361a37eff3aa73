"""OpenAI's error shape, shared by Chat Completions and Responses.

`{"error": {"message", "type", "param", "code"}}`: the one renderer for
both OpenAI front doors (Chat streams put it in a `data:` frame).
"""

from __future__ import annotations

import msgspec

from lmbridge.core import errors

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


class ErrorDetail(msgspec.Struct):
    """The OpenAI error object."""

    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(msgspec.Struct):
    """`{"error": {...}}`, the OpenAI error answer."""

    error: ErrorDetail


_ENCODE = msgspec.json.Encoder().encode


def error_type(status: int) -> str:
    """OpenAI's error `type` for an HTTP status."""
    known = _TYPES.get(status)
    if known is not None:
        return known
    return "server_error" if status >= 500 else "invalid_request_error"


def encode_error(error: errors.LMBridgeError) -> bytes:
    """`error` as OpenAI's error body."""
    code = error.code
    if code is None:
        if error.kind is errors.ErrorKind.RATE_LIMIT:
            code = "rate_limit_exceeded"
        elif error.kind is errors.ErrorKind.CONTEXT_OVERFLOW:
            code = "context_length_exceeded"
    detail = ErrorDetail(error.message, error_type(error.status), error.param, code)
    return _ENCODE(ErrorBody(detail))
