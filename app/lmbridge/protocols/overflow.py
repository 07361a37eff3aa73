"""Whether an upstream error says the prompt did not fit, and its counts.

One table of every overflow wording we know, each with what its numbers
mean: the prompt (N), the model's context window (M), the `max_tokens` of
the request (C), or a total N + C. `read()` matches an error message (and
the fields some servers put beside it) against the table; `error()` turns
a match into the `ContextOverflow` the client sees, worded by
`errors.overflow_wording` so that `N tokens > M maximum` is only said when
N is the prompt, M the window and N > M.

Wordings, from the servers' sources where we could read them:

- llama.cpp server (tools/server/server-context.cpp): "the request exceeds
  the available context size, try increasing it" (older: "... try
  increasing the context size or enable context shift"; newer: "request
  (N tokens) exceeds the available context size (M tokens), ..."), type
  `exceed_context_size_error` with `n_prompt_tokens` and `n_ctx` in the
  error object; older "input (N tokens) is larger than the max context
  size (M tokens)"; mid-generation "Context size has been exceeded." (500).
- llama-cpp-python (llama_cpp/llama.py, server/errors.py): "Requested
  tokens (N) exceed context window of M", restated by its server in
  OpenAI's words with "N in the messages, C in the completion" (C may be
  "None"), or "N in your prompt; C for the completion" on /v1/completions.
- vLLM (entrypoints serving_engine.py, renderers/params.py): "This model's
  maximum context length is M tokens. However, you requested N+C tokens (N
  in the messages, C in the completion)"; "However, your request has N
  input tokens"; "'max_tokens' or 'max_completion_tokens' is too large: C.
  ... your request has N input tokens (C > M - N)"; "However, you requested
  C output tokens and your prompt contains [at least] N input tokens";
  "... contains X characters (more than ...)"; "The decoder prompt (length
  N) is longer than the maximum model length of M"; "The prompt (total
  length N) is too long to fit into the model (context length M)".
- OpenAI and Azure OpenAI: code `context_length_exceeded`; "This model's
  maximum context length is M tokens. However, your messages resulted in N
  tokens" (with "(... in the functions)" when tools count), the Responses
  API's "Your input exceeds the context window of this model".
- Anthropic: "prompt is too long: N tokens > M maximum"; "input length and
  `max_tokens` exceed context limit: N + C > M".
- LM Studio (every API; its llama.cpp and MLX engines): "The number of
  tokens to keep from the initial prompt is greater than the context
  length (n_keep: N >= n_ctx: M)", "Trying to keep the first N tokens when
  context the overflows. However, the model is loaded with context length
  of only M tokens", "Context size has been exceeded", "context length
  exceeded".
- Ollama (server/prompt.go, runner): "prompt too long; exceeded max context
  length by X tokens", "the input length exceeds the context length".

Output-limit answers ("max_tokens is too large: C. This model supports at
most L completion tokens", Anthropic's "max_tokens: C > L, which is the
maximum allowed number of output tokens") are recognised too, as what they
are: not an overflow, so `error()` leaves them to the caller.
"""

from __future__ import annotations

import enum
import re

import msgspec

from lmbridge.core import errors
from lmbridge.core.errors import DECODE_ERRORS

# A count as servers print it, thousands separators allowed ("1,048,576").
_N = r"(\d[\d,]*)"
_MAX_CONTEXT = r"maximum context length (?:is|for this model is) #(?: tokens)?"


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


# What a pattern's groups may be: "total" is prompt + max_tokens, "prompt+"
# marks the prompt count that follows as a lower bound.
_ROLES = frozenset(
    {"prompt", "prompt+", "window", "max_tokens", "total", "excess", "output_limit"}
)


class _Wording(msgspec.Struct, frozen=True):
    name: str
    pattern: re.Pattern[str]
    roles: tuple[str, ...] = ()


def _w(name: str, pattern: str, roles: str = "") -> _Wording:
    """A wording: `roles` names its pattern's groups in order."""
    names = tuple(roles.split())
    assert set(names) <= _ROLES, names
    pattern = pattern.replace("MAXCTX", _MAX_CONTEXT).replace("#", _N)
    return _Wording(name, re.compile(pattern, re.IGNORECASE | re.DOTALL), names)


