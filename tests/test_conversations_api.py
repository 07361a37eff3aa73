"""The conversation store API under /store, driven over HTTP by aiohttp."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from fakes.openai_upstream import FakeOpenAIUpstream, Script
from support import RunningProxy


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def base(proxy: RunningProxy) -> str:
    return proxy.url + "/store"


async def create(
    http: aiohttp.ClientSession, proxy: RunningProxy, name: str, **extra: Any
) -> dict[str, Any]:
    body = {"name": name, "model": "fake-model", **extra}
    async with http.post(base(proxy) + "/chat", json=body) as r:
        assert r.status == 201, await r.text()
        payload: dict[str, Any] = await r.json()
    return payload


async def get(
    http: aiohttp.ClientSession, proxy: RunningProxy, name: str
) -> dict[str, Any]:
    async with http.get(base(proxy) + "/chat", params={"name": name}) as r:
        assert r.status == 200, await r.text()
        chat: dict[str, Any] = (await r.json())["chat"]
    return chat


async def put(
    http: aiohttp.ClientSession, proxy: RunningProxy, name: str, content: str
) -> list[Any]:
    """PUT a user message; the decoded SSE data items ("[DONE]" as a string)."""
    body = {"name": name, "message": {"role": "user", "content": content}}
    async with http.put(base(proxy) + "/chat", json=body) as r:
        assert r.status == 200, await r.text()
        assert r.headers["Content-Type"].startswith("text/event-stream")
        return sse_items(await r.read())


def sse_items(raw: bytes) -> list[Any]:
    items: list[Any] = []
    for line in raw.decode().splitlines():
        if line.startswith("data: "):
            data = line[6:]
            items.append(data if data == "[DONE]" else json.loads(data))
    return items


def text_of(items: list[Any]) -> str:
    return "".join(
        i["choices"][0]["delta"].get("content") or ""
        for i in items
        if isinstance(i, dict) and "choices" in i
    )


async def expect_error(resp: aiohttp.ClientResponse, status: int, needle: str) -> None:
    assert resp.status == status, await resp.text()
    payload = await resp.json()
    assert payload["status"] == "error"
    assert needle in payload["message"], payload


# ------------------------------------------------------------------ CRUD


async def test_create_list_get_and_delete(
    proxy: RunningProxy, http: aiohttp.ClientSession
) -> None:
    created = await create(http, proxy, "first", temperature=0.3, max_tokens=99)
    assert created["status"] == "success"
    assert created["chat"]["name"] == "first"
    await create(http, proxy, "second")
    async with http.get(base(proxy) + "/chats") as r:
        listing = await r.json()
    assert listing["status"] == "success"
    assert [c["name"] for c in listing["chats"]] == ["second", "first"]
    assert all(set(c) == {"id", "name", "model"} for c in listing["chats"])
    chat = await get(http, proxy, "first")
    assert chat["model"] == "fake-model"
    assert chat["messages"] == []
    assert (chat["temperature"], chat["max_tokens"]) == (0.3, 99)
    assert chat["created_at"].endswith("Z") and chat["updated_at"]
    async with http.delete(base(proxy) + "/chat", params={"name": "first"}) as r:
        assert r.status == 200
        assert (await r.json())["status"] == "success"
    async with http.get(base(proxy) + "/chat", params={"name": "first"}) as r:
        await expect_error(r, 404, "no chat named 'first'")
    async with http.get(base(proxy) + "/chats") as r:
        assert [c["name"] for c in (await r.json())["chats"]] == ["second"]


async def test_creating_an_existing_chat_is_409(
    proxy: RunningProxy, http: aiohttp.ClientSession
) -> None:
    await create(http, proxy, "dup")
    body = {"name": "dup", "model": "m"}
    async with http.post(base(proxy) + "/chat", json=body) as r:
        await expect_error(r, 409, "already exists")


@pytest.mark.parametrize(
    "name",
    [
        "Robert'); DROP TABLE chats;--",
        "a/b/../../etc/passwd",
        "ünïcödé 😀 名前",
        "%20 & ? = #",
        "x" * 200,
    ],
)
async def test_any_valid_name_is_safe_as_data(
    proxy: RunningProxy, http: aiohttp.ClientSession, name: str
) -> None:
    await create(http, proxy, name)
    assert (await get(http, proxy, name))["name"] == name
    async with http.get(base(proxy) + "/chats") as r:
        assert [c["name"] for c in (await r.json())["chats"]] == [name]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"model": "m"}, "name"),
        ({"name": "", "model": "m"}, "name is required"),
        ({"name": "   ", "model": "m"}, "name is required"),
        ({"name": "a\x00b", "model": "m"}, "control character U+0000"),
        ({"name": "tab\there", "model": "m"}, "control character U+0009"),
        ({"name": "x" * 201, "model": "m"}, "longer than 200"),
        ({"name": "n"}, "model"),
        ({"name": "n", "model": ""}, "model is required"),
        ({"name": "n", "model": "m", "temperature": 5}, "temperature"),
        ({"name": "n", "model": "m", "temperature": "hot"}, "temperature"),
        ({"name": "n", "model": "m", "max_tokens": 0}, "max_tokens"),
        ({"name": 5, "model": "m"}, "name"),
    ],
)
async def test_bad_create_parameters_are_400(
    proxy: RunningProxy, http: aiohttp.ClientSession, body: dict[str, Any], needle: str
) -> None:
    async with http.post(base(proxy) + "/chat", json=body) as r:
        await expect_error(r, 400, needle)
    async with http.get(base(proxy) + "/chats") as r:
        assert (await r.json())["chats"] == []


@pytest.mark.parametrize(
    ("raw", "needle"),
    [(b"", "empty"), (b"{nope", "not valid JSON"), (b"[1]", "object")],
)
async def test_unparsable_bodies_are_400(
    proxy: RunningProxy, http: aiohttp.ClientSession, raw: bytes, needle: str
) -> None:
    headers = {"Content-Type": "application/json"}
    for method in ("POST", "PUT"):
        async with http.request(
            method, base(proxy) + "/chat", data=raw, headers=headers
        ) as r:
            await expect_error(r, 400, needle)


async def test_missing_or_unknown_names_on_get_and_delete(
    proxy: RunningProxy, http: aiohttp.ClientSession
) -> None:
    async with http.get(base(proxy) + "/chat") as r:
        await expect_error(r, 400, "'name' is required")
    async with http.delete(base(proxy) + "/chat") as r:
        await expect_error(r, 400, "'name' is required")
    async with http.delete(base(proxy) + "/chat", params={"name": "nope"}) as r:
        await expect_error(r, 404, "no chat named 'nope'")
    async with http.get(base(proxy) + "/chat", params={"name": "a\x01"}) as r:
        await expect_error(r, 400, "control character")


async def test_delete_takes_the_name_from_a_json_body_too(
    proxy: RunningProxy, http: aiohttp.ClientSession
) -> None:
    await create(http, proxy, "bodied")
    async with http.delete(base(proxy) + "/chat", json={"name": "bodied"}) as r:
        assert r.status == 200
    async with http.get(base(proxy) + "/chats") as r:
        assert (await r.json())["chats"] == []


# ------------------------------------------------------------------ PUT


async def test_put_streams_the_reply_and_stores_the_exchange(
    proxy: RunningProxy, http: aiohttp.ClientSession, fake_upstream: FakeOpenAIUpstream
) -> None:
    await create(http, proxy, "talk", temperature=0.2, max_tokens=50)
    fake_upstream.script = Script(text="one two three")
    items = await put(http, proxy, "talk", "Hi there")
    assert items[-1] == "[DONE]"
    assert text_of(items) == "one two three"
    chunks = [i for i in items if isinstance(i, dict)]
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    sent = fake_upstream.requests[-1].body
    assert sent["model"] == "fake-model"
    assert (sent["temperature"], sent["max_tokens"]) == (0.2, 50)
    assert sent["messages"] == [{"role": "user", "content": "Hi there"}]
    chat = await get(http, proxy, "talk")
    assert chat["messages"] == [
        {"role": "user", "content": "Hi there"},
        {"role": "assistant", "content": "one two three"},
    ]
    # The next turn carries the history.
    fake_upstream.script = Script(text="four")
    await put(http, proxy, "talk", "More")
    assert [m["content"] for m in fake_upstream.requests[-1].body["messages"]] == [
        "Hi there",
        "one two three",
        "More",
    ]
    assert len((await get(http, proxy, "talk"))["messages"]) == 4
    record = proxy.records[-1]
    assert (record.protocol, record.path, record.model) == (
        "store-api",
        "/store/chat",
        "fake-model",
    )
    assert (record.status, record.upstream, record.tokens_out) == (200, "fake", 7)


async def test_put_routes_the_chat_model_like_any_request(
    proxy: RunningProxy, http: aiohttp.ClientSession, fake_upstream: FakeOpenAIUpstream
) -> None:
    await create(http, proxy, "routed", model="claude-sonnet-4-5")
    await put(http, proxy, "routed", "Hi")
    assert fake_upstream.requests[-1].body["model"] == "fake-model"


async def test_reasoning_is_streamed_but_not_stored(
    proxy: RunningProxy, http: aiohttp.ClientSession, fake_upstream: FakeOpenAIUpstream
) -> None:
    await create(http, proxy, "think")
    fake_upstream.script = Script(text="answer", reasoning="let me think")
    items = await put(http, proxy, "think", "Q")
    reasoning = "".join(
        i["choices"][0]["delta"].get("reasoning_content") or ""
        for i in items
        if isinstance(i, dict) and "choices" in i
    )
    assert reasoning == "let me think"
    assert (await get(http, proxy, "think"))["messages"][1] == {
        "role": "assistant",
        "content": "answer",
    }


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (
            {"name": "c", "message": {"role": "assistant", "content": "x"}},
            400,
            "'user'",
        ),
        ({"name": "c", "message": {"role": "user", "content": "  "}}, 400, "empty"),
        ({"name": "c", "message": {"role": "user"}}, 400, "content"),
        ({"name": "c"}, 400, "message"),
        ({"message": {"role": "user", "content": "x"}}, 400, "name"),
        ({"name": "nope", "message": {"role": "user", "content": "x"}}, 404, "nope"),
    ],
)
async def test_bad_puts_answer_in_the_envelope_and_store_nothing(
    proxy: RunningProxy,
    http: aiohttp.ClientSession,
    fake_upstream: FakeOpenAIUpstream,
    body: dict[str, Any],
    status: int,
    needle: str,
) -> None:
    await create(http, proxy, "c")
    async with http.put(base(proxy) + "/chat", json=body) as r:
        await expect_error(r, status, needle)
    assert (await get(http, proxy, "c"))["messages"] == []
    assert not fake_upstream.requests


@pytest.mark.parametrize(
    ("upstream_status", "status"), [(500, 502), (429, 429), (503, 503)]
)
async def test_upstream_refusing_before_the_reply_changes_nothing(
    proxy: RunningProxy,
    http: aiohttp.ClientSession,
    fake_upstream: FakeOpenAIUpstream,
    upstream_status: int,
    status: int,
) -> None:
    await create(http, proxy, "c")
    fake_upstream.script = Script(status=upstream_status, error_message="nope nope")
    body = {"name": "c", "message": {"role": "user", "content": "x"}}
    async with http.put(base(proxy) + "/chat", json=body) as r:
        await expect_error(r, status, "nope nope")
    assert (await get(http, proxy, "c"))["messages"] == []
    assert proxy.records[-1].status == status


@pytest.mark.parametrize(
    "script",
    [
        Script(text="alpha beta gamma delta", close_after_chunks=3),
        Script(text="alpha beta gamma delta", error_in_stream="model crashed"),
    ],
)
async def test_upstream_failing_mid_reply_keeps_user_message_and_partial_reply(
    proxy: RunningProxy,
    http: aiohttp.ClientSession,
    fake_upstream: FakeOpenAIUpstream,
    script: Script,
) -> None:
    await create(http, proxy, "c")
    fake_upstream.script = script
    items = await put(http, proxy, "c", "go")
    assert items[-1] == "[DONE]"
    error = items[-2]
    assert error["status"] == "error" and error["message"]
    partial = text_of(items)
    messages = (await get(http, proxy, "c"))["messages"]
    assert messages[0] == {"role": "user", "content": "go"}
    assert messages[1]["role"] == "assistant"
    assert messages[1]["content"] == partial
    assert messages[1]["incomplete"] is True
    assert messages[1]["error"] == error["message"]
    # The partial reply is history for the next turn, as the user saw it.
    fake_upstream.script = Script(text="ok")
    await put(http, proxy, "c", "again")
    sent = [m["content"] for m in fake_upstream.requests[-1].body["messages"]]
    # With nothing of the reply kept, the two user turns go as one message
    # (many chat templates insist that user and assistant alternate).
    assert sent == (["go", partial, "again"] if partial else ["go\nagain"])


async def test_client_disconnect_keeps_user_message_and_partial_reply(
    proxy: RunningProxy, http: aiohttp.ClientSession, fake_upstream: FakeOpenAIUpstream
) -> None:
    await create(http, proxy, "c")
    fake_upstream.script = Script(text="first second third", stall_after_chunks=3)
    body = {"name": "c", "message": {"role": "user", "content": "hello"}}
    resp = await http.put(base(proxy) + "/chat", json=body)
    got = b""
    while b"second" not in got:
        got += await resp.content.readany()
    resp.close()
    deadline = time.perf_counter() + 2
    messages: list[dict[str, Any]] = []
    while len(messages) < 2 and time.perf_counter() < deadline:
        await asyncio.sleep(0.02)
        messages = (await get(http, proxy, "c"))["messages"]
    assert messages == [
        {"role": "user", "content": "hello"},
        {
            "role": "assistant",
            "content": "first second ",
            "incomplete": True,
            "error": "the client went away",
        },
    ]
    while fake_upstream.active and time.perf_counter() < deadline:
        await asyncio.sleep(0.02)
    assert fake_upstream.active == 0
    assert proxy.records[-1].client_gone


async def test_concurrent_puts_to_one_chat_are_serialised(
    proxy: RunningProxy, http: aiohttp.ClientSession, fake_upstream: FakeOpenAIUpstream
) -> None:
    await create(http, proxy, "busy")
    await create(http, proxy, "other")
    fake_upstream.script = Script(text="a b c d", chunk_delay=0.05)
    results = await asyncio.gather(
        put(http, proxy, "busy", "one"),
        put(http, proxy, "busy", "two"),
        put(http, proxy, "other", "three"),
    )
    assert all(text_of(items) == "a b c d" for items in results)
    messages = (await get(http, proxy, "busy"))["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"] * 2
    first, second = messages[0]["content"], messages[2]["content"]
    assert {first, second} == {"one", "two"}
    # The second request saw the first exchange complete.
    histories = [
        [m["content"] for m in r.body["messages"]]
        for r in fake_upstream.requests
        if r.body["messages"][0]["content"] != "three"
    ]
    assert histories[1] == [first, "a b c d", second]
    # Another chat is not held up behind them: it went upstream before the
    # second PUT to "busy" could.
    order = [r.body["messages"][-1]["content"] for r in fake_upstream.requests]
    assert order.index("three") < order.index(second)


async def test_a_chat_deleted_mid_reply_ends_the_stream_with_an_error(
    proxy: RunningProxy, http: aiohttp.ClientSession, fake_upstream: FakeOpenAIUpstream
) -> None:
    await create(http, proxy, "gone")
    fake_upstream.script = Script(text="a b c d e", chunk_delay=0.1)
    body = {"name": "gone", "message": {"role": "user", "content": "x"}}
    async with http.put(base(proxy) + "/chat", json=body) as r:
        await r.content.readline()
        async with http.delete(base(proxy) + "/chat", params={"name": "gone"}) as d:
            assert d.status == 200
        items = sse_items(await r.read())
    assert items[-1] == "[DONE]"
    assert "deleted" in items[-2]["message"]
    async with http.get(base(proxy) + "/chats") as r:
        assert (await r.json())["chats"] == []


# ------------------------------------------------------------------ messages


async def test_delete_message_by_index(
    proxy: RunningProxy, http: aiohttp.ClientSession, fake_upstream: FakeOpenAIUpstream
) -> None:
    await create(http, proxy, "m")
    fake_upstream.script = Script(text="reply one")
    await put(http, proxy, "m", "question one")
    fake_upstream.script = Script(text="reply two")
    await put(http, proxy, "m", "question two")
    url = base(proxy) + "/chat/message"
    async with http.delete(url, json={"name": "m", "index": 1}) as r:
        assert r.status == 200
        payload = await r.json()
    assert payload == {
        "status": "success",
        "removed_message": {"role": "assistant", "content": "reply one"},
    }
    contents = [m["content"] for m in (await get(http, proxy, "m"))["messages"]]
    assert contents == ["question one", "question two", "reply two"]
    async with http.delete(url, json={"name": "m", "index": 3}) as r:
        await expect_error(r, 404, "no message at index 3 (it has 3)")
    async with http.delete(url, json={"name": "m", "index": -1}) as r:
        await expect_error(r, 400, "index")
    async with http.delete(url, json={"name": "m", "index": "1"}) as r:
        await expect_error(r, 400, "index")
    async with http.delete(url, json={"name": "m"}) as r:
        await expect_error(r, 400, "index")
    async with http.delete(url, json={"name": "nope", "index": 0}) as r:
        await expect_error(r, 404, "no chat named 'nope'")
    # Appending after a deletion keeps the order.
    fake_upstream.script = Script(text="reply three")
    await put(http, proxy, "m", "question three")
    contents = [m["content"] for m in (await get(http, proxy, "m"))["messages"]]
    assert contents[-2:] == ["question three", "reply three"]


async def test_store_survives_a_proxy_restart(
    fake_upstream: FakeOpenAIUpstream, http: aiohttp.ClientSession
) -> None:
    from support import settings_for, start_proxy

    running = await start_proxy(settings_for(fake_upstream.url))
    try:
        await create(http, running, "kept")
        await put(http, running, "kept", "remember me")
    finally:
        await running.server.stop()
    running = await start_proxy(settings_for(fake_upstream.url))
    try:
        chat = await get(http, running, "kept")
    finally:
        await running.server.stop()
    assert [m["content"] for m in chat["messages"]] == [
        "remember me",
        "Hello from the fake upstream.",
    ]


async def test_stopping_the_proxy_mid_reply_keeps_the_user_message(
    fake_upstream: FakeOpenAIUpstream, http: aiohttp.ClientSession
) -> None:
    from support import settings_for, start_proxy

    running = await start_proxy(settings_for(fake_upstream.url))
    await create(http, running, "c")
    fake_upstream.script = Script(text="a b c", stall_after_chunks=2)
    body = {"name": "c", "message": {"role": "user", "content": "hello"}}
    resp = await http.put(base(running) + "/chat", json=body)
    await resp.content.readline()
    await running.server.stop()
    resp.close()
    running = await start_proxy(settings_for(fake_upstream.url))
    try:
        messages = (await get(http, running, "c"))["messages"]
    finally:
        await running.server.stop()
    assert messages[0] == {"role": "user", "content": "hello"}
    assert messages[1]["incomplete"] is True
    assert messages[1]["error"] == "LM Bridge stopped mid-reply"


async def test_a_database_that_cannot_open_fails_the_store_not_the_proxy(
    fake_upstream: FakeOpenAIUpstream,
    http: aiohttp.ClientSession,
    lmbridge_home: Path,
    caplog: pytest.LogCaptureFixture,
    expected_errors: Callable[[str], None],
) -> None:
    expected_errors("the database is unavailable")
    from support import settings_for, start_proxy

    data = lmbridge_home / "data"
    data.mkdir()
    with sqlite3.connect(data / "lmbridge.db") as conn:
        conn.execute(
            "CREATE TABLE schema_version"
            " (version INTEGER PRIMARY KEY, name TEXT, applied_at TEXT)"
        )
        conn.execute("INSERT INTO schema_version VALUES (999, 'future', '')")
    conn.close()
    running = await start_proxy(settings_for(fake_upstream.url))
    try:
        async with http.get(base(running) + "/chats") as r:
            await expect_error(r, 503, "update LM Bridge")
        async with http.get(running.url + "/health") as r:
            assert r.status == 200
    finally:
        await running.server.stop()
    assert "the database is unavailable" in caplog.text
