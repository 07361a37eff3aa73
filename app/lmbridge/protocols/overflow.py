"""Whether an upstream error says the prompt did not fit, and its counts.

`read()` matches an error message (and the fields some servers put beside
it) against the table of every overflow wording we know
(`overflow_wordings.WORDINGS`, where each wording says what its numbers
mean: the prompt N, the model's context window M, the request's
`max_tokens` C, or a total N + C); `error()` turns a match into the
`ContextOverflow` the client sees, worded by `errors.overflow_wording`:
`prompt is too long: N tokens > M maximum`, N > M, for every overflow.
Output-limit answers are read too, and left to the caller.

Where the upstream's words carry no counts (or only some), the numbers come
from what LM Bridge knows of the request: `KNOWN`, which the pipeline sets
for the request it sends (a context variable, so the decoders deep in an
upstream call need no extra argument and stay pure): the model's window
(LM Studio's loaded context, the route's `context_window`, a window the
server stated before) and LM Bridge's own count of the prompt. Ollama's
"exceeded ... by X tokens" gives N = M + X.
"""

from __future__ import annotations

import contextvars
import enum
import re
from collections.abc import Callable
from typing import TypeAlias

import msgspec

from lmbridge.core import errors
from lmbridge.core.errors import DECODE_ERRORS
from lmbridge.protocols.overflow_wordings import (
    NOT_OVERFLOW,
    OVERFLOW_CODES,
    OVERFLOW_STATUSES,
    WORDINGS,
    Wording,
)

Known: TypeAlias = tuple[int | Callable[[], int | None] | None, Callable[[], int]]
"""What LM Bridge knows of the request under way: the model's context
window (None: not known; or a function that finds it, asked only when an
overflow needs it), and its own count of the prompt's tokens (counted on
demand). A plain tuple: it is built for every request."""


KNOWN: contextvars.ContextVar[Known | None] = contextvars.ContextVar(
    "lmbridge_overflow_known", default=None
)
"""Set by the pipeline around each upstream call (`known_for`)."""


def known_for(
    window: int | Callable[[], int | None] | None, count: Callable[[], int]
) -> None:
    """Tell overflow wording what LM Bridge knows of the request now sent.

    The value lives in the current task's context: the upstream call, its
    decoders and the tasks they start see it; other requests do not.
    """
    KNOWN.set((window, count))


class Cause(enum.StrEnum):
    """What did not fit, as far as the upstream's words tell."""

    PROMPT = "prompt"  # the prompt alone is larger than the window
    ANSWER = "answer"  # the prompt fits; the prompt plus max_tokens does not
    UNSTATED = "unstated"  # an overflow, without counts that decide which
    OUTPUT_LIMIT = "output_limit"  # max_tokens above the model's output cap


class Overflow(msgspec.Struct, frozen=True, kw_only=True):
    """One upstream overflow: which wording, and the counts it stated."""

    wording: str
    prompt_tokens: int | None = None
    context_window: int | None = None
    max_tokens: int | None = None
    prompt_at_least: bool = False  # prompt_tokens is a lower bound
    excess_tokens: int | None = None
    output_limit: int | None = None

    @property
    def cause(self) -> Cause:
        if self.output_limit is not None:
            return Cause.OUTPUT_LIMIT
        prompt, window = self.prompt_tokens, self.context_window
        if prompt is None or window is None:
            return Cause.UNSTATED
        if prompt > window:
            return Cause.PROMPT
        if self.max_tokens is not None and prompt + self.max_tokens > window:
            return Cause.ANSWER
        return Cause.UNSTATED


def _count(text: str | None) -> int | None:
    return int(text.replace(",", "")) if text else None


class _Fields(msgspec.Struct):
    message: str | None = None
    type: str | None = None
    code: str | int | None = None
    n_prompt_tokens: int | None = None  # llama.cpp server
    n_ctx: int | None = None


class _Body(msgspec.Struct):
    error: _Fields | str | None = None
    message: str | None = None
    type: str | None = None
    code: str | int | None = None


_body = msgspec.json.Decoder(_Body)


def _fields(body: bytes | None) -> _Fields:
    """The error fields of an error body or stream event (empty if none)."""
    if not body:
        return _Fields()
    try:
        decoded = _body.decode(body)
    except DECODE_ERRORS:
        return _Fields()
    if isinstance(decoded.error, _Fields):
        return decoded.error
    return _Fields(
        message=decoded.error if isinstance(decoded.error, str) else decoded.message,
        type=decoded.type,
        code=decoded.code,
    )


