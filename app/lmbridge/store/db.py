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

Errors: a database that cannot be used (locked by another process,
damaged, read-only, on a full disk: `store/dbstate.py`) raises
`StorageUnavailable` (HTTP 503) with a message naming the file and the fix,
and sets `state`, which the CLI and the GUI show; the change is logged once,
not per call. Other sqlite3 failures become `LMBridgeError` (HTTP 500: a
fault of ours) naming the file. An `LMBridgeError` raised inside a
transaction callable rolls it back and passes through unchanged, which is
how a store reports "not found" or "already exists".

Time (`store/dbjobs.py`): every job answers within `JOB_DEADLINE` of being
submitted, queue included: a caller (the `/store` API) gets its answer or a
503 within 2 s, never a 10 s hang behind another process's lock. Jobs
submitted inside
`background_jobs()` (the request history, session chains: writers with an
owner task that retries them later) wait only briefly for a lock, so they
never hold the one worker thread while an API call queues behind them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from lmbridge.core import errors
from lmbridge.core.private import private_dir, private_file
from lmbridge.store import dbstate
from lmbridge.store.dbjobs import BUSY_TIMEOUT_MS, JobQueue
from lmbridge.store.dbjobs import background_jobs as background_jobs
from lmbridge.store.dbstate import DatabaseCondition, DatabaseState
from lmbridge.store.migrations import (
    MIGRATIONS,
    Migration,
    apply_pending,
    rollback,
    schema_version,
)
from lmbridge.store.migrations import now_iso as now_iso

log = logging.getLogger(__name__)

FILENAME = "lmbridge.db"
# Write-ahead log checkpoints: SQLite's automatic PASSIVE checkpoint after a
# commit that leaves the log over 1000 pages (~4 MB). PASSIVE never waits
# for a lock, so no answer or API call ever waits on a checkpoint; a reader
# in another process that pins the log only lets it grow until it lets go.
# `journal_size_limit` then truncates the file back, so a full disk is not
# made worse by a log that once grew. The last connection to close
# checkpoints everything and removes the log.
WAL_AUTOCHECKPOINT_PAGES = 1000
WAL_SIZE_LIMIT_BYTES = 8 * 1024 * 1024
# How often a database that failed to open is tried again on use.
REOPEN_INTERVAL = 2.0

# sqlite3 binds int, float, str and bytearray as they are, and looks every
# other parameter up as something to adapt: it asks its protocol class for
# `__adapt__`, and the AttributeError that the lookup raises and clears
# costs more than the rest of the value's binding. A history row holds about
# nine None and bool values, so that was ~18,000 instructions of the writer
# thread per request (callgrind, bench/count_instructions.py). Found in the
# adapters' table, None and bool are bound at once, as before: NULL, 0/1.
_NOTHING: dict[None, None] = {}
sqlite3.register_adapter(type(None), _NOTHING.get)  # a C callable: None -> None
sqlite3.register_adapter(bool, int)

T = TypeVar("T")
Params = Sequence[Any]


def _journal_wal(conn: sqlite3.Connection) -> str:
    """Switch to WAL. Two processes opening a new file at once can make the
    switch fail with "locked" without SQLite's busy wait: retry it briefly."""
    for attempt in range(20):
        try:
            return str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 19:
                raise
            time.sleep(0.05)
    raise AssertionError("unreachable")


