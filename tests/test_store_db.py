"""The shared SQLite database: setup, migrations, the worker thread, errors."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from lmbridge import config
from lmbridge.core import errors
from lmbridge.store.db import FILENAME, Database
from lmbridge.store.migrations import MIGRATIONS, Migration


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(tmp_path / "data" / FILENAME)
    await database.open()
    yield database
    await database.close()


async def test_open_creates_file_in_wal_with_foreign_keys(db: Database) -> None:
    assert db.path.exists()
    assert (await db.fetchone("PRAGMA journal_mode"))[0] == "wal"  # type: ignore[index]
    assert (await db.fetchone("PRAGMA foreign_keys"))[0] == 1  # type: ignore[index]
    # synchronous=NORMAL is 1
    assert (await db.fetchone("PRAGMA synchronous"))[0] == 1  # type: ignore[index]
    assert await db.schema_version() == len(MIGRATIONS)


def test_in_dir_names_the_data_dir_file(lmbridge_home: Path) -> None:
    db = Database.in_dir(config.data_dir())
    assert db.path == lmbridge_home / "data" / "lmbridge.db"


async def test_migrations_apply_once_and_new_steps_later(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    first = [Migration("a", ("CREATE TABLE a (x INTEGER)",))]
    db = Database(path, first)
    await db.open()
    await db.execute("INSERT INTO a VALUES (1)")
    await db.close()
    second = [
        *first,
        Migration("b", ("CREATE TABLE b (y TEXT)", "CREATE INDEX b_y ON b(y)")),
    ]
    db = Database(path, second)
    await db.open()
    try:
        assert await db.schema_version() == 2
        assert await db.fetchall("SELECT x FROM a") == [(1,)]
        rows = await db.fetchall(
            "SELECT version, name FROM schema_version ORDER BY version"
        )
        assert rows == [(1, "a"), (2, "b")]
    finally:
        await db.close()


async def test_a_failing_step_is_rolled_back_whole(
    tmp_path: Path, expected_errors: Callable[[str], None]
) -> None:
    expected_errors("THIS")
    path = tmp_path / "x.db"
    broken = [
        Migration("ok", ("CREATE TABLE ok (x INTEGER)",)),
        Migration("bad", ("CREATE TABLE half (x INTEGER)", "THIS IS NOT SQL")),
    ]
    db = Database(path, broken)
    with pytest.raises(errors.LMBridgeError) as info:
        await db.open()
    assert str(path) in info.value.message
    assert not db.is_open
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        versions = conn.execute("SELECT version FROM schema_version").fetchall()
    conn.close()
    assert "ok" in tables and "half" not in tables
    assert versions == [(1,)]


async def test_a_newer_database_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    db = Database(path)
    await db.open()
    await db.close()
    older = Database(path, [])
    with pytest.raises(errors.LMBridgeError) as info:
        await older.open()
    assert "update LM Bridge" in info.value.message


async def test_transaction_rolls_back_and_passes_our_errors_through(
    db: Database,
) -> None:
    await db.execute("CREATE TABLE t (x INTEGER)")

    def work(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t VALUES (1)")
        raise errors.Conflict("no")

    with pytest.raises(errors.Conflict):
        await db.transaction(work)
    assert await db.fetchall("SELECT x FROM t") == []
    assert (
        await db.transaction(lambda c: c.execute("INSERT INTO t VALUES (2)").rowcount)
        == 1
    )
    assert await db.fetchall("SELECT x FROM t") == [(2,)]


async def test_sqlite_failures_become_our_error_naming_the_file(
    db: Database, expected_errors: Callable[[str], None]
) -> None:
    expected_errors("no such table")
    with pytest.raises(errors.LMBridgeError) as info:
        await db.execute("SELECT * FROM no_such_table")
    assert info.value.status == 500
    assert str(db.path) in info.value.message
    assert "no_such_table" in info.value.message


async def test_every_job_runs_on_one_worker_thread(db: Database) -> None:
    idents = await asyncio.gather(
        *(db.run(lambda _c: threading.get_ident()) for _ in range(20))
    )
    assert len(set(idents)) == 1
    assert idents[0] != threading.get_ident()


async def test_a_submitted_write_completes_when_its_caller_is_cancelled(
    db: Database,
) -> None:
    await db.execute("CREATE TABLE t (x INTEGER)")
    gate = threading.Event()
    blocker = asyncio.ensure_future(db.run(lambda _c: gate.wait(5)))
    writer = asyncio.ensure_future(db.execute("INSERT INTO t VALUES (7)"))
    await asyncio.sleep(0.05)
    writer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await writer
    gate.set()
    await blocker
    assert await db.fetchall("SELECT x FROM t") == [(7,)]


async def test_closed_database_refuses_work(tmp_path: Path) -> None:
    db = Database(tmp_path / "x.db")
    await db.open()
    await db.close()
    await db.close()  # twice is fine
    with pytest.raises(errors.LMBridgeError) as info:
        await db.fetchall("SELECT 1")
    assert "not open" in info.value.message


async def test_two_databases_on_one_file_migrate_once(tmp_path: Path) -> None:
    # As when `lmbridge chats import` runs next to the server.
    path = tmp_path / "x.db"
    one, two = Database(path), Database(path)
    await asyncio.gather(one.open(), two.open())
    try:
        rows = await one.fetchall("SELECT version FROM schema_version")
        assert rows == [(v,) for v in range(1, len(MIGRATIONS) + 1)]
    finally:
        await one.close()
        await two.close()


async def test_none_and_booleans_are_stored_as_null_and_integers(db: Database) -> None:
    # store/db.py registers them with sqlite3's adapters (binding them is
    # then a table lookup, not a failed attribute lookup): same values.
    assert sqlite3.adapters[type(None), sqlite3.PrepareProtocol](None) is None
    assert sqlite3.adapters[bool, sqlite3.PrepareProtocol](True) == 1
    await db.execute("CREATE TABLE t (a, b, c, d)")
    await db.execute("INSERT INTO t VALUES (?, ?, ?, ?)", (None, True, False, 7))
    row = await db.fetchone("SELECT a, b, c, d, typeof(a), typeof(b) FROM t")
    assert row == (None, 1, 0, 7, "null", "integer")
    assert await db.fetchone("SELECT count(*) FROM t WHERE a IS NULL AND b") == (1,)