def read(
    message: str,
    *,
    status: int | None = None,
    code: str | int | None = None,
    body: bytes | None = None,
    max_tokens: int | None = None,
) -> Overflow | None:
    """The overflow `message` reports, or None when it is not one.

    `status` is the HTTP status (None for an error inside a stream);
    `body` the raw error body or stream event, for the fields servers put
    beside the message; `max_tokens` the request's, when the caller knows
    it, to split a stated total into prompt and answer.
    """
    if status is not None and status not in OVERFLOW_STATUSES:
        return None
    fields = _fields(body)
    codes = {str(c).lower() for c in (code, fields.code, fields.type) if c}
    coded = bool(codes & OVERFLOW_CODES)
    if not coded and NOT_OVERFLOW.search(message):
        return None
    for wording in WORDINGS:
        match = wording.pattern.search(message)
        if match is not None:
            found = _counts(wording, match, max_tokens)
            break
    else:
        if not coded:
            return None
        found = Overflow(wording=next(iter(codes & OVERFLOW_CODES)))
    if fields.n_prompt_tokens and fields.n_ctx and found.prompt_tokens is None:
        found = msgspec.structs.replace(
            found, prompt_tokens=fields.n_prompt_tokens, context_window=fields.n_ctx
        )
    return found


def _counts(wording: Wording, match: re.Match[str], max_tokens: int | None) -> Overflow:
    got: dict[str, str | None] = dict(zip(wording.roles, match.groups(), strict=False))
    total = _count(got.get("total"))
    prompt = _count(got.get("prompt"))
    asked = _count(got.get("max_tokens"))
    if asked is None and "max_tokens" in got:
        asked = max_tokens  # llama-cpp-python's "None in the completion"
    if prompt is None and total is not None and max_tokens is not None:
        prompt, asked = total - max_tokens, max_tokens
    return Overflow(
        wording=wording.name,
        prompt_tokens=prompt,
        context_window=_count(got.get("window")),
        max_tokens=asked if asked is not None else max_tokens,
        prompt_at_least=bool(got.get("prompt+")),
        excess_tokens=_count(got.get("excess")),
        output_limit=_count(got.get("output_limit")),
    )


def error(
    message: str,
    *,
    status: int | None = None,
    code: str | int | None = None,
    body: bytes | None = None,
    max_tokens: int | None = None,
) -> errors.ContextOverflow | None:
    """The client-facing `ContextOverflow` for an upstream error, if it is one.

    None when the message is no overflow, or is an output-limit answer
    (which compaction cannot fix: the caller keeps it a plain 400).
    """
    found = read(message, status=status, code=code, body=body, max_tokens=max_tokens)
    if found is None or found.cause is Cause.OUTPUT_LIMIT:
        return None
    return to_error(found, message)


def to_error(
    found: Overflow, message: str, known: Known | None = None
) -> errors.ContextOverflow:
    """`found` as the error the client sees, the upstream's words kept.

    Counts the upstream did not state come from `known` (default: `KNOWN`).
    """
    prompt = found.prompt_tokens
    window = found.context_window
    if (
        found.prompt_at_least
        and prompt is not None
        and prompt <= (window or 0)
        and found.max_tokens is not None
    ):
        # vLLM stopped counting at the input budget: the prompt is at
        # least that, maybe far more, so no prompt count is stated.
        prompt = None
    prompt, window = _filled_in(found, prompt, window, known or KNOWN.get())
    # Always 400, whatever the upstream used: clients key on it (Claude
    # Code reads the counts of a 400 only).
    return errors.ContextOverflow.from_upstream(
        message,
        prompt_tokens=prompt,
        context_window=window,
        max_tokens=found.max_tokens,
        status=400,
    )


def _filled_in(
    found: Overflow, prompt: int | None, window: int | None, known: Known | None
) -> tuple[int | None, int | None]:
    """The prompt and window, with what the upstream left out filled in."""
    if known is None or (prompt is not None and window is not None):
        return prompt, window
    known_window, prompt_count = known
    if callable(known_window):
        known_window = known_window()
    window = window or known_window
    excess = found.excess_tokens
    if prompt is None and excess is not None and window is not None:
        return window + excess, window
    if prompt is None:
        prompt = prompt_count()
        if excess is not None and window is None and prompt > excess:
            return prompt, prompt - excess
    return prompt, window


def stream_error(
    message: str, *, code: str | int | None = None, body: bytes | None = None
) -> tuple[str, int] | None:
    """The (message, status) of a mid-stream overflow, None if it is none."""
    found = error(message, code=code, body=body)
    return None if found is None else (found.message, found.status)


CLAUDE_CODE_PATTERN = re.compile(
    r"prompt is too long[^0-9]*(\d+)\s*tokens?\s*>\s*(\d+)"
)
"""How Claude Code reads N and M out of an overflow message (to compact)."""