# Most specific first: the first match wins. In a pattern `#` is a count
# and `MAXCTX` "maximum context length is # tokens".
WORDINGS: tuple[_Wording, ...] = (
    # Output caps first: their texts mention the context too.
    _w(
        "openai-output-limit",
        r"max_tokens is too large: #\. This model supports at most # completion",
        "max_tokens output_limit",
    ),
    _w(
        "anthropic-output-limit",
        r"max_tokens: # > #, which is the maximum allowed number of output tokens",
        "max_tokens output_limit",
    ),
    _w(
        "anthropic-prompt", r"prompt is too long: # tokens > # maximum", "prompt window"
    ),
    _w(
        "anthropic-max-tokens",
        r"input length and `max_tokens` exceed context limit: # \+ # > #",
        "prompt max_tokens window",
    ),
    _w(
        "vllm-output-and-input",
        r"MAXCTX\. However, you requested # output tokens and your prompt"
        r" contains (at least )?# input tokens",
        "window max_tokens prompt+ prompt",
    ),
    _w(
        "vllm-output-and-characters",
        r"MAXCTX\. However, you requested # output tokens and your prompt"
        r" contains # characters",
        "window max_tokens",
    ),
    _w(
        "vllm-max-tokens-too-large",
        r"'max_tokens'(?: or 'max_completion_tokens')? is too large: #\. This"
        r" model's MAXCTX and your request has # input tokens",
        "max_tokens window prompt",
    ),
    _w(
        "vllm-input-tokens",
        r"MAXCTX\. However, your request has # input tokens",
        "window prompt",
    ),
    _w(
        "openai-requested",  # vLLM, llama-cpp-python, DeepSeek, old OpenAI
        r"MAXCTX[.,] However,? you requested # tokens \(# in (?:the messages|your"
        r" prompt)[,;] (?:#|None) (?:in|for) the completion\)",
        "window total prompt max_tokens",
    ),
    _w(
        "openrouter-requested",
        r"MAXCTX\. However, you requested about # tokens \(# of text input, # in"
        r" the output\)",
        "window total prompt max_tokens",
    ),
    _w(
        "openai-messages",  # "(... in the functions)" is part of the prompt
        r"MAXCTX\. However, your messages resulted in # tokens",
        "window prompt",
    ),
    _w(
        "openai-requested-total",
        r"MAXCTX[.,] However,? you requested # tokens",
        "window total",
    ),
    _w(
        "vllm-decoder-prompt",
        r"decoder prompt \(length #\) is longer than the maximum model length of #",
        "prompt window",
    ),
    _w(
        "vllm-prompt-too-long-to-fit",
        r"prompt \(total length #\) is too long to fit into the model \(context"
        r" length #\)",
        "prompt window",
    ),
    _w(
        "llamacpp-request",
        r"request \(# tokens\) exceeds (?:the available )?context size \(# tokens\)",
        "prompt window",
    ),
    _w(
        "llamacpp-input-larger",
        r"input \(# tokens\) is larger than the max context size \(# tokens\)",
        "prompt window",
    ),
    _w(
        "llama-cpp-python-raw",
        r"Requested tokens \(#\) exceed context window of #",
        "prompt window",
    ),
    _w(
        "lmstudio-keep-first",
        r"trying to keep the first # tokens when (?:the )?context (?:the )?"
        r"overflows.*?context length of only # tokens",
        "prompt window",
    ),
    _w(
        "lmstudio-n-keep",
        r"tokens to keep from the initial prompt is greater than the context"
        r" length \(n_keep: # ?>= ?n_ctx: #\)",
        "prompt window",
    ),
    _w(
        "together-input-longer",
        r"input \(# tokens\) is longer than the model's context length \(# tokens\)",
        "prompt window",
    ),
    _w(
        "mistral-prompt-contains",
        r"prompt contains # tokens.*?too large for model with # maximum context",
        "prompt window",
    ),
    _w(
        "ollama-exceeded-by",
        r"prompt too long; exceeded (?:max )?context length by # tokens",
        "excess",
    ),
    _w("openai-max-context", r"MAXCTX", "window"),
    # Wordings without counts.
    _w("lmstudio-n-keep-plain", r"tokens to keep from the initial prompt is greater"),
    _w("lmstudio-keep-first-plain", r"trying to keep the first \d+ tokens when"),
    _w("llamacpp-exceeds", r"exceeds the available context size"),
    _w("llamacpp-context-size", r"context size has been exceeded"),
    _w("openai-responses", r"input exceeds the context window"),
    _w("ollama-too-long", r"prompt too long; exceeded|input length exceeds the"),
    _w("prompt-too-long", r"prompt is too long"),
    _w(
        "generic",
        r"context[ _-]?(?:length|window|size)[ _-]?(?:exceeded|overflow)"
        r"|context overflow|exceeds? the (?:model's )?context|too many tokens",
    ),
)

# Error codes and types that mean an overflow whatever the message says.
OVERFLOW_CODES = frozenset(
    {
        "context_length_exceeded",
        "exceed_context_size_error",
        "model_context_window_exceeded",
    }
)
# Statuses an overflow arrives with (llama.cpp and LM Studio use 500 for
# "Context size has been exceeded"; gateways may send 413 or 422).
OVERFLOW_STATUSES = frozenset({400, 413, 422, 500})
_NOT_OVERFLOW = re.compile(
    r"rate.?limit|per min|tokens per|quota|\bTPM\b|too many requests"
    r"|throttl|please wait",
    re.IGNORECASE,
)


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
    if not coded and _NOT_OVERFLOW.search(message):
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


def _counts(
    wording: _Wording, match: re.Match[str], max_tokens: int | None
) -> Overflow:
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


def to_error(found: Overflow, message: str) -> errors.ContextOverflow:
    """`found` as the error the client sees, the upstream's words kept."""
    prompt = found.prompt_tokens
    if found.prompt_at_least and prompt is not None:
        window = found.context_window or 0
        if prompt <= window and found.max_tokens is not None:
            # vLLM stopped counting at the input budget: the prompt is at
            # least that, maybe far more, so no prompt count is stated.
            prompt = None
    # Always 400, whatever the upstream used: clients key on it (Claude
    # Code reads the counts of a 400 only).
    return errors.ContextOverflow.from_upstream(
        message,
        prompt_tokens=prompt,
        context_window=found.context_window,
        max_tokens=found.max_tokens,
        status=400,
    )


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
