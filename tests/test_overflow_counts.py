"""`prompt is too long: N tokens > M maximum` for every overflow.

Where the upstream's words carry no counts, M is what LM Bridge knows of
the model's window and N its own count of the prompt (N = M + 1 when the
count is below M); Ollama's "by X tokens" gives N = M + X. Table-driven:
each count-less or half-counted wording we know, read as a whole answer
and inside a stream, then through the proxy to each front door.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import openai
import pytest

from fakes.openai_upstream import FakeOpenAIUpstream, Script
from lmbridge.core import errors
from lmbridge.core.events import RequestRecord
from lmbridge.protocols import overflow
from lmbridge.protocols.overflow import CLAUDE_CODE_PATTERN, Known
from support import (
    RunningProxy,
    claude_refused,
    claude_stream,
    error_events,
    oai,
    running,
    settings_for,
    stream_events,
)

# (id, the upstream's words, fields beside them)
UNCOUNTED: list[tuple[str, str, dict[str, Any]]] = [
    (
        "lmstudio-n-keep",
        "The number of tokens to keep from the initial prompt is greater than the"
        " context length. Try to load the model with a larger context length, or"
        " provide a shorter input",
        {},
    ),
    ("ollama-input-length", "the input length exceeds the context length", {}),
    (
        "openai-responses",
        "Your input exceeds the context window of this model. Please adjust your"
        " input and try again.",
        {"code": "context_length_exceeded"},
    ),
    (
        "llamacpp-exceeds",
        "the request exceeds the available context size, try increasing it",
        {},
    ),
    (
        "llamacpp-older",
        "the request exceeds the available context size, try increasing the"
        " context size or enable context shift",
        {},
    ),
    ("llamacpp-mid-generation", "Context size has been exceeded.", {}),
    ("lmstudio-context-length-exceeded", "context length exceeded", {}),
    (
        "azure-code-only",
        "The request could not be completed.",
        {"code": "context_length_exceeded"},
    ),
    (
        "model-context-window-exceeded",
        "Input is too large.",
        {"code": "model_context_window_exceeded"},
    ),
]
IDS = [case[0] for case in UNCOUNTED]


def _body(message: str, fields: dict[str, Any]) -> bytes:
    return json.dumps({"error": {"message": message, **fields}}).encode()


def _said(message: str) -> tuple[int, int]:
    read = CLAUDE_CODE_PATTERN.search(message)
    assert read is not None, message
    n, m = int(read[1]), int(read[2])
    assert n > m, message
    return n, m


def _error(message: str, fields: dict[str, Any], known: Known) -> str:
    found = overflow.read(message, status=400, body=_body(message, fields))
    assert found is not None, message
    return overflow.to_error(found, message, known).message


@pytest.mark.parametrize(("name", "message", "fields"), UNCOUNTED, ids=IDS)
@pytest.mark.parametrize(
    ("window", "count", "said"),
    [
        (8192, 9500, (9500, 8192)),  # our count is above the window
        (8192, 300, (8193, 8192)),  # below it: N = M + 1, never a false N > M
        (None, 9500, (9500, 9499)),  # no window known: at most N - 1 fit
    ],
)
def test_counts_come_from_what_lm_bridge_knows(
    name: str,
    message: str,
    fields: dict[str, Any],
    window: int | None,
    count: int,
    said: tuple[int, int],
) -> None:
    text = _error(message, fields, (window, lambda: count))
    assert text.startswith(f"prompt is too long: {said[0]} tokens > {said[1]} maximum")
    assert _said(text) == said
    assert message in text  # the upstream's words stay, for the user


@pytest.mark.parametrize(("name", "message", "fields"), UNCOUNTED, ids=IDS)
def test_mid_stream_uses_the_request_known_now(
    name: str, message: str, fields: dict[str, Any]
) -> None:
    token = overflow.KNOWN.set((4096, lambda: 6000))
    try:
        found = overflow.stream_error(message, body=_body(message, fields))
    finally:
        overflow.KNOWN.reset(token)
    assert found is not None
    assert _said(found[0]) == (6000, 4096)
    assert found[1] == 400


def test_ollama_by_how_much_gives_n() -> None:
    message = "prompt too long; exceeded max context length by 1200 tokens"
    assert _said(_error(message, {}, (4096, lambda: 10))) == (5296, 4096)
    # No window known: our count is N, and M is what the excess leaves.
    assert _said(_error(message, {}, (None, lambda: 5000))) == (5000, 3800)


def test_stated_counts_win_over_ours() -> None:
    message = (
        "This model's maximum context length is 8192 tokens. However, your"
        " messages resulted in 9000 tokens."
    )
    assert _said(_error(message, {}, (4096, lambda: 1))) == (9000, 8192)
    # Half stated: the window is the upstream's, the prompt our count.
    message = "This model's maximum context length is 8192 tokens"
    assert _said(_error(message, {}, (4096, lambda: 9999))) == (9999, 8192)


def test_without_the_proxy_nothing_is_invented() -> None:
    found = overflow.error("the input length exceeds the context length", status=400)
    assert found is not None
    assert found.message.startswith(errors.OVERFLOW_UNCOUNTED)
    assert CLAUDE_CODE_PATTERN.search(found.message) is None


def test_the_one_wording_serves_our_own_guard_too() -> None:
    own = errors.ContextOverflow.for_prompt(9000, 8192, "m")
    assert own.message.startswith(errors.overflow_wording(9000, 8192, None))


# -- through the proxy, to each front door ------------------------------------

WINDOW = 4096
HELLO: list[anthropic.types.MessageParam] = [{"role": "user", "content": "Hello"}]


@pytest.fixture
async def bridge(fake_upstream: FakeOpenAIUpstream) -> AsyncIterator[RunningProxy]:
    settings = settings_for(
        fake_upstream.url,
        routes=f'\n[[route]]\nmodel = "gpt-*"\nupstream = "fake"\n'
        f"context_window = {WINDOW}\n",
    )
    for route in settings.route:
        route.context_window = WINDOW
    async with running(settings) as proxy:
        yield proxy


@pytest.fixture(params=UNCOUNTED, ids=IDS)
def refusal(request: pytest.FixtureRequest, fake_upstream: FakeOpenAIUpstream) -> str:
    _name, message, fields = request.param
    fake_upstream.script = Script(
        status=400, error_message=message, error_fields=fields
    )
    return str(message)


@pytest.mark.parametrize("stream", [False, True])
async def test_messages_door(bridge: RunningProxy, refusal: str, stream: bool) -> None:
    message = (await claude_refused(bridge, HELLO, stream))["message"]
    assert _said(message) == (WINDOW + 1, WINDOW)
    assert refusal in message


async def test_chat_door(bridge: RunningProxy, refusal: str) -> None:
    """Chat to a Chat upstream is relayed, but an overflow is restated."""
    async with oai(bridge) as client:
        with pytest.raises(openai.BadRequestError) as info:
            await client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "Hello"}]
            )
    assert info.value.code == "context_length_exceeded"
    assert _said(info.value.message) == (WINDOW + 1, WINDOW)


@pytest.mark.parametrize("stream", [False, True])
async def test_responses_door(bridge: RunningProxy, refusal: str, stream: bool) -> None:
    async with oai(bridge) as client:
        with pytest.raises(openai.BadRequestError) as info:
            await client.responses.create(
                model="gpt-4o", max_output_tokens=100, input="Hello", stream=stream
            )
    assert info.value.code == "context_length_exceeded"
    assert _said(info.value.message) == (WINDOW + 1, WINDOW)


async def test_mid_stream_to_the_messages_door(
    bridge: RunningProxy, fake_upstream: FakeOpenAIUpstream
) -> None:
    fake_upstream.script = Script(
        text="one two three",
        error_in_stream="the input length exceeds the context length",
    )
    errors_seen = error_events(await claude_stream(bridge.url, HELLO))
    assert len(errors_seen) == 1
    assert _said(errors_seen[0]["message"]) == (WINDOW + 1, WINDOW)


async def test_no_window_known_counts_the_prompt(
    fake_upstream: FakeOpenAIUpstream,
) -> None:
    fake_upstream.script = Script(
        status=400, error_message="the input length exceeds the context length"
    )
    long_text = "lorem ipsum dolor sit amet " * 400
    async with running(settings_for(fake_upstream.url)) as proxy:
        error = await claude_refused(proxy, [{"role": "user", "content": long_text}])
    n, m = _said(error["message"])
    assert n > 1000 and m == n - 1


async def test_mid_stream_to_the_chat_door(
    bridge: RunningProxy, fake_upstream: FakeOpenAIUpstream
) -> None:
    """A Chat server's error event inside a relayed stream is restated."""
    fake_upstream.script = Script(
        text="one two three",
        error_in_stream="The number of tokens to keep from the initial prompt is"
        " greater than the context length.",
    )
    body = {
        "model": "gpt-4o",
        "stream": True,
        "messages": [{"role": "user", "content": "Hello"}],
    }
    events = await stream_events(bridge.url + "/v1/chat/completions", body)
    errors_seen = error_events(events)
    assert len(errors_seen) == 1, events
    assert errors_seen[0]["code"] == "context_length_exceeded"
    assert _said(errors_seen[0]["message"]) == (WINDOW + 1, WINDOW)


