"""The Sessions page's turns from the request history: the "session turns"
schema step (an index on the session key, the table of resets), the count
per session key since a time, and resets kept across a reopen; on a real
SQLite file, including one written by the previous version, one locked by
another process and one that is not a database."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from faults.dbfaults import corrupt, held_lock
from lmbridge.core import errors
from lmbridge.store.db import FILENAME, Database
from lmbridge.store.migrations import MIGRATIONS, apply_pending
from lmbridge.store.sessions import SessionResets
from lmbridge.store.usage import UsageStore
from records import finished, fresh_database

SUBAGENT = "sess-a/agent/a1"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with fresh_database(tmp_path) as database:
        yield database


@pytest.fixture
def store(db: Database) -> UsageStore:
    return UsageStore(db)


async def test_counts_per_key_with_and_without_a_reset(store: UsageStore) -> None:
    await store.add(
        [finished(100.0 + n, session_key="sess-a") for n in range(10)]
        + [finished(100.5 + n, session_key=SUBAGENT) for n in range(4)]
        + [finished(200.0 + n, session_key="sess-b") for n in range(3)]
        + [finished(150.0, session_key=None) for _ in range(5)]
    )
    everything = {"sess-a": 0.0, SUBAGENT: 0.0, "sess-b": 0.0, "never-seen": 0.0}
    assert await store.session_counts(everything) == {
        "sess-a": 10,
        SUBAGENT: 4,  # a subagent's chain is a key of its own
        "sess-b": 3,
        "never-seen": 0,
    }
    # Since a reset: received at or after it.
    assert await store.session_counts({"sess-a": 105.0, "sess-b": 300.0}) == {
        "sess-a": 5,
        "sess-b": 0,
    }
    # Before `until`, which the page splits at when its app run began.
    assert await store.session_counts({"sess-a": 102.0}, until=104.0) == {"sess-a": 2}
    assert await store.session_counts({}) == {}


async def test_many_keys_in_one_query(store: UsageStore) -> None:
    keys = [f"session-{n}" for n in range(1500)]
    await store.add(
        [finished(1000.0 + n, session_key=key) for n, key in enumerate(keys)]
        + [finished(5000.0, session_key=keys[7])]
    )
    counts = await store.session_counts(dict.fromkeys(keys, 0.0))
    assert len(counts) == 1500
    assert counts[keys[7]] == 2
    assert sum(counts.values()) == 1501


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=12),
        st.lists(st.integers(0, 50), max_size=6),
        max_size=6,
    ),
    st.integers(0, 50),
)
def test_any_key_counts_as_python_counts(
    tmp_path_factory: pytest.TempPathFactory,
    rows: dict[str, list[int]],
    since: int,
) -> None:
    """Keys with quotes, NUL, any Unicode: matched exactly."""
    path = tmp_path_factory.mktemp("keys") / FILENAME
    conn = sqlite3.connect(path, isolation_level=None)
    apply_pending(conn, path, MIGRATIONS)
    conn.executemany(
        "INSERT INTO request_history (received, session_key) VALUES (?, ?)",
        [(float(t), key) for key, times in rows.items() for t in times],
    )
    conn.close()

    async def counted() -> dict[str, int]:
        database = Database(path)
        await database.open()
        try:
            return await UsageStore(database).session_counts(
                {**dict.fromkeys(rows, float(since)), "absent 'key\"": 0.0}
            )
        finally:
            await database.close()

    expected = {k: sum(1 for t in times if t >= since) for k, times in rows.items()}
    assert asyncio.run(counted()) == {**expected, "absent 'key\"": 0}


async def test_the_count_uses_the_session_index(db: Database) -> None:
    plan = await db.fetchall(
        "EXPLAIN QUERY PLAN SELECT COUNT(*) FROM request_history"
        " WHERE session_key = ? AND received >= ?",
        ("k", 0.0),
    )
    assert any("request_history_session" in str(row) for row in plan), plan


async def test_the_step_on_a_database_of_the_previous_version(tmp_path: Path) -> None:
    """A history written before the step: its rows stay and are counted."""
    path = tmp_path / FILENAME
    names = [m.name for m in MIGRATIONS]
    previous = MIGRATIONS[: names.index("session turns")]
    conn = sqlite3.connect(path, isolation_level=None)
    apply_pending(conn, path, previous)
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO request_history (received, client, session_key, tokens_in)"
        " VALUES (?, ?, ?, ?)",
        [(5.0, "curl/8", None, 1)]
        + [(10.0 + n, "claude-cli/2", "old-session", n) for n in range(1200)],
    )
    conn.execute("COMMIT")
    conn.close()

    database = Database(path)
    await database.open()
    try:
        assert await database.schema_version() == len(MIGRATIONS)
        store = UsageStore(database)
        recent = await store.recent(2)
        assert [(r.received, r.session_key, r.tokens_in) for r in recent] == [
            (1209.0, "old-session", 1199),
            (1208.0, "old-session", 1198),
        ]
        assert await store.count() == 1201
        assert await store.session_counts({"old-session": 0.0}) == {"old-session": 1200}
        assert await SessionResets(database).all() == {}
        indexes = {
            r[0]
            for r in await database.fetchall(
                "SELECT name FROM sqlite_master WHERE type = 'index'"
            )
        }
        assert "request_history_session" in indexes
    finally:
        await database.close()


async def test_resets_are_kept_across_a_reopen(tmp_path: Path) -> None:
    async with fresh_database(tmp_path) as database:
        resets = SessionResets(database)
        await resets.mark("sess-a", 100.0)
        await resets.mark(SUBAGENT, 120.0)
        await resets.mark("sess-a", 90.0)  # an older one does not win
        await resets.mark("sess-a", 130.0)
    async with fresh_database(tmp_path) as database:
        assert await SessionResets(database).all() == {
            "sess-a": 130.0,
            SUBAGENT: 120.0,
        }


async def test_a_locked_database_still_counts_and_refuses_a_reset(
    tmp_path: Path,
) -> None:
    """Another process holds the write lock: the counts are reads, which the
    write-ahead log allows; keeping a reset is a write, which fails with
    the database's own error (no raw sqlite3 error), within its deadline."""
    async with fresh_database(tmp_path) as database:
        store = UsageStore(database)
        await store.add([finished(1.0 + n, session_key="s") for n in range(3)])
        async with held_lock(database.path):
            assert await store.session_counts({"s": 0.0}) == {"s": 3}
            started = time.monotonic()
            with pytest.raises(errors.StorageUnavailable, match=r"locked|busy"):
                await SessionResets(database).mark("s", 2.0)
            assert time.monotonic() - started < 2.0
        await SessionResets(database).mark("s", 2.0)  # works again after
        assert await SessionResets(database).all() == {"s": 2.0}


async def test_a_corrupt_database_refuses_with_storage_unavailable(
    tmp_path: Path,
) -> None:
    path = tmp_path / "data" / FILENAME
    corrupt(path)
    database = Database(path)
    with pytest.raises(errors.StorageUnavailable, match="damaged"):
        await database.open()
    try:
        with pytest.raises(errors.StorageUnavailable, match="damaged"):
            await UsageStore(database).session_counts({"s": 0.0})
        with pytest.raises(errors.StorageUnavailable, match="damaged"):
            await SessionResets(database).all()
    finally:
        await database.close()
