"""The one SQLite database that every durable feature shares.

The file is `lmbridge.db` in the data directory (`Database.in_dir`), which
only the user can read (directory 0700, files 0600, `core/private.py`), kept in
WAL mode with `synchronous=NORMAL` (a committed transaction survives a crash
of the process; only a power loss may take the last few back) and foreign
keys on.

Threading: sqlite3 blocks, so ONE dedicated worker thread owns the
connection and runs every statement. The async methods hand a job to that
thread and await it. Jobs run one at a time in the order they were
submitted, so a callable given to `transaction()` never interleaves with
another; and a job that was submitted always runs to its end, even when the
coroutine awaiting it is cancelled (a client that goes away cannot cut a
write in half).

Schema: `MIGRATIONS` (`store/migrations.py`, which says how to add a step)
is the ordered list of schema steps; a step's version is its position in
the list, counted from 1. `open()` applies the steps a database has not had
yet, each in its own transaction together with its row in `schema_version`,
so a crash leaves a step either wholly applied or not at all. A store uses
the database from its own module (in `store/`), for example::

    row = await db.fetchone("SELECT id FROM sessions WHERE key = ?", (key,))
    await db.execute("DELETE FROM sessions WHERE created_at < ?", (cutoff,))

    def put(conn: sqlite3.Connection) -> int:
        cur = conn.execute("INSERT INTO sessions (key, created_at) VALUES (?, ?)",
                           (key, now_iso()))
        return cur.lastrowid or 0

    session_id = await db.transaction(put)   # BEGIN IMMEDIATE ... COMMIT

Errors: sqlite3 failures become `LMBridgeError` (HTTP 500: a fault of
ours) naming the database file; an `LMBridgeError` raised inside a
transaction callable rolls it back and passes through unchanged, which is
how a store reports "not found" or "already exists".
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from lmbridge.core import errors
from lmbridge.core.private import private_dir, private_file
from lmbridge.store.migrations import MIGRATIONS, Migration

log = logging.getLogger(__name__)

FILENAME = "lmbridge.db"
BUSY_TIMEOUT_MS = 5000

T = TypeVar("T")
Params = Sequence[Any]


def _journal_wal(conn: sqlite3.Connection) -> str:
    """Switch to WAL. Two processes opening a new file at once can make the
    switch fail with "locked" without SQLite's busy wait: retry it briefly."""
    for attempt in range(50):
        try:
            return str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 49:
                raise
            time.sleep(0.05)
    raise AssertionError("unreachable")