# -- inside a relayed stream of the upstream's own API ------------------------


def _relaying(fake_upstream: FakeOpenAIUpstream, api: str) -> Any:
    settings = settings_for(
        fake_upstream.url,
        upstream_extra=f'api = "{api}"',
        routes='\n[[route]]\nmodel = "gpt-*"\nupstream = "fake"\n',
    )
    for route in settings.route:
        route.context_window = WINDOW
    return running(settings)


async def _relayed_with_error_event(
    fake_upstream: FakeOpenAIUpstream, event: dict[str, Any]
) -> tuple[list[tuple[str, dict[str, Any]]], RequestRecord]:
    """A Messages stream relayed from a Messages upstream that sends `event`
    after some text: the events the client read, and the request's record."""
    fake_upstream.script = Script(
        text="one two three",
        frames_in_stream=[
            b"event: error\ndata: " + json.dumps(event).encode() + b"\n\n"
        ],
    )
    async with _relaying(fake_upstream, "messages") as proxy:
        events = await claude_stream(proxy.url, HELLO)
        return events, await proxy.record()


WORDED = [(name, words) for name, words, fields in UNCOUNTED if not fields]
"""The wordings that say it in words (a stream's error event has no code)."""


@pytest.mark.parametrize(("_id", "words"), WORDED, ids=[w[0] for w in WORDED])
async def test_relayed_messages_stream_restates_the_upstreams_error_event(
    fake_upstream: FakeOpenAIUpstream, _id: str, words: str
) -> None:
    """A Messages upstream's own `error` event inside its stream (relayed to
    the Messages door unchanged) is said with counts Claude Code can read."""
    event = {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": words},
    }
    events, record = await _relayed_with_error_event(fake_upstream, event)
    assert events[0][0] == "message_start"  # the upstream's own start, relayed
    failures = error_events(events)
    assert len(failures) == 1, events
    assert failures[0]["type"] == "invalid_request_error"
    assert _said(failures[0]["message"]) == (WINDOW + 1, WINDOW)
    assert words in failures[0]["message"]
    assert record.error_kind == errors.ErrorKind.CONTEXT_OVERFLOW


