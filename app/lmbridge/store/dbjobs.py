"""The database's job queue: one worker thread, deadlines, and its state.

`JobQueue` is the part of `Database` (store/db.py) that runs jobs: each
job runs on the one worker thread that owns the connection, in order, and
answers within `JOB_DEADLINE` of being submitted, queue included. SQLite's
failures are classified (`store/dbstate.py`); a fault of the file raises
`StorageUnavailable` and sets `state`, logged and announced once per
change. Jobs submitted inside `background_jobs()` wait only briefly for
another process's lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from lmbridge.core import errors
from lmbridge.store import dbstate
from lmbridge.store.dbstate import DatabaseCondition, DatabaseState

log = logging.getLogger("lmbridge.store.db")

T = TypeVar("T")

# How long one statement waits for another connection's lock (SQLite's busy
# handler). Writers here and in a second process (the CLI next to the
# server) hold it for milliseconds; a lock held for a whole second is a
# backup tool or a shell with an open transaction, for which waiting longer
# would not help, and the /store API promises an answer within 2 s.
BUSY_TIMEOUT_MS = 1000
# Background writers (history, session chains) retry on their own schedule
# instead: they wait this long, so the one worker thread is never held.
BACKGROUND_BUSY_MS = 100
# Everything a caller waits for one job, queue included (see the docstring).
JOB_DEADLINE = 1.5
_background: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "lmbridge_db_background", default=False
)


@contextlib.contextmanager
def background_jobs() -> Iterator[None]:
    """Mark the jobs submitted in this context (and the tasks it starts) as
    a background writer's: they wait only briefly for another's lock."""
    token = _background.set(True)
    try:
        yield
    finally:
        _background.reset(token)


class JobQueue:
    """Runs jobs on the worker thread that owns the connection (see the
    module docstring); `Database` adds opening, closing and the queries."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        # What works and what does not, as last seen; `on_state` is called
        # (on the loop) when the condition changes.
        self.state: DatabaseState = dbstate.ok_state(path)
        self.on_state: Callable[[DatabaseState], None] | None = None
        self._busy_ms = BUSY_TIMEOUT_MS
        self._loop: asyncio.AbstractEventLoop | None = None

    async def _reopened(self) -> ThreadPoolExecutor:
        """The worker, when the database is not open (Database tries again)."""
        raise errors.LMBridgeError(f"the database {self.path} is not open")

    async def _submit(
        self,
        fn: Callable[[], T],
        *,
        write: bool = False,
        deadline: float | None = JOB_DEADLINE,
    ) -> T:
        executor = self._executor
        if executor is None:
            executor = await self._reopened()
        loop = asyncio.get_running_loop()
        busy = BACKGROUND_BUSY_MS if _background.get() else BUSY_TIMEOUT_MS
        due = None if deadline is None else time.monotonic() + deadline
        future = loop.run_in_executor(executor, self._guarded, fn, due, busy, write)
        # A late failure of a job whose caller was cancelled is logged by the
        # caller's absence, not by asyncio's "exception never retrieved".
        future.add_done_callback(_consume)
        if deadline is None:
            return await asyncio.shield(future)
        try:
            # A little past the job's own deadline: normally SQLite's busy
            # handler answers first; this catches a queue stuck behind a
            # long job (which then skips this one, see _guarded).
            async with asyncio.timeout(deadline + 0.3):
                return await asyncio.shield(future)
        except TimeoutError:
            if future.done() and not future.cancelled():
                # The job ran in time; only its caller's wake-up came late
                # (a loop starved by a busy machine: seen under qasync).
                return future.result()
            raise self._busy_error() from None

    def _busy_error(self) -> errors.StorageUnavailable:
        state = self.state
        if state.ok:
            state = dbstate.state_for(
                DatabaseCondition.LOCKED, self.path, "busy for too long"
            )
        return errors.StorageUnavailable(state.message)

    def _guarded(
        self, fn: Callable[[], T], due: float | None, busy_ms: int, write: bool
    ) -> T:
        conn = self._conn
        if due is not None:
            remaining = due - time.monotonic()
            if remaining <= 0:
                # Its caller has been answered already (a 503): skip it.
                raise self._busy_error()
            busy_ms = max(1, min(busy_ms, int(remaining * 1000)))
        if conn is not None and busy_ms != self._busy_ms:
            conn.execute(f"PRAGMA busy_timeout={busy_ms}")
            self._busy_ms = busy_ms
        try:
            result = fn()
        except errors.LMBridgeError:
            raise
        except (sqlite3.Error, OSError) as exc:
            state = dbstate.classify(exc, self.path)
            if state is None:
                log.error("database %s failed: %s", self.path, exc)
                raise errors.LMBridgeError(
                    f"the database {self.path} failed: {exc}"
                ) from None
            self._report(state)
            raise errors.StorageUnavailable(state.message) from None
        if write and not self.state.ok:
            self._report(dbstate.ok_state(self.path))
        return result

    def _report(self, state: DatabaseState) -> None:
        """From the worker thread: hand a new state to the loop."""
        loop = self._loop
        if loop is None or loop.is_closed():
            self._set_state(state)
        else:
            loop.call_soon_threadsafe(self._set_state, state)

    def _set_state(self, state: DatabaseState) -> None:
        """Keep `state`; log and announce a change of condition, once."""
        before, self.state = self.state, state
        if before.condition is state.condition:
            return
        if state.ok:
            log.info("the database %s works again", self.path)
        else:
            log.warning("%s (%s)", state.message, state.detail)
        if self.on_state is not None:
            self.on_state(state)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise errors.LMBridgeError(f"the database {self.path} is not open")
        return self._conn


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
