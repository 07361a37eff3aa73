"""The fault tier: a bad database never breaks a model call, and loses nothing.

For each fault made from outside the process (a lock held by another
process, a corrupt file, a read-only data directory, a full disk), every
front door answers streamed and whole, with and without a session chain,
exactly as the upstream gave it and without waiting on the database; the
`/store` API answers 503 in its own shape within 2 s, naming the file and
the fix; the database's state says what is wrong; and everything stored
before the fault is read back afterwards.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from fakes.openai_upstream import FakeOpenAIUpstream
from faults.dbfaults import (
    corrupt,
    db_rows,
    file_bytes,
    fill,
    held_lock,
    read_only,
    small_disk,
)
from faults.doors import DOORS, MODEL, call
from lmbridge.server.services import Services
from lmbridge.store.dbstate import DatabaseCondition
from support import RunningProxy, settings_for, start_proxy

# Generous against a loaded machine; a state write used to cost 5 s.
NO_WAIT = 1.0
STORE_BOUND = 2.0


@pytest.fixture
def data_dir(lmbridge_home: Path) -> Path:
    return lmbridge_home / "data"


@pytest.fixture
def db_path(data_dir: Path) -> Path:
    return data_dir / "lmbridge.db"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def start(fake: FakeOpenAIUpstream) -> RunningProxy:
    # A Responses upstream: keyed turns through translating doors chain.
    return await start_proxy(settings_for(fake.url, upstream_extra='api = "responses"'))


def services(proxy: RunningProxy) -> Services:
    assert proxy.server.services is not None
    return proxy.server.services


async def settle(proxy: RunningProxy) -> None:
    """Let the background writers try what they have."""
    svc = services(proxy)
    await svc.sessions.writer.drain()
    await svc.recorder.flush()


async def store_before(http: aiohttp.ClientSession, proxy: RunningProxy) -> Any:
    """Store a chat with one exchange, a session chain and some history;
    what the store says of the chat."""
    store = proxy.url + "/store"
    async with http.post(store + "/chat", json={"name": "kept", "model": MODEL}) as r:
        assert r.status == 201, await r.text()
    put = {"name": "kept", "message": {"role": "user", "content": "remember me"}}
    async with http.put(store + "/chat", json=put) as r:
        assert r.status == 200
        await r.read()
    out = await call(proxy.url, "anthropic", False, session="before-the-fault")
    assert out.status == 200
    await settle(proxy)
    async with http.get(store + "/chat", params={"name": "kept"}) as r:
        return (await r.json())["chat"]


def stored_counts(db_path: Path) -> tuple[int, int]:
    """(session chains, requests in the history) in the file."""
    sessions = db_rows(db_path, "SELECT COUNT(*) FROM sessions")[0][0]
    history = db_rows(db_path, "SELECT COUNT(*) FROM request_history")[0][0]
    return sessions, history


async def read_back(
    http: aiohttp.ClientSession,
    proxy: RunningProxy,
    chat: Any,
    db_path: Path,
    counts: tuple[int, int],
) -> None:
    async with http.get(proxy.url + "/store/chat", params={"name": "kept"}) as r:
        assert r.status == 200
        assert (await r.json())["chat"] == chat
    sessions, history = stored_counts(db_path)
    assert sessions >= counts[0] and history >= counts[1]
    chains = db_rows(db_path, "SELECT key FROM sessions")
    assert ("before-the-fault",) in chains


async def every_door_answers(proxy: RunningProxy, fake: FakeOpenAIUpstream) -> None:
    """Every door, whole and streamed, with and without a session chain:
    the upstream's answer, as it gave it, without waiting."""
    for door in DOORS:
        for stream in (False, True):
            for session in (None, f"s-{door}-{stream}"):
                started = time.monotonic()
                out = await call(proxy.url, door, stream, session)
                took = time.monotonic() - started
                case = f"{door} stream={stream} session={session}"
                assert out.status == 200, (case, out.raw.body[:300])
                assert out.error is None, case
                assert out.text == fake.script.text, case
                assert took < NO_WAIT, (case, took)
    await settle(proxy)


async def store_answers_503(
    http: aiohttp.ClientSession,
    proxy: RunningProxy,
    db_path: Path,
    *,
    reads_work: bool,
    words: str,
) -> None:
    """Writes (and reads, unless they work) answer 503 in the envelope in
    time, naming the file; the fix is in `words`."""
    store = proxy.url + "/store"
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/chat", {"json": {"name": "new", "model": MODEL}}),
        (
            "PUT",
            "/chat",
            {"json": {"name": "kept", "message": {"role": "user", "content": "x"}}},
        ),
        ("GET", "/chats", {}),
        ("GET", "/chat", {"params": {"name": "kept"}}),
    ]
    for method, path, kwargs in calls:
        started = time.monotonic()
        async with http.request(method, store + path, **kwargs) as r:
            payload = await r.json()
            status = r.status
        took = time.monotonic() - started
        assert took < STORE_BOUND, (method, path, took)
        if method == "GET" and reads_work:
            assert status == 200, (path, payload)
            continue
        assert status == 503, (method, path, payload)
        assert payload["status"] == "error"
        assert str(db_path) in payload["message"]
        assert words in payload["message"], payload["message"]


