"""Cached and new prompt tokens: from every upstream API onto the request's
record, the client's own usage fields, the history, the log line and
`lmbridge usage` (issue 23 item 3). Nonsense figures leave them unknown."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fakes.openai_upstream import FakeOpenAIUpstream, Script
from lmbridge import config
from lmbridge.core import ir
from lmbridge.core.events import RequestRecord
from lmbridge.protocols.anthropic import whole as anthropic_whole
from lmbridge.protocols.openai_chat.decode import ChatStreamDecoder
from lmbridge.protocols.openai_responses.decode import usage_from_wire
from lmbridge.protocols.openai_responses.events import SeenUsage
from lmbridge.server.requestlog import format_record
from lmbridge.store.db import FILENAME, Database
from lmbridge.store.migrations import MIGRATIONS, apply_pending
from lmbridge.store.usage import UsageStore
from support import RunningProxy, oai, settings_for, start_proxy

DOORS = ("anthropic", "openai", "responses")
APIS = ("chat", "messages", "responses")
# What each upstream API says of a first turn the fake served with no cache
# figure: Chat and Messages leave the field out, Responses sends 0.
UNSAID = {"chat": None, "messages": None, "responses": 0}


@dataclass
class Told:
    """What the client was told: the text and its protocol's usage figures."""

    text: str
    prompt: int  # every prompt token, in the client's protocol's reading
    cached: int | None


async def bridge_for(fake: FakeOpenAIUpstream, api: str) -> RunningProxy:
    return await start_proxy(settings_for(fake.url, upstream_extra=f'api = "{api}"'))


@pytest.fixture(params=APIS)
async def api_bridge(
    request: pytest.FixtureRequest, fake_upstream: FakeOpenAIUpstream
) -> AsyncIterator[tuple[str, RunningProxy]]:
    proxy = await bridge_for(fake_upstream, request.param)
    yield request.param, proxy
    await proxy.server.stop()


async def ask_anthropic(
    proxy: RunningProxy, history: list[tuple[str, str]], stream: bool
) -> Told:
    messages: list[Any] = [{"role": r, "content": t} for r, t in history]
    async with anthropic.AsyncAnthropic(
        base_url=proxy.url, api_key="x", max_retries=0
    ) as client:
        message: anthropic.types.Message
        if stream:
            async with client.messages.stream(
                model="claude-haiku", max_tokens=100, messages=messages
            ) as s:
                message = await s.get_final_message()
        else:
            message = await client.messages.create(
                model="claude-haiku", max_tokens=100, messages=messages
            )
    usage = message.usage
    cached = usage.cache_read_input_tokens
    text = "".join(b.text for b in message.content if b.type == "text")
    return Told(text, usage.input_tokens + (cached or 0), cached)


async def ask_chat(
    proxy: RunningProxy, history: list[tuple[str, str]], stream: bool
) -> Told:
    messages: list[Any] = [{"role": r, "content": t} for r, t in history]
    async with oai(proxy) as client:
        if stream:
            chunks = await client.chat.completions.create(
                model="claude-haiku",
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
            )
            text, usage = "", None
            async for chunk in chunks:
                for choice in chunk.choices:
                    text += choice.delta.content or ""
                usage = chunk.usage or usage
        else:
            reply = await client.chat.completions.create(
                model="claude-haiku", messages=messages
            )
            text, usage = reply.choices[0].message.content or "", reply.usage
    assert usage is not None
    details = usage.prompt_tokens_details
    return Told(text, usage.prompt_tokens, details.cached_tokens if details else None)


async def ask_responses(
    proxy: RunningProxy, history: list[tuple[str, str]], stream: bool
) -> Told:
    items: list[Any] = [{"role": r, "content": t} for r, t in history]
    async with oai(proxy) as client:
        if stream:
            events = await client.responses.create(
                model="claude-haiku", input=items, stream=True, store=False
            )
            response = None
            async for event in events:
                if event.type == "response.completed":
                    response = event.response
            assert response is not None
        else:
            response = await client.responses.create(
                model="claude-haiku", input=items, store=False
            )
    usage = response.usage
    assert usage is not None
    return Told(
        response.output_text,
        usage.input_tokens,
        usage.input_tokens_details.cached_tokens,
    )


ASK = {"anthropic": ask_anthropic, "openai": ask_chat, "responses": ask_responses}


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
@pytest.mark.parametrize("door", DOORS)
async def test_a_session_records_what_the_cache_served_each_turn(
    api_bridge: tuple[str, RunningProxy],
    fake_upstream: FakeOpenAIUpstream,
    door: str,
    stream: bool,
) -> None:
    """Turn 1 evaluates everything; turn 2 re-sends it and the upstream
    serves it from its cache: the record and the client both say so, from
    every door, relayed (door's API == upstream's) and translated."""
    api, proxy = api_bridge
    history = [("user", "What is in the box?")]
    fake_upstream.script = Script(text="A cat.", prompt_tokens=40)
    first = await ask_chat_or(door, proxy, history, stream)
    record = await proxy.record(1)
    assert first.text == "A cat."
    assert (record.tokens_in, record.cached_tokens) == (40, UNSAID[api])

    history += [("assistant", first.text), ("user", "Is it alive?")]
    fake_upstream.script = Script(text="Yes.", prompt_tokens=60, cached_tokens=40)
    second = await ask_chat_or(door, proxy, history, stream)
    record = await proxy.record(2)
    assert second.text == "Yes."
    assert (record.tokens_in, record.cached_tokens) == (60, 40)
    assert (second.prompt, second.cached) == (60, 40)
    assert "cache=66%" in format_record(record)


