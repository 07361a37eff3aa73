"""Answer-token limits learnt from upstreams that refuse a large `max_tokens`.

Claude Code asks for `max_tokens` of 32000 to 128000. Servers that check it
(vLLM, OpenAI, Azure, Anthropic) refuse such a request with a 400 even when
the prompt is small. Rather than pass that refusal on (which a client may
read as "prompt is too long" and compact for nothing), the pipeline sends
the request once more with `max_tokens` lowered to what the refusal allows:

- a model's own output cap ("supports at most 16384 completion tokens",
  Anthropic's "max_tokens: 128000 > 64000, which is the maximum ...") is
  remembered per (upstream, model), so later requests are lowered before
  they are sent;
- "prompt plus max_tokens exceeds the context" with a prompt that fits
  (a `ContextOverflow` whose counts say so) is lowered to what the context
  leaves; the context window is remembered, so later requests are lowered
  to what it leaves their (estimated) prompt before they are sent.

Each lowering is noted on the request's record.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

from lmbridge.core import errors


def clamp(value: int | None, limit: int | None) -> int | None:
    """`value` lowered to `limit`; `limit` itself when nothing was asked."""
    if limit is None or value is None:
        return value if limit is None else (value or limit)
    return min(value, limit)


# Wordings that state a model's maximum number of answer tokens.
_CAP_WORDINGS = (
    # OpenAI, Azure OpenAI: "max_tokens is too large: 128000. This model
    # supports at most 16384 completion tokens, whereas you provided 128000."
    re.compile(r"supports at most (\d+) completion tokens"),
    # Anthropic: "max_tokens: 128000 > 64000, which is the maximum allowed
    # number of output tokens for claude-..."
    re.compile(r"max_tokens: \d+ > (\d+), which is the maximum"),
    # Generic validators: "max_tokens must be less than or equal to 8192".
    re.compile(
        r"max_(?:completion_|output_)?tokens\W+(?:must|should) be"
        r" (?:less than or equal to|at most|<=) (\d+)"
    ),
)
# A little room under the context's edge: token counts of a re-sent
# request can differ by a few tokens (the server's own special tokens).
_MARGIN = 16


def model_cap(message: str) -> int | None:
    """The answer-token cap an upstream's refusal states, if it states one."""
    for pattern in _CAP_WORDINGS:
        found = pattern.search(message)
        if found:
            return int(found.group(1))
    return None


class Lowering(NamedTuple):
    """What a refusal allows: the `max_tokens` to retry with, and what to
    remember for later requests (a model's cap, or its context window)."""

    max_tokens: int
    cap: int | None = None
    window: int | None = None


def lowered(err: errors.LMBridgeError, sent: int | None) -> Lowering | None:
    """What to retry with after `err`; None when `err` is about something else."""
    if sent is None or err.status not in (400, 413, 422):
        return None
    body = err.upstream_body.decode("utf-8", "replace") if err.upstream_body else ""
    cap = model_cap(err.message) or model_cap(body)
    if cap is not None and 0 < cap < sent:
        return Lowering(cap, cap=cap)
    if isinstance(err, errors.ContextOverflow):
        prompt, window = err.prompt_tokens, err.context_window
        if prompt is not None and window is not None and prompt < window:
            room = window - prompt - _MARGIN
            if 0 < room < sent:
                return Lowering(room, window=window)
    return None


class MaxTokensMemory:
    """What upstreams said about answer tokens, per (upstream, model), for
    this run: a model's cap, and the context window."""

    def __init__(self) -> None:
        self._caps: dict[tuple[str, str], int] = {}
        self._windows: dict[tuple[str, str], int] = {}

    def limit(
        self, upstream: str, model: str, prompt_tokens: Callable[[], int]
    ) -> int | None:
        """The largest `max_tokens` worth sending for a prompt of about
        `prompt_tokens()` tokens (estimated only where a window is known; a
        tenth of the window is kept spare for the estimate's error)."""
        key = (upstream, model)
        cap = self._caps.get(key)
        window = self._windows.get(key)
        if window is not None:
            room = window - prompt_tokens() - window // 10
            if room > 0:
                cap = room if cap is None else min(cap, room)
        return cap

    def window(self, upstream: str, model: str) -> int | None:
        """The context window `upstream` stated for `model` (None: never)."""
        return self._windows.get((upstream, model))

    def learn(self, upstream: str, model: str, lowering: Lowering) -> None:
        if lowering.cap is not None:
            self._caps[(upstream, model)] = lowering.cap
        if lowering.window is not None:
            self._windows[(upstream, model)] = lowering.window
