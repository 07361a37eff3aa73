"""The overflow table: every upstream wording we know, read right.

Each case is what a real server sends (quoted from its source or from
reports of it), the counts it must yield (prompt N, window M, max_tokens
C) and the words the client then sees. Claude Code reads `N tokens > M
maximum` from the message to decide how much to compact, so no case may
let it read a wrong pair.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from lmbridge.core import errors, ir
from lmbridge.protocols import overflow, tokens
from lmbridge.protocols.anthropic.stream import AnthropicStreamDecoder
from lmbridge.protocols.openai_chat.decode import ChatStreamDecoder
from lmbridge.protocols.openai_responses.decode import ResponsesStreamDecoder
from lmbridge.protocols.overflow import CLAUDE_CODE_PATTERN, Cause
from lmbridge.upstreams.modelprep import fit

TOO_LONG = "prompt is too long: {} tokens > {} maximum"
ANSWER = "input length and `max_tokens` exceed context limit: {} + {} > {}"


def case(
    id: str,
    message: str,
    counts: tuple[int | None, int | None, int | None],
    cause: Cause,
    says: str,
    *,
    status: int | None = 400,
    fields: dict[str, Any] | None = None,
) -> Any:
    return pytest.param(message, status, fields, counts, cause, says, id=id)


CASES = [
    # llama.cpp server (tools/server/server-context.cpp)
    case(
        "llamacpp-old-with-fields",
        "the request exceeds the available context size, try increasing it",
        (13392, 8192, None),
        Cause.PROMPT,
        TOO_LONG.format(13392, 8192),
        fields={
            "type": "exceed_context_size_error",
            "n_prompt_tokens": 13392,
            "n_ctx": 8192,
        },
    ),
    case(
        "llamacpp-old-no-fields",
        "the request exceeds the available context size, try increasing it",
        (None, None, None),
        Cause.UNSTATED,
        "prompt is too long for the model's context window",
    ),
    case(
        "llamacpp-old-context-shift",
        "the request exceeds the available context size. try increasing the"
        " context size or enable context shift",
        (None, None, None),
        Cause.UNSTATED,
        "prompt is too long for the model's context window",
    ),
    case(
        "llamacpp-new",
        "request (13392 tokens) exceeds the available context size (8192 tokens),"
        " try increasing it",
        (13392, 8192, None),
        Cause.PROMPT,
        TOO_LONG.format(13392, 8192),
        fields={
            "type": "exceed_context_size_error",
            "n_prompt_tokens": 13392,
            "n_ctx": 8192,
        },
    ),
    case(
        "llamacpp-newest",
        "request (9000 tokens) exceeds context size (8192 tokens)",
        (9000, 8192, None),
        Cause.PROMPT,
        TOO_LONG.format(9000, 8192),
    ),
    case(
        "llamacpp-equal-is-not-greater",
        "request (8192 tokens) exceeds the available context size (8192 tokens),"
        " try increasing it",
        (8192, 8192, None),
        Cause.UNSTATED,
        TOO_LONG.format(8193, 8192),
    ),
    case(
        "llamacpp-input-larger",
        "input (5000 tokens) is larger than the max context size (4096 tokens). skipping",
        (5000, 4096, None),
        Cause.PROMPT,
        TOO_LONG.format(5000, 4096),
    ),
    case(
        "llamacpp-mid-generation",
        "Context size has been exceeded.",
        (None, None, None),
        Cause.UNSTATED,
        "prompt is too long for the model's context window",
        status=500,
    ),
    # llama-cpp-python (llama.py, server/errors.py)
    case(
        "llama-cpp-python-chat",
        "This model's maximum context length is 8192 tokens. However, you requested"
        " 12131 tokens (12031 in the messages, 100 in the completion). Please"
        " reduce the length of the messages or completion.",
        (12031, 8192, 100),
        Cause.PROMPT,
        TOO_LONG.format(12031, 8192),
    ),
    case(
        "llama-cpp-python-chat-no-max-tokens",
        "This model's maximum context length is 2048 tokens. However, you requested"
        " 2100 tokens (2100 in the messages, None in the completion). Please reduce"
        " the length of the messages or completion.",
        (2100, 2048, None),
        Cause.PROMPT,
        TOO_LONG.format(2100, 2048),
    ),
    case(
        "llama-cpp-python-completions",
        "This model's maximum context length is 4097 tokens, however you requested"
        " 4116 tokens (3860 in your prompt; 256 for the completion). Please reduce"
        " your prompt; or completion length.",
        (3860, 4097, 256),
        Cause.ANSWER,
        ANSWER.format(3860, 256, 4097),
    ),
    case(
        "llama-cpp-python-raw",
        "Requested tokens (5000) exceed context window of 4096",
        (5000, 4096, None),
        Cause.PROMPT,
        TOO_LONG.format(5000, 4096),
        status=500,
    ),
    # vLLM (serving_engine.py, renderers/params.py, input processor)
    case(
        "vllm-requested-prompt-too-long",
        "This model's maximum context length is 8192 tokens. However, you requested"
        " 12131 tokens (12031 in the messages, 100 in the completion). Please reduce"
        " the length of the messages or completion.",
        (12031, 8192, 100),
        Cause.PROMPT,
        TOO_LONG.format(12031, 8192),
    ),
    case(
        "vllm-requested-max-tokens-too-large",
        "This model's maximum context length is 8192 tokens. However, you requested"
        " 33000 tokens (1000 in the messages, 32000 in the completion). Please"
        " reduce the length of the messages or completion.",
        (1000, 8192, 32000),
        Cause.ANSWER,
        ANSWER.format(1000, 32000, 8192),
    ),
    case(
        "vllm-input-tokens",
        "This model's maximum context length is 32768 tokens. However, your request"
        " has 40000 input tokens. Please reduce the length of the input messages.",
        (40000, 32768, None),
        Cause.PROMPT,
        TOO_LONG.format(40000, 32768),
    ),
    case(
        "vllm-max-tokens-is-too-large",
        "'max_tokens' or 'max_completion_tokens' is too large: 8000. This model's"
        " maximum context length is 4096 tokens and your request has 2778 input"
        " tokens (8000 > 4096 - 2778). None",
        (2778, 4096, 8000),
        Cause.ANSWER,
        ANSWER.format(2778, 8000, 4096),
    ),
    case(
        "vllm-renderer-prompt-too-long",
        "This model's maximum context length is 8192 tokens. However, you requested"
        " 64 output tokens and your prompt contains 10000 input tokens, for a total"
        " of 10064 tokens. Please reduce the length of the input prompt or the"
        " number of requested output tokens.",
        (10000, 8192, 64),
        Cause.PROMPT,
        TOO_LONG.format(10000, 8192),
    ),
    case(
        "vllm-renderer-at-least",
        "This model's maximum context length is 8192 tokens. However, you requested"
        " 64 output tokens and your prompt contains at least 8129 input tokens, for"
        " a total of at least 8193 tokens. Please reduce the length of the input"
        " prompt or the number of requested output tokens. (parameter=input_tokens,"
        " value=8129)",
        (8129, 8192, 64),
        Cause.ANSWER,
        TOO_LONG.format(8193, 8192),
    ),
    case(
        "vllm-renderer-characters",
        "This model's maximum context length is 32768 tokens. However, you requested"
        " 4096 output tokens and your prompt contains 200000 characters (more than"
        " 130688 characters, which is the upper bound for 28672 input tokens).",
        (None, 32768, 4096),
        Cause.UNSTATED,
        TOO_LONG.format(32769, 32768),
    ),
    case(
        "vllm-thousands-separators",
        "This model's maximum context length is 1,048,576 tokens. However, you"
        " requested 2,000 output tokens and your prompt contains 1,050,000 input"
        " tokens, for a total of 1,052,000 tokens.",
        (1050000, 1048576, 2000),
        Cause.PROMPT,
        TOO_LONG.format(1050000, 1048576),
    ),
    case(
        "vllm-decoder-prompt",
        "The decoder prompt (length 5951) is longer than the maximum model length"
        " of 4096. Make sure that `max_model_len` is no smaller than the number of"
        " text tokens.",
        (5951, 4096, None),
        Cause.PROMPT,
        TOO_LONG.format(5951, 4096),
    ),
    case(
        "vllm-too-long-to-fit",
        "The prompt (total length 25938) is too long to fit into the model (context"
        " length 4096). Make sure that `max_model_len` is no smaller than the number"
        " of text tokens plus multimodal tokens.",
        (25938, 4096, None),
        Cause.PROMPT,
        TOO_LONG.format(25938, 4096),
    ),
    # OpenAI and Azure OpenAI
    case(
        "openai-messages",
        "This model's maximum context length is 8192 tokens. However, your messages"
        " resulted in 9000 tokens. Please reduce the length of the messages.",
        (9000, 8192, None),
        Cause.PROMPT,
        TOO_LONG.format(9000, 8192),
        fields={"type": "invalid_request_error", "code": "context_length_exceeded"},
    ),
    case(
        "openai-with-functions",
        "This model's maximum context length is 128000 tokens. However, your"
        " messages resulted in 128994 tokens (128242 in the messages, 752 in the"
        " functions). Please reduce the length of the messages or functions.",
        (128994, 128000, None),
        Cause.PROMPT,
        TOO_LONG.format(128994, 128000),
        fields={"param": "messages", "code": "context_length_exceeded"},
    ),
    case(
        "azure-for-this-model",
        "The maximum context length for this model is 4097 tokens. However, your"
        " messages resulted in 5487 tokens (5419 in the messages, 68 in the"
        " functions). Please reduce the length of the messages or functions.",
        (5487, 4097, None),
        Cause.PROMPT,
        TOO_LONG.format(5487, 4097),
        fields={"code": "context_length_exceeded"},
    ),
    case(
        "openai-total-only",
        "This model's maximum context length is 4096 tokens, however you requested"
        " 9000 tokens",
        (None, 4096, None),
        Cause.UNSTATED,
        TOO_LONG.format(4097, 4096),
    ),
    case(
        "openai-responses",
        "Your input exceeds the context window of this model. Please adjust your"
        " input and try again.",
        (None, None, None),
        Cause.UNSTATED,
        "prompt is too long for the model's context window",
        fields={"code": "context_length_exceeded"},
    ),
    case(
        "code-only",
        "Something went wrong",
        (None, None, None),
        Cause.UNSTATED,
        "prompt is too long for the model's context window",
        fields={"code": "context_length_exceeded"},
    ),
    case(
        "openrouter",
        "This endpoint's maximum context length is 8192 tokens. However, you"
        " requested about 12000 tokens (10000 of text input, 2000 in the output).",
        (10000, 8192, 2000),
        Cause.PROMPT,
        TOO_LONG.format(10000, 8192),
    ),
    # Anthropic
    case(
        "anthropic-prompt",
        "prompt is too long: 215000 tokens > 200000 maximum",
        (215000, 200000, None),
        Cause.PROMPT,
        TOO_LONG.format(215000, 200000),
    ),
    case(
        "anthropic-max-tokens",
        "input length and `max_tokens` exceed context limit: 188059 + 20000 >"
        " 200000, decrease input length or `max_tokens` and try again",
        (188059, 200000, 20000),
        Cause.ANSWER,
        ANSWER.format(188059, 20000, 200000),
    ),
    # LM Studio (its llama.cpp and MLX engines, every API)
    case(
        "lmstudio-n-keep",
        "The number of tokens to keep from the initial prompt is greater than the"
        " context length (n_keep: 5228 >= n_ctx: 4096). Try to load the model with"
        " a larger context length, or provide a shorter input.",
        (5228, 4096, None),
        Cause.PROMPT,
        TOO_LONG.format(5228, 4096),
    ),
    case(
        "lmstudio-n-keep-plain",
        "The number of tokens to keep from the initial prompt is greater than the"
        " context length. Try to load the model with a larger context length, or"
        " provide a shorter input",
        (None, None, None),
        Cause.UNSTATED,
        "prompt is too long for the model's context window",
    ),
    case(
        "lmstudio-keep-first",
        "Trying to keep the first 5406 tokens when context the overflows. However,"
        " the model is loaded with context length of only 1056 tokens, which is not"
        " enough. Try to load the model with a larger context length, or provide a"
        " shorter input",
        (5406, 1056, None),
        Cause.PROMPT,
        TOO_LONG.format(5406, 1056),
    ),
    case(
        "lmstudio-keep-first-fits-the-window",
        "Trying to keep the first 4000 tokens when context overflows. However, the"
        " model is loaded with context length of only 4096 tokens, which is not"
        " enough.",
        (4000, 4096, None),
        Cause.UNSTATED,
        TOO_LONG.format(4097, 4096),
    ),
    case(
        "lmstudio-predict-stream",
        "Engine protocol predict stream returned an error: {code:500,"
        " message:'Context size has been exceeded'}",
        (None, None, None),
        Cause.UNSTATED,
        "prompt is too long for the model's context window",
        status=500,
    ),
    case(
        "lmstudio-context-length-exceeded",
        "Context length exceeded",
        (None, None, None),
        Cause.UNSTATED,
        "prompt is too long for the model's context window",
    ),
    # Ollama
    case(
        "ollama-exceeded-by",
        "prompt too long; exceeded max context length by 4021 tokens",
        (None, None, None),
        Cause.UNSTATED,
        "prompt is too long for the model's context window",
    ),
    case(
        "ollama-input-length",
        "the input length exceeds the context length",
        (None, None, None),
        Cause.UNSTATED,
        "prompt is too long for the model's context window",
    ),
    # Others seen behind OpenAI-compatible gateways
    case(
        "together",
        "The input (516368 tokens) is longer than the model's context length"
        " (262144 tokens).",
        (516368, 262144, None),
        Cause.PROMPT,
        TOO_LONG.format(516368, 262144),
    ),
    case(
        "mistral",
        "Prompt contains 240000 tokens, too large for model with 128000 maximum"
        " context length",
        (240000, 128000, None),
        Cause.PROMPT,
        TOO_LONG.format(240000, 128000),
    ),
]


def _body(message: str, fields: dict[str, Any] | None) -> bytes:
    return json.dumps({"error": {"message": message, **(fields or {})}}).encode()


@pytest.mark.parametrize(
    ("message", "status", "fields", "counts", "cause", "says"), CASES
)
def test_every_wording(
    message: str,
    status: int | None,
    fields: dict[str, Any] | None,
    counts: tuple[int | None, int | None, int | None],
    cause: Cause,
    says: str,
) -> None:
    found = overflow.read(message, status=status, body=_body(message, fields))
    assert found is not None
    assert (found.prompt_tokens, found.context_window, found.max_tokens) == counts
    assert found.cause is cause
    error = overflow.error(message, status=status, body=_body(message, fields))
    assert isinstance(error, errors.ContextOverflow)
    assert error.message.startswith(says), error.message
    assert error.status == 400
    assert error.code == "context_length_exceeded"
    # Claude Code reads N > M from every overflow it can compact; N and M
    # are the prompt and the window where the upstream stated them.
    read = CLAUDE_CODE_PATTERN.search(error.message)
    if cause is Cause.PROMPT:
        assert read is not None
        assert (int(read[1]), int(read[2])) == (counts[0], counts[1])
    if says.startswith("input length") or says == errors.OVERFLOW_UNCOUNTED:
        assert read is None, error.message
    else:
        assert read is not None
        assert int(read[1]) > int(read[2])
        if counts[1] is not None:
            assert int(read[2]) == counts[1]
    # ...and the upstream's own words stay, for the user.
    assert message in error.message or error.message.startswith(message)


@pytest.mark.parametrize(
    ("message", "status", "fields", "counts", "cause", "says"), CASES
)
def test_every_wording_mid_stream(
    message: str,
    status: int | None,
    fields: dict[str, Any] | None,
    counts: tuple[int | None, int | None, int | None],
    cause: Cause,
    says: str,
) -> None:
    """An error event inside a 200 stream has no status; the same holds."""
    found = overflow.stream_error(message, body=_body(message, fields))
    assert found is not None
    assert found[0].startswith(says)
    assert found[1] == 400


def test_the_request_max_tokens_splits_a_stated_total() -> None:
    message = (
        "This model's maximum context length is 4096 tokens, however you requested"
        " 9000 tokens"
    )
    found = overflow.read(message, status=400, max_tokens=10)
    assert found is not None
    assert (found.prompt_tokens, found.context_window) == (8990, 4096)
    assert found.cause is Cause.PROMPT


@pytest.mark.parametrize(
    ("message", "limit"),
    [
        (
            "max_tokens is too large: 100000. This model supports at most 16384"
            " completion tokens, whereas you provided 100000.",
            16384,
        ),
        (
            "max_tokens: 100000 > 64000, which is the maximum allowed number of"
            " output tokens for claude-sonnet-4-20250514",
            64000,
        ),
    ],
)
def test_an_output_limit_is_read_but_is_no_overflow(message: str, limit: int) -> None:
    found = overflow.read(message, status=400)
    assert found is not None
    assert found.cause is Cause.OUTPUT_LIMIT
    assert found.output_limit == limit
    assert overflow.error(message, status=400) is None


@pytest.mark.parametrize(
    ("message", "status"),
    [
        ("Rate limit reached for gpt-4 on tokens per min (TPM): Limit 10000", 429),
        ("Rate limit reached: too many tokens per min (TPM)", 400),
        ("ThrottlingException: Too many tokens, please wait before trying again", None),
        ("This model's maximum context length is 8192 tokens.", 401),
        ("messages: text content blocks must be non-empty", 400),
        ("model 'x' not found", 404),
        ("upstream failure", 500),
    ],
)
def test_what_is_not_an_overflow(message: str, status: int | None) -> None:
    assert overflow.read(message, status=status) is None
    assert overflow.error(message, status=status) is None


def test_our_own_guard_says_n_greater_than_m() -> None:
    """The context guard counts the reserve it keeps for the answer."""
    error = errors.ContextOverflow.for_prompt(7408, 8192, "m", reserve=922)
    read = CLAUDE_CODE_PATTERN.search(error.message)
    assert read is not None
    assert (int(read[1]), int(read[2])) == (7408, 7270)
    # A prompt that fits the window it is refused for is still said N > M.
    plain = errors.ContextOverflow.for_prompt(7408, 8192, "qwen3-8b")
    assert plain.message.startswith(TOO_LONG.format(8193, 8192))
    over = errors.ContextOverflow.for_prompt(9000, 8192, "m")
    assert over.message.startswith(TOO_LONG.format(9000, 8192))


def _sse(*events: dict[str, Any]) -> bytes:
    return b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events)


def test_chat_decoder_reads_llamacpp_fields_in_an_error_event() -> None:
    event = {
        "error": {
            "code": 400,
            "message": "the request exceeds the available context size, try increasing it",
            "type": "exceed_context_size_error",
            "n_prompt_tokens": 13392,
            "n_ctx": 8192,
        }
    }
    decoder = ChatStreamDecoder()
    out = decoder.feed(_sse(event)) + decoder.close()
    assert out == [
        ir.StreamError(
            errors.ErrorKind.CONTEXT_OVERFLOW,
            "prompt is too long: 13392 tokens > 8192 maximum"
            f" ({event['error']['message']})",
            400,
        )
    ]


def test_anthropic_decoder_keeps_anthropic_max_tokens_words() -> None:
    message = (
        "input length and `max_tokens` exceed context limit: 188059 + 20000 >"
        " 200000, decrease input length or `max_tokens` and try again"
    )
    event = {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": message},
    }
    decoder = AnthropicStreamDecoder()
    out = decoder.feed(b"event: error\n" + _sse(event)) + decoder.close()
    assert out == [ir.StreamError("context_overflow", message, 400)]


def test_responses_decoder_words_a_failed_response() -> None:
    failed = {
        "type": "response.failed",
        "response": {
            "id": "resp_1",
            "status": "failed",
            "error": {
                "code": "context_length_exceeded",
                "message": "Your input exceeds the context window of this model."
                " Please adjust your input and try again.",
            },
        },
    }
    request = ir.Request(model="m", messages=())
    decoder = ResponsesStreamDecoder(request)
    out = decoder.feed(_sse(failed)) + decoder.close()
    errors_out = [e for e in out if isinstance(e, ir.StreamError)]
    assert len(errors_out) == 1
    assert errors_out[0].kind == "context_overflow"
    assert errors_out[0].status == 400
    assert errors_out[0].message.startswith("prompt is too long")


def test_own_context_guard_states_a_true_n_over_m() -> None:
    """A 7,408-token prompt on an 8,192 model was refused as "7408 tokens >
    8192 maximum", which Claude Code cannot act on: the guard keeps a
    reserve for the answer, and the maximum it states is what is left."""
    text = "word " * 7000
    req = ir.Request(
        model="m",
        messages=(ir.Message(ir.Role.USER, (ir.Text(text),)),),
        max_tokens=32000,
    )
    prompt = tokens.count_request(req)
    context = prompt + 300  # the prompt alone fits, with too little room
    with pytest.raises(errors.ContextOverflow) as info:
        fit(req, "m", context)
    found = re.match(
        r"prompt is too long: (\d+) tokens > (\d+) maximum", info.value.message
    )
    assert found is not None, info.value.message
    n, m = int(found.group(1)), int(found.group(2))
    assert n == prompt and n > m and m < context