async def test_a_lock_held_by_another_process(
    fake_upstream: FakeOpenAIUpstream,
    http: aiohttp.ClientSession,
    db_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    proxy = await start(fake_upstream)
    try:
        chat = await store_before(http, proxy)
        counts = stored_counts(db_path)
        async with held_lock(db_path):
            await every_door_answers(proxy, fake_upstream)
            state = services(proxy).database_state
            assert state.condition is DatabaseCondition.LOCKED
            assert str(db_path) in state.message
            await store_answers_503(
                http, proxy, db_path, reads_work=True, words="close that program"
            )
            # A chain whose save failed: noted on its record.
            record = next(
                r
                for r in reversed(proxy.records)
                if r.session_key == "s-anthropic-False"
            )
            assert any("chain not saved" in n for n in record.note_texts), (
                record.note_texts
            )
        # Said once by each part that met it, not once per request.
        said = collections.Counter(
            r.name for r in caplog.records if r.levelno >= logging.WARNING
        )
        assert said and max(said.values()) == 1, said
        # The lock is gone: writes work again, and nothing was lost.
        async with http.post(
            proxy.url + "/store/chat", json={"name": "after", "model": MODEL}
        ) as r:
            assert r.status == 201
        assert services(proxy).database_state.ok
        await read_back(http, proxy, chat, db_path, counts)
    finally:
        await proxy.server.stop()


async def test_a_corrupt_file_is_kept_and_can_be_moved_aside(
    fake_upstream: FakeOpenAIUpstream,
    http: aiohttp.ClientSession,
    db_path: Path,
    data_dir: Path,
) -> None:
    damaged = corrupt(db_path)
    proxy = await start(fake_upstream)
    try:
        state = services(proxy).database_state
        assert state.condition is DatabaseCondition.CORRUPT
        await every_door_answers(proxy, fake_upstream)
        await store_answers_503(
            http, proxy, db_path, reads_work=False, words="move it aside"
        )
        assert file_bytes(db_path) == damaged  # nothing written over it
        kept = await services(proxy).reset_database()
        assert kept.parent == data_dir and file_bytes(kept) == damaged
        assert services(proxy).database_state.ok
        async with http.post(
            proxy.url + "/store/chat", json={"name": "fresh", "model": MODEL}
        ) as r:
            assert r.status == 201
        await every_door_answers(proxy, fake_upstream)
        assert db_rows(db_path, "SELECT COUNT(*) FROM sessions")[0][0] > 0
    finally:
        await proxy.server.stop()


async def test_a_read_only_data_directory(
    fake_upstream: FakeOpenAIUpstream,
    http: aiohttp.ClientSession,
    db_path: Path,
    data_dir: Path,
) -> None:
    with small_disk(data_dir):
        proxy = await start(fake_upstream)
        try:
            chat = await store_before(http, proxy)
        finally:
            await proxy.server.stop()
        counts = stored_counts(db_path)
        read_only(data_dir)
        proxy = await start(fake_upstream)
        try:
            state = services(proxy).database_state
            assert state.condition is DatabaseCondition.READ_ONLY, state
            await every_door_answers(proxy, fake_upstream)
            await store_answers_503(
                http, proxy, db_path, reads_work=True, words="writable"
            )
        finally:
            await proxy.server.stop()
        subprocess_rw(data_dir)
        proxy = await start(fake_upstream)
        try:
            await read_back(http, proxy, chat, db_path, counts)
        finally:
            await proxy.server.stop()


def subprocess_rw(directory: Path) -> None:
    import subprocess

    subprocess.run(["mount", "-o", "remount,rw", str(directory)], check=True)


async def test_a_full_disk(
    fake_upstream: FakeOpenAIUpstream,
    http: aiohttp.ClientSession,
    db_path: Path,
    data_dir: Path,
) -> None:
    with small_disk(data_dir):
        proxy = await start(fake_upstream)
        try:
            chat = await store_before(http, proxy)
            counts = stored_counts(db_path)
            filler = fill(data_dir)
            await every_door_answers(proxy, fake_upstream)
            await store_answers_503(
                http, proxy, db_path, reads_work=True, words="free some space"
            )
            assert services(proxy).database_state.condition is DatabaseCondition.FULL
            filler.unlink()
            async with http.post(
                proxy.url + "/store/chat", json={"name": "after", "model": MODEL}
            ) as r:
                assert r.status == 201
            assert services(proxy).database_state.ok
            await read_back(http, proxy, chat, db_path, counts)
        finally:
            await proxy.server.stop()


async def test_many_keyed_turns_at_once_do_not_stall_on_a_lock(
    fake_upstream: FakeOpenAIUpstream, db_path: Path
) -> None:
    """Many keyed turns at once while another process holds the lock: all
    answer promptly (the writers queue and coalesce, nothing piles up)."""
    proxy = await start(fake_upstream)
    try:
        await call(proxy.url, "anthropic", False, session="warm")
        async with held_lock(db_path):
            started = time.monotonic()
            outs = await asyncio.gather(
                *(
                    call(proxy.url, door, stream, session=f"many-{n % 5}")
                    for n in range(40)
                    for door, stream in [(DOORS[n % 4], bool(n % 2))]
                )
            )
            assert all(o.status == 200 and o.error is None for o in outs)
            assert time.monotonic() - started < 4 * NO_WAIT
    finally:
        await proxy.server.stop()