def now_iso() -> str:
    """The current UTC time as ISO 8601 with milliseconds, e.g. ...T12:00:00.000Z."""
    now = datetime.datetime.now(datetime.UTC)
    return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Database:
    """The SQLite file, its connection and the worker thread that owns both.

    `await open()` before use and `await close()` at shutdown (the server
    does both in its cleanup context). Methods may be called from any
    coroutine on the loop that opened the database.
    """

    def __init__(
        self, path: Path, migrations: Sequence[Migration] = MIGRATIONS
    ) -> None:
        self.path = path
        self.migrations = tuple(migrations)
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        # Why the last `open()` failed, for the errors of later calls.
        self.open_error: str | None = None

    @classmethod
    def in_dir(cls, directory: Path) -> Database:
        """The database file `lmbridge.db` in `directory` (not opened yet)."""
        return cls(directory / FILENAME)

    @property
    def is_open(self) -> bool:
        return self._executor is not None

    # ------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        """Create or open the file, set it up and apply pending migrations."""
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="lmbridge-db")
        try:
            await self._submit(self._open_in_worker)
        except BaseException as exc:
            self._executor.shutdown(wait=False)
            self._executor = None
            if isinstance(exc, errors.LMBridgeError):
                self.open_error = exc.message
            raise
        self.open_error = None

    async def close(self) -> None:
        """Finish queued work, close the connection and end the worker thread."""
        executor = self._executor
        if executor is None:
            return
        try:
            await self._submit(self._close_in_worker)
        finally:
            self._executor = None
            executor.shutdown(wait=False)

    def _open_in_worker(self) -> None:
        # Chats and the request history: the user's alone. The directory is
        # 0700 and the file 0600 from its creation; SQLite gives the -wal
        # and -shm files the database file's mode.
        try:
            private_dir(self.path.parent)
            private_file(self.path)
        except OSError as exc:
            raise errors.LMBridgeError(
                f"cannot create the database {self.path}: {exc.strerror or exc}"
                " — check that the data directory is writable"
            ) from None
        conn = sqlite3.connect(
            self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000
        )
        try:
            mode = _journal_wal(conn)
            if str(mode).lower() != "wal":
                log.warning("%s: journal mode is %s, not WAL", self.path, mode)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self._migrate(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _close_in_worker(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA optimize")
            conn.close()

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_version (
                version INTEGER PRIMARY KEY,
                name TEXT NOT NULL,
                applied_at TEXT NOT NULL
            )"""
        )
        known = len(self.migrations)
        if _version(conn) > known:
            raise errors.LMBridgeError(
                f"the database {self.path} has schema version {_version(conn)},"
                f" newer than this LM Bridge knows ({known}) — update LM Bridge"
            )
        for version, step in enumerate(self.migrations, start=1):
            # Re-checked inside the write lock: another process (a CLI command
            # next to the running server) may have applied the step meanwhile.
            conn.execute("BEGIN IMMEDIATE")
            try:
                if _version(conn) < version:
                    for statement in step.statements:
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO schema_version (version, name, applied_at)"
                        " VALUES (?, ?, ?)",
                        (version, step.name, now_iso()),
                    )
                    log.debug(
                        "%s: applied schema step %d (%s)", self.path, version, step.name
                    )
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise

    # ------------------------------------------------------------ jobs

    async def _submit(self, fn: Callable[[], T]) -> T:
        executor = self._executor
        if executor is None:
            raise errors.LMBridgeError(
                self.open_error or f"the database {self.path} is not open"
            )
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(executor, self._guarded, fn)
        # A late failure of a job whose caller was cancelled is logged by the
        # caller's absence, not by asyncio's "exception never retrieved".
        future.add_done_callback(_consume)
        return await asyncio.shield(future)

    def _guarded(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except errors.LMBridgeError:
            raise
        except sqlite3.Error as exc:
            log.error("database %s failed: %s", self.path, exc)
            raise errors.LMBridgeError(
                f"the database {self.path} failed: {exc}"
            ) from None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise errors.LMBridgeError(f"the database {self.path} is not open")
        return self._conn

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(connection)` on the worker thread, outside any transaction.

        Each statement commits on its own; use `transaction` for several
        writes that must land together.
        """
        return await self._submit(lambda: fn(self._connection()))

    async def transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(connection)` in one write transaction; commit or roll back.

        `BEGIN IMMEDIATE` takes the write lock up front, so a transaction
        that reads and then writes cannot fail half-way on a busy database.
        """

        def work() -> T:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
            except BaseException:
                _rollback(conn)
                raise
            conn.execute("COMMIT")
            return result

        return await self._submit(work)

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; the number of rows it changed."""
        return await self.run(lambda conn: conn.execute(sql, params).rowcount)

    async def fetchall(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        """Every row of a query."""
        return await self.run(lambda conn: conn.execute(sql, params).fetchall())

    async def fetchone(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None:
        """The first row of a query, or None."""
        return await self.run(lambda conn: conn.execute(sql, params).fetchone())

    async def schema_version(self) -> int:
        """The highest schema step applied."""
        return await self.run(_version)


def _version(conn: sqlite3.Connection) -> int:
    row = conn.execute(
        "SELECT COALESCE(MAX(version), 0) FROM schema_version"
    ).fetchone()
    return int(row[0])


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _rollback(conn: sqlite3.Connection) -> None:
    # SQLite rolls some failures back by itself; a second ROLLBACK would
    # raise and hide the original error.
    if conn.in_transaction:
        conn.execute("ROLLBACK")
