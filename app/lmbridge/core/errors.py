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
    ├── Timeout                  504  the upstream went silent too long
    └── LocalError               500  a problem on this machine, not in a request
        ├── ConfigError               the configuration cannot be used
        ├── PortInUse                 the proxy's port is taken
        ├── AutostartError            start-at-login could not be changed
        ├── IntegrationError          a client tool's config could not be written
        ├── LaunchError               `lmbridge launch` cannot start its client
        └── StorageUnavailable   503  our database is locked, damaged, read-only or full

`DECODE_ERRORS` is what msgspec (and the codecs beneath it) raise for bytes
that are not the JSON or TOML expected: catch it, never a longer list.
"""

from __future__ import annotations

import enum
from typing import Any

import msgspec

DECODE_ERRORS: tuple[type[Exception], ...] = (
    msgspec.DecodeError,  # ValidationError is a subclass
    UnicodeError,  # invalid UTF-8
    RecursionError,  # nesting deeper than the decoder's stack
)
"""Everything decoding untrusted bytes with msgspec may raise."""


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

    Every overflow is worded `prompt is too long: N tokens > M maximum`, so
    Claude Code offers to compact and reads how much (both numbers, N > M
    always). The one exception is a prompt that fits where prompt plus
    `max_tokens` does not: that gets Anthropic's own wording for it, which
    Claude Code answers by lowering `max_tokens`. `overflow_wording` is the
    one place either is worded. The counts the message states are kept on
    the error.
    """

    kind = ErrorKind.CONTEXT_OVERFLOW
    prompt_tokens: int | None = None
    context_window: int | None = None
    max_tokens: int | None = None

    def __init__(self, message: str, **kw: Any) -> None:
        kw.setdefault("code", "context_length_exceeded")
        super().__init__(message, **kw)

    @classmethod
    def for_prompt(
        cls, prompt_tokens: int, limit: int, model: str, fix: str = "", reserve: int = 0
    ) -> ContextOverflow:
        """LM Bridge's own refusal: `prompt_tokens` do not fit `limit`.

        `reserve` is what is kept free for the answer; the stated maximum
        is what is left for the prompt.
        """
        maximum = limit - reserve
        message = overflow_wording(prompt_tokens, maximum, None) + f" for model {model}"
        if reserve:
            message += f" (a context of {limit}, {reserve} kept for the answer)"
        error = cls(f"{message} — {fix}" if fix else message)
        error.prompt_tokens, error.context_window = prompt_tokens, limit
        return error

    @classmethod
    def from_upstream(
        cls,
        message: str,
        *,
        prompt_tokens: int | None = None,
        context_window: int | None = None,
        max_tokens: int | None = None,
        status: int | None = None,
    ) -> ContextOverflow:
        """Restate an upstream's overflow message in Anthropic's words.

        The counts come from `protocols.overflow`, which reads each known
        upstream wording and fills in what LM Bridge knows where the
        upstream's words carry no numbers; this only words them.
        """
        head = overflow_wording(prompt_tokens, context_window, max_tokens)
        if message.startswith(head) or not message:
            text = message or head
        else:
            text = f"{head} ({message})"
        error = cls(text, status=status)
        error.prompt_tokens = prompt_tokens
        error.context_window = context_window
        error.max_tokens = max_tokens
        return error


PROMPT_TOO_LONG = "prompt is too long"
"""How every overflow begins; Claude Code reads
`prompt is too long: N tokens > M maximum` (see `overflow_wording`)."""

OVERFLOW_UNCOUNTED = f"{PROMPT_TOO_LONG} for the model's context window"
"""The words of an overflow when nothing at all is known of its counts (a
codec used without the proxy; the proxy always knows its own count)."""


def overflow_wording(
    prompt_tokens: int | None, context_window: int | None, max_tokens: int | None
) -> str:
    """The first words of an overflow message: `N tokens > M maximum`.

    N > M always holds. Where only one count is known the other is the
    truest bound it gives: a window of M refused a prompt of at least
    M + 1; a prompt of N that did not fit means at most N - 1 fit. A prompt
    that fits where prompt plus `max_tokens` does not is said in Anthropic's
    words for that (`P + C > M`), which clients answer by asking for fewer
    answer tokens rather than compacting.
    """
    prompt, window = prompt_tokens, context_window
    if prompt is not None and window is not None:
        if prompt <= window and max_tokens is not None and prompt + max_tokens > window:
            return (
                "input length and `max_tokens` exceed context limit:"
                f" {prompt} + {max_tokens} > {window}, decrease input length"
                " or `max_tokens` and try again"
            )
        prompt = max(prompt, window + 1)
    elif window is not None:
        prompt = window + 1
    elif prompt is not None:
        window = prompt - 1
    else:
        return OVERFLOW_UNCOUNTED
    return f"{PROMPT_TOO_LONG}: {prompt} tokens > {window} maximum"


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


class LocalError(LMBridgeError):
    """A problem on this machine (config, port, files), not in a request.

    The message is a sentence for the user that names the fix.
    """

    kind = ErrorKind.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)


class ConfigError(LocalError):
    """The configuration cannot be used; the message names the key and file."""


class PortInUse(LocalError):
    """The configured port is taken; the message says what to do."""


class AutostartError(LocalError):
    """Start at login could not be turned on or off; the message says why."""


class IntegrationError(LocalError):
    """A client tool's config could not be read or written safely."""


class LaunchError(LocalError):
    """`lmbridge launch` cannot start its client: no LM Bridge, the model
    is not available, the client is not installed (one line, with the fix)."""


class StorageUnavailable(LocalError):
    """LM Bridge's own database cannot be used now (locked by another
    program, damaged, read-only or on a full disk); the message names the
    file and the fix. Model calls never fail with it: only the APIs whose
    answer is stored state (`/store`) do."""

    status = 503


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
