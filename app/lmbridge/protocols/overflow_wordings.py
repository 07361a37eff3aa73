"""The table of every upstream overflow wording we know, and what it says.

Each `Wording` is a name, a pattern and what its numbers mean: the prompt
(N), the model's context window (M), the `max_tokens` of the request (C),
or a total N + C. `WORDINGS` lists them most specific first; beside it are
the error codes and HTTP statuses an overflow comes with, and the words
that make a message no overflow. `overflow.py` matches messages against
this table and words the client's error.

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
are: not an overflow, so `overflow.error()` leaves them to the caller.
"""

from __future__ import annotations

import re

import msgspec

# A count as servers print it, thousands separators allowed ("1,048,576").
_N = r"(\d[\d,]*)"
_MAX_CONTEXT = r"maximum context length (?:is|for this model is) #(?: tokens)?"


# What a pattern's groups may be: "total" is prompt + max_tokens, "prompt+"
# marks the prompt count that follows as a lower bound.
_ROLES = frozenset(
    {"prompt", "prompt+", "window", "max_tokens", "total", "excess", "output_limit"}
)


class Wording(msgspec.Struct, frozen=True):
    """One known wording: its name, its pattern and what its groups mean."""

    name: str
    pattern: re.Pattern[str]
    roles: tuple[str, ...] = ()


def _w(name: str, pattern: str, roles: str = "") -> Wording:
    """A wording: `roles` names its pattern's groups in order."""
    names = tuple(roles.split())
    assert set(names) <= _ROLES, names
    pattern = pattern.replace("MAXCTX", _MAX_CONTEXT).replace("#", _N)
    return Wording(name, re.compile(pattern, re.IGNORECASE | re.DOTALL), names)


# Most specific first: the first match wins. In a pattern `#` is a count
# and `MAXCTX` "maximum context length is # tokens".
WORDINGS: tuple[Wording, ...] = (
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
# Words that make a message no overflow (rate limits, quotas), unless its
# code says it is one.
NOT_OVERFLOW = re.compile(
    r"rate.?limit|per min|tokens per|quota|\bTPM\b|too many requests"
    r"|throttl|please wait",
    re.IGNORECASE,
)
