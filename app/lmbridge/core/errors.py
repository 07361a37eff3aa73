"""The one exception tree of LM Bridge.

Every error the proxy can answer with is an `LMBridgeError`. Each carries
its HTTP status and its `ErrorKind`; each inbound protocol renders it in its
own wire shape. Third-party exceptions are converted at the boundary of the
subsystem that meets them (one place per subsystem), never deeper.

    LMBridgeError
    ├── InvalidRequest           400  the client sent something we cannot use
    │   └── ContextOverflow      400  prompt + max_tokens exceed the context
    ├── AuthenticationFailed     401  missing/bad key or token
    ├── PermissionDenied         403  refused by policy (origin, role, ...)
    ├── NotFound                 404  unknown model, response id, chat, ...
    ├── Conflict                 409  the thing already exists
    ├── PayloadTooLarge          413  body over the configured cap
    ├── RateLimited              429  upstream asked us to slow down
    ├── UpstreamError            502  the upstream answered with a failure
    ├── UpstreamUnavailable      503  the upstream cannot be reached / loaded
    ├── Overloaded               529  the upstream is overloaded
    └── Timeout                  504  the upstream went silent too long
"""

from __future__ import annotations

import enum
import re
from typing import Any


class ErrorKind(enum.StrEnum):
    INVALID_REQUEST = "invalid_request"
    CONTEXT_OVERFLOW = "context_overflow"
    AUTHENTICATION = "authentication"
    PERMISSION = "permission"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    RATE_LIMIT = "rate_limit"
    UPSTREAM_ERROR = "upstream_error"
    UPSTREAM_UNAVAILABLE = "upstream_unavailable"
    OVERLOADED = "overloaded"
    TIMEOUT = "timeout"
    INTERNAL = "internal"


class LMBridgeError(Exception):
    """Base of every error the proxy answers with."""

    status: int = 500
    kind: ErrorKind = ErrorKind.INTERNAL

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.retry_after = retry_after
        # The upstream's own error body, relayed verbatim on pass-through.
        self.upstream_body: bytes | None = None
        if status is not None:
            self.status = status


class InvalidRequest(LMBridgeError):
    status = 400
    kind = ErrorKind.INVALID_REQUEST


class ContextOverflow(InvalidRequest):
    """The prompt does not fit the model's context.

    Messages start `prompt is too long:` so Claude Code offers to compact.
    """

    kind = ErrorKind.CONTEXT_OVERFLOW

    def __init__(self, message: str, **kw: Any) -> None:
        kw.setdefault("code", "context_length_exceeded")
        super().__init__(message, **kw)

    @classmethod
    def for_prompt(
        cls, prompt_tokens: int, limit: int, model: str, fix: str = ""
    ) -> ContextOverflow:
        message = (
            f"prompt is too long: {prompt_tokens} tokens > {limit} maximum"
            f" for model {model}"
        )
        return cls(f"{message} — {fix}" if fix else message)

    @classmethod
    def from_upstream(cls, message: str) -> ContextOverflow:
        """Restate an upstream's overflow message in Anthropic's words.

        Upstreams say it their own way ("maximum context length is 4096
        tokens, however you requested 9000", "Trying to keep the first 5000
        tokens ... context length of 4096"); Claude Code reads the counts
        from `prompt is too long: N tokens > M maximum`.
        """
        if message.startswith("prompt is too long:"):
            return cls(message)
        numbers = sorted({int(n) for n in re.findall(r"\d{3,}", message)})
        if len(numbers) >= 2:
            return cls(
                f"prompt is too long: {numbers[-1]} tokens > {numbers[0]} maximum"
                f" ({message})"
            )
        return cls(f"prompt is too long: {message}")


class AuthenticationFailed(LMBridgeError):
    status = 401
    kind = ErrorKind.AUTHENTICATION


class PermissionDenied(LMBridgeError):
    status = 403
    kind = ErrorKind.PERMISSION


class NotFound(LMBridgeError):
    status = 404
    kind = ErrorKind.NOT_FOUND


class Conflict(LMBridgeError):
    status = 409
    kind = ErrorKind.CONFLICT


class PayloadTooLarge(LMBridgeError):
    status = 413
    kind = ErrorKind.PAYLOAD_TOO_LARGE


class RateLimited(LMBridgeError):
    status = 429
    kind = ErrorKind.RATE_LIMIT


class UpstreamError(LMBridgeError):
    status = 502
    kind = ErrorKind.UPSTREAM_ERROR


class UpstreamUnavailable(LMBridgeError):
    status = 503
    kind = ErrorKind.UPSTREAM_UNAVAILABLE


class Overloaded(LMBridgeError):
    status = 529
    kind = ErrorKind.OVERLOADED


class Timeout(LMBridgeError):
    status = 504
    kind = ErrorKind.TIMEOUT


_BY_STATUS: dict[int, type[LMBridgeError]] = {
    400: InvalidRequest,
    401: AuthenticationFailed,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: InvalidRequest,
    429: RateLimited,
    503: UpstreamUnavailable,
    504: Timeout,
    529: Overloaded,
}


def from_status(status: int, message: str) -> LMBridgeError:
    """The error class for an upstream HTTP status, keeping that status."""
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = InvalidRequest if 400 <= status < 500 else UpstreamError
    return cls(message, status=status)


_BY_KIND: dict[str, type[LMBridgeError]] = {
    cls.kind: cls
    for cls in (
        InvalidRequest,
        ContextOverflow,
        AuthenticationFailed,
        PermissionDenied,
        NotFound,
        Conflict,
        PayloadTooLarge,
        RateLimited,
        UpstreamError,
        UpstreamUnavailable,
        Overloaded,
        Timeout,
    )
}


def from_kind(kind: str, message: str, status: int | None = None) -> LMBridgeError:
    """Rebuild an error from its kind (used for stream error events)."""
    return _BY_KIND.get(kind, UpstreamError)(message, status=status)