async def ask_chat_or(
    door: str, proxy: RunningProxy, history: list[tuple[str, str]], stream: bool
) -> Told:
    return await ASK[door](proxy, list(history), stream)


@pytest.mark.parametrize(
    ("door", "include_usage"),
    [("openai", False), ("openai", True), ("anthropic", True), ("responses", True)],
)
async def test_llama_cpp_timings_give_the_cached_count(
    fake_upstream: FakeOpenAIUpstream, door: str, include_usage: bool
) -> None:
    """llama.cpp's server says what it reused only in `timings.cache_n`: a
    relayed Chat stream without usage still gets prompt and cache figures;
    translated, the client gets them in its protocol's fields (relayed, the
    server's own `timings` reach it untouched)."""
    proxy = await bridge_for(fake_upstream, "chat")
    try:
        fake_upstream.script = Script(
            text="Hi.", prompt_tokens=50, cached_tokens=45, llama_timings=True
        )
        if not include_usage:
            async with oai(proxy) as client:
                chunks = await client.chat.completions.create(
                    model="claude-haiku",
                    messages=[{"role": "user", "content": "hi"}],
                    stream=True,
                )
                async for _chunk in chunks:
                    pass
        else:
            told = await ASK[door](proxy, [("user", "hi")], True)
            assert told.cached == (None if door == "openai" else 45)
        record = await proxy.record(1)
        assert (record.tokens_in, record.cached_tokens) == (50, 45)
        assert " cache=90%" in format_record(record)
    finally:
        await proxy.server.stop()


NONSENSE: list[Any] = [-1, "40", 2.5, True, 61, {"n": 3}, [40]]


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
@pytest.mark.parametrize("figure", NONSENSE, ids=repr)
async def test_nonsense_cache_figures_leave_the_count_unknown(
    api_bridge: tuple[str, RunningProxy],
    fake_upstream: FakeOpenAIUpstream,
    figure: Any,
    stream: bool,
) -> None:
    """A negative, non-integer or larger-than-the-prompt cached count from any
    upstream API, relayed and translated: the answer is served, the count is
    unknown, a translated answer tells the client none was cached."""
    api, proxy = api_bridge
    if api == "messages" and figure == 61:
        pytest.skip("Anthropic counts cache reads apart from input_tokens")
    fake_upstream.script = Script(text="Fine.", prompt_tokens=60, cached_figure=figure)
    door = {"chat": "openai", "messages": "anthropic", "responses": "responses"}[api]
    translated = "openai" if api == "messages" else "anthropic"
    for count, ask_door in enumerate((door, translated), start=1):
        if ask_door == translated:
            told = await ASK[ask_door](proxy, [("user", "hi")], stream)
            assert told.text == "Fine."
            assert told.cached in (None, 0)
        else:  # relayed: the client gets the upstream's bytes as they were
            await post_raw(proxy, door, stream)
        record = await proxy.record(count)
        assert record.status == 200 and record.error is None
        assert record.cached_tokens is None
        assert "cache=" not in format_record(record)


PATHS = {
    "anthropic": "/v1/messages",
    "openai": "/v1/chat/completions",
    "responses": "/v1/responses",
}


async def post_raw(proxy: RunningProxy, door: str, stream: bool) -> None:
    """One request through `door` read as bytes (SDKs choke on nonsense)."""
    body: dict[str, Any] = {"model": "claude-haiku", "stream": stream}
    if door == "responses":
        body["input"] = "hi"
    else:
        body["messages"] = [{"role": "user", "content": "hi"}]
        body["max_tokens"] = 100
    if door == "openai" and stream:
        body["stream_options"] = {"include_usage": True}
    async with (
        aiohttp.ClientSession() as session,
        session.post(proxy.url + PATHS[door], json=body) as reply,
    ):
        answer = await reply.read()
    assert reply.status == 200, answer
    assert b"Fine" in answer or b"Fi" in answer


@pytest.mark.parametrize("api", ["chat", "messages"])
async def test_no_cache_figure_at_all_is_not_a_zero(
    fake_upstream: FakeOpenAIUpstream, api: str
) -> None:
    """Servers that say nothing of their cache: the record says nothing."""
    proxy = await bridge_for(fake_upstream, api)
    try:
        for door in DOORS:
            await ASK[door](proxy, [("user", "hi")], True)
            record = proxy.records[-1]
            assert record.cached_tokens is None, door
            assert "cache=" not in format_record(record)
    finally:
        await proxy.server.stop()


# ------------------------------------------------------------------- codecs


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def known(cached: int | None, prompt: int) -> bool:
    return cached is None or 0 <= cached <= prompt


