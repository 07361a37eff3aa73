"""Upstream overflows through the proxy, as each front door's client sees them.

The fake upstream answers in a real server's words (vLLM, llama.cpp with
its `n_prompt_tokens`/`n_ctx` fields, LM Studio, an error event inside a
200 stream); the official SDKs read what LM Bridge makes of it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anthropic
import openai
import pytest

from fakes.openai_upstream import FakeOpenAIUpstream, Script
from lmbridge.protocols.overflow import CLAUDE_CODE_PATTERN
from support import (
    RunningProxy,
    claude_refused,
    claude_stream,
    error_events,
    oai,
    running,
    settings_for,
)

HELLO: list[anthropic.types.MessageParam] = [{"role": "user", "content": "Hello"}]
VLLM = (
    "This model's maximum context length is 8192 tokens. However, you requested"
    " 12131 tokens (12031 in the messages, 100 in the completion). Please reduce"
    " the length of the messages or completion."
)


@pytest.fixture
async def bridge(fake_upstream: FakeOpenAIUpstream) -> AsyncIterator[RunningProxy]:
    async with running(settings_for(fake_upstream.url)) as proxy:
        yield proxy


@pytest.mark.parametrize("stream", [False, True])
async def test_vllm_overflow_reaches_claude_code_with_the_prompt_and_window(
    bridge: RunningProxy, fake_upstream: FakeOpenAIUpstream, stream: bool
) -> None:
    fake_upstream.script = Script(status=400, error_message=VLLM)
    error = await claude_refused(bridge, HELLO, stream)
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith(
        "prompt is too long: 12031 tokens > 8192 maximum"
    )
    read = CLAUDE_CODE_PATTERN.search(error["message"])
    assert read is not None
    assert read.groups() == ("12031", "8192")


async def test_llamacpp_fields_give_the_counts_its_message_leaves_out(
    bridge: RunningProxy, fake_upstream: FakeOpenAIUpstream
) -> None:
    fake_upstream.script = Script(
        status=400,
        error_message="the request exceeds the available context size, try increasing it",
        error_fields={
            "code": 400,
            "type": "exceed_context_size_error",
            "n_prompt_tokens": 13392,
            "n_ctx": 8192,
        },
    )
    message = (await claude_refused(bridge, HELLO))["message"]
    assert message.startswith("prompt is too long: 13392 tokens > 8192 maximum")


async def test_max_tokens_that_do_not_fit_are_not_called_a_long_prompt(
    bridge: RunningProxy, fake_upstream: FakeOpenAIUpstream
) -> None:
    """Claude Code lowers max_tokens on Anthropic's own words for this."""
    fake_upstream.script = Script(
        status=400,
        error_message="'max_tokens' or 'max_completion_tokens' is too large: 8000."
        " This model's maximum context length is 4096 tokens and your request has"
        " 2778 input tokens (8000 > 4096 - 2778). None",
    )
    message = (await claude_refused(bridge, HELLO, max_tokens=8000))["message"]
    assert message.startswith(
        "input length and `max_tokens` exceed context limit: 2778 + 8000 > 4096"
    )
    assert CLAUDE_CODE_PATTERN.search(message) is None


async def test_an_overflow_inside_the_stream_becomes_an_error_event(
    bridge: RunningProxy, fake_upstream: FakeOpenAIUpstream
) -> None:
    fake_upstream.script = Script(
        text="one two three",
        error_in_stream="Trying to keep the first 5406 tokens when context the"
        " overflows. However, the model is loaded with context length of only"
        " 4096 tokens, which is not enough.",
    )
    errors = error_events(await claude_stream(bridge.url, HELLO))
    assert len(errors) == 1
    error = errors[0]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith("prompt is too long: 5406 tokens > 4096 maximum")


async def test_responses_clients_get_the_code_and_the_same_words(
    bridge: RunningProxy, fake_upstream: FakeOpenAIUpstream
) -> None:
    """Codex keys on `context_length_exceeded`. (Chat to a Chat upstream is
    relayed as the upstream wrote it.)"""
    fake_upstream.script = Script(status=400, error_message=VLLM)
    async with oai(bridge) as client:
        with pytest.raises(openai.BadRequestError) as info:
            await client.responses.create(
                model="claude-sonnet-4-6", max_output_tokens=100, input="Hello"
            )
    assert info.value.code == "context_length_exceeded"
    message = info.value.body["message"]  # type: ignore[index]
    assert message.startswith("prompt is too long: 12031 tokens > 8192 maximum")