class Database(JobQueue):
    """The SQLite file, its connection and the worker thread that owns both.

    `await open()` before use and `await close()` at shutdown (the server
    does both in its cleanup context). Methods may be called from any
    coroutine on the loop that opened the database.
    """

    def __init__(
        self, path: Path, migrations: Sequence[Migration] = MIGRATIONS
    ) -> None:
        super().__init__(path)
        self.migrations = tuple(migrations)
        # Why the last `open()` failed, for the errors of later calls.
        self.open_error: str | None = None
        self._opening: asyncio.Lock | None = None
        self._closed = False
        self._last_open_attempt = 0.0

    @classmethod
    def in_dir(cls, directory: Path) -> Database:
        """The database file `lmbridge.db` in `directory` (not opened yet)."""
        return cls(directory / FILENAME)

    @property
    def is_open(self) -> bool:
        return self._executor is not None

    # ------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        """Create or open the file, set it up and apply pending migrations.

        Raises `StorageUnavailable` (and sets `state`) when the file cannot
        be used; later calls try again, at most every `REOPEN_INTERVAL`.
        """
        self._closed = False
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            await self._open_locked()

    async def _open_locked(self) -> None:
        if self._executor is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._last_open_attempt = time.monotonic()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="lmbridge-db")
        try:
            # No deadline: an open that outlived its caller would leave a
            # connection behind. It is bounded by the busy timeout anyway.
            await self._submit(self._open_in_worker, write=True, deadline=None)
        except BaseException as exc:
            self._executor.shutdown(wait=False)
            self._executor = None
            if isinstance(exc, errors.LMBridgeError):
                self.open_error = exc.message
                if not isinstance(exc, errors.StorageUnavailable):
                    # A newer schema, say: not usable either, and said so.
                    self._set_state(
                        DatabaseState(
                            condition=DatabaseCondition.UNAVAILABLE,
                            path=str(self.path),
                            message=exc.message,
                            detail=exc.message,
                        )
                    )
                    raise errors.StorageUnavailable(exc.message) from None
            raise
        self.open_error = None
        if not dbstate.writable(self.path):
            # SQLite opens a read-only file for reading without a word: say
            # it now rather than at the first write.
            detail = "the file or its directory is read-only"
            self._set_state(
                dbstate.state_for(DatabaseCondition.READ_ONLY, self.path, detail)
            )

    async def close(self) -> None:
        """Finish queued work, close the connection and end the worker thread."""
        self._closed = True
        executor = self._executor
        if executor is None:
            return
        try:
            await self._submit(self._close_in_worker, deadline=None)
        finally:
            self._executor = None
            executor.shutdown(wait=False)

    async def move_aside(self) -> Path:
        """Close the database, keep its file under a dated name next to it
        (with its write-ahead log, so it can still be opened) and start a
        fresh, empty one at the usual path. Returns where the old file went.

        Meant for a damaged file; a locked one moves too (the program that
        holds it keeps the old file). Raises `StorageUnavailable` when the
        file cannot be renamed or the fresh one not created.
        """
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            executor, self._executor = self._executor, None
            if executor is not None:
                try:
                    await asyncio.get_running_loop().run_in_executor(
                        executor, self._close_in_worker
                    )
                finally:
                    executor.shutdown(wait=False)
            try:
                kept = dbstate.move_files_aside(self.path)
            except OSError as exc:
                state = dbstate.classify(exc, self.path)
                assert state is not None
                self._set_state(state)
                raise errors.StorageUnavailable(
                    f"the database {self.path} could not be moved aside: {exc}"
                ) from None
            log.warning("the database %s was moved aside to %s", self.path, kept)
            self._closed = False
            await self._open_locked()
        return kept

    def _open_in_worker(self) -> None:
        # Chats and the request history: the user's alone. The directory is
        # 0700 and the file 0600 from its creation; SQLite gives the -wal
        # and -shm files the database file's mode. An OSError here (a
        # read-only or full file system) is classified like SQLite's own.
        private_dir(self.path.parent)
        private_file(self.path)
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
            conn.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
            conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
            self._busy_ms = BUSY_TIMEOUT_MS
            apply_pending(conn, self.path, self.migrations)
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

    # ------------------------------------------------------------ jobs

    async def _reopened(self) -> ThreadPoolExecutor:
        """The worker of a database that failed to open, if it opens now."""
        wait = REOPEN_INTERVAL - (time.monotonic() - self._last_open_attempt)
        if self._closed or self._loop is None or wait > 0:
            raise self._not_open()
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._executor is None:
                await self._open_locked()
        if self._executor is None:
            raise self._not_open()
        return self._executor

    def _not_open(self) -> errors.LMBridgeError:
        if not self.state.ok:
            return errors.StorageUnavailable(self.state.message)
        return errors.LMBridgeError(
            self.open_error or f"the database {self.path} is not open"
        )

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(connection)` on the worker thread, outside any transaction.

        Each statement commits on its own; use `transaction` for several
        writes that must land together.
        """
        return await self._submit(lambda: fn(self._connection()))

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(connection)` in one read transaction: a consistent view
        of several queries that takes no write lock, so it works while
        another process holds that lock (write-ahead log)."""

        def work() -> T:
            conn = self._connection()
            conn.execute("BEGIN DEFERRED")
            try:
                return fn(conn)
            finally:
                rollback(conn)

        return await self._submit(work)

    async def check_writable(self) -> None:
        """Raise `StorageUnavailable` unless a write could start now (takes
        the write lock and lets it go at once)."""

        def probe() -> None:
            # SQLite starts a write on a read-only file or a full disk, and
            # fails only when it writes: ask the file system first.
            condition = dbstate.cannot_write(self.path)
            if condition is not None:
                raise sqlite3.OperationalError(condition)
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            rollback(conn)

        await self._submit(probe, write=True)

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
                rollback(conn)
                raise
            conn.execute("COMMIT")
            return result

        return await self._submit(work, write=True)

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; the number of rows it changed."""
        return await self._submit(
            lambda: self._connection().execute(sql, params).rowcount, write=True
        )

    async def fetchall(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        """Every row of a query."""
        return await self.run(lambda conn: conn.execute(sql, params).fetchall())

    async def fetchone(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None:
        """The first row of a query, or None."""
        return await self.run(lambda conn: conn.execute(sql, params).fetchone())

    async def schema_version(self) -> int:
        """The highest schema step applied."""
        return await self.run(schema_version)