@given(
    prompt=st.integers(0, 10**6),
    details=JSON | st.fixed_dictionaries({"cached_tokens": JSON}),
    timings=JSON | st.fixed_dictionaries({"cache_n": JSON, "prompt_n": JSON}),
)
def test_chat_usage_never_fails_on_cache_figures(
    prompt: int, details: Any, timings: Any
) -> None:
    body = {
        "id": "c",
        "model": "m",
        "choices": [{"index": 0, "message": {"content": "x"}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": 1,
            "prompt_tokens_details": details,
        },
        "timings": timings,
    }
    events = ChatStreamDecoder().whole(msgspec.json.encode(body))
    finish = events[-1]
    assert isinstance(finish, ir.Finish)
    assert known(finish.usage.cached_tokens, prompt)


@given(prompt=st.integers(0, 10**6), cached=JSON, created=JSON)
def test_messages_usage_never_fails_on_cache_figures(
    prompt: int, cached: Any, created: Any
) -> None:
    body = {
        "id": "m",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [{"type": "text", "text": "x"}],
        "stop_reason": "end_turn",
        "usage": {
            "input_tokens": prompt,
            "output_tokens": 1,
            "cache_read_input_tokens": cached,
            "cache_creation_input_tokens": created,
        },
    }
    events = anthropic_whole.decode_whole(msgspec.json.encode(body))
    finish = events[-1]
    assert isinstance(finish, ir.Finish)
    usage = finish.usage
    assert known(usage.cached_tokens, usage.input_tokens)
    if isinstance(cached, int) and not isinstance(cached, bool) and cached >= 0:
        assert usage.cached_tokens == cached


@given(prompt=st.integers(0, 10**6), cached=JSON)
def test_responses_usage_never_fails_on_cache_figures(prompt: int, cached: Any) -> None:
    seen = msgspec.convert(
        {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": cached}},
        SeenUsage,
    )
    usage = usage_from_wire(seen)
    assert known(usage.cached_tokens, prompt)


@pytest.mark.parametrize(
    ("cached", "prompt", "expected"),
    [
        (0, 10, 0),
        (10, 10, 10),
        (11, 10, None),
        (-1, 10, None),
        (True, 10, None),
        ("3", 10, None),
        (3.0, 10, None),
        (None, 10, None),
        (5, None, 5),
    ],
)
def test_cached_count_table(cached: Any, prompt: Any, expected: int | None) -> None:
    assert ir.cached_count(cached, prompt) == expected


# ------------------------------------------------- history, log line, CLI


def test_the_log_line_says_the_share_only_where_known() -> None:
    record = RequestRecord(tokens_in=300, tokens_out=5, cached_tokens=200)
    assert format_record(record).endswith("tokens=300/5 cache=66%")
    record.cached_tokens = None
    assert "cache=" not in format_record(record)
    record.tokens_in, record.cached_tokens = 0, 0
    assert "cache=" not in format_record(record)


async def test_the_history_keeps_the_cached_count(
    fake_upstream: FakeOpenAIUpstream,
) -> None:
    """Through the proxy into its request history and back: the rows, and
    the share of the prompt served from cache over the requests that said."""
    proxy = await bridge_for(fake_upstream, "chat")
    try:
        history = [("user", "one")]
        for turn, cached in enumerate([None, 30, 90]):
            fake_upstream.script = Script(
                text=f"answer {turn}", prompt_tokens=100, cached_tokens=cached or 0
            )
            told = await ask_anthropic(proxy, history, True)
            history += [("assistant", told.text), ("user", f"more {turn}")]
        await proxy.record(3)
    finally:
        await proxy.server.stop()  # writes what its recorder holds
    db = Database.in_dir(config.data_dir())
    await db.open()
    try:
        store = UsageStore(db)
        rows = await store.recent()
        assert [r.cached_tokens for r in rows] == [90, 30, None]
        assert RequestRecord.from_summary(rows[0]).cached_tokens == 90
        [stats] = await store.stats(0.0, bucket="all")
        assert (stats.cached_tokens, stats.cache_reported_in) == (120, 200)
        assert stats.cache_share == pytest.approx(0.6)
    finally:
        await db.close()


async def test_an_older_history_gets_the_column_and_keeps_its_rows(
    tmp_path: Path,
) -> None:
    """A database from before the cache figures: its rows stay, unknown."""
    path = tmp_path / FILENAME
    names = [m.name for m in MIGRATIONS]
    before = MIGRATIONS[: names.index("request cache figures")]
    conn = sqlite3.connect(path, isolation_level=None)
    apply_pending(conn, path, before)
    conn.execute(
        "INSERT INTO request_history (received, target, tokens_in)"
        " VALUES (1.0, 'old', 5)"
    )
    conn.close()
    db = Database(path)
    await db.open()
    try:
        store = UsageStore(db)
        await store.add([RequestRecord(target="new", tokens_in=9, cached_tokens=4)])
        rows = await store.recent()
        assert [(r.target, r.cached_tokens) for r in rows] == [
            ("new", 4),
            ("old", None),
        ]
    finally:
        await db.close()