@pytest.mark.parametrize("failed_only", [False, True])
async def test_relayed_responses_stream_restates_the_upstreams_error(
    fake_upstream: FakeOpenAIUpstream, failed_only: bool
) -> None:
    """A Responses upstream's `error` + `response.failed` (LM Studio's and
    OpenAI's "Your input exceeds the context window") is restated with
    counts and Codex's code, numbered after the relayed events."""
    words = UNCOUNTED[2][1]
    error = {
        "type": "error",
        "code": "context_length_exceeded",
        "message": words,
        "param": None,
        "sequence_number": 1,
    }
    failed = {
        "type": "response.failed",
        "sequence_number": 2,
        "response": {
            "id": "resp_x",
            "object": "response",
            "status": "failed",
            "output": [],
            "error": {"code": "context_length_exceeded", "message": words},
        },
    }
    frames = [b"event: response.failed\ndata: " + json.dumps(failed).encode() + b"\n\n"]
    if not failed_only:
        frames.insert(0, b"event: error\ndata: " + json.dumps(error).encode() + b"\n\n")
    fake_upstream.script = Script(text="one two three", frames_in_stream=frames)
    body = {
        "model": "gpt-4o",
        "max_output_tokens": 100,
        "stream": True,
        "input": "Hello",
    }
    async with _relaying(fake_upstream, "responses") as proxy:
        events = await stream_events(proxy.url + "/v1/responses", body)
    kinds = [data["type"] for _name, data in events]
    assert kinds[0] == "response.created"
    assert kinds[-2:] == ["error", "response.failed"], kinds
    said = events[-2][1]
    assert said["code"] == "context_length_exceeded"
    assert _said(said["message"]) == (WINDOW + 1, WINDOW)
    assert _said(events[-1][1]["response"]["error"]["message"]) == (WINDOW + 1, WINDOW)
    numbers = [data["sequence_number"] for _name, data in events]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)


async def test_relayed_streams_keep_other_errors_in_the_upstreams_words(
    fake_upstream: FakeOpenAIUpstream,
) -> None:
    event = {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    events, _record = await _relayed_with_error_event(fake_upstream, event)
    failures = [data for _name, data in events if data.get("type") == "error"]
    assert failures == [event]
