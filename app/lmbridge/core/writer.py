"""State writes off the answer path: one owner task per kind of write.

An answer must never wait on, or fail because of, a write of LM Bridge's
state. A `BackgroundWriter` takes writes (coroutine functions) from the
request path without awaiting them, and its one task runs them in order,
each with a bounded retry, inside the `context` it was given (the services
pass `store.dbjobs.background_jobs`: such jobs wait only briefly for another
process's lock). A write queued under the key
of one still waiting replaces it (only the newest state of a session chain
matters). A write that fails for good is reported to its `failed` callback
(which notes it on the request's record) and logged once per run of
failures, not once per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from contextlib import AbstractContextManager

from lmbridge.core import errors

log = logging.getLogger(__name__)

Write = Callable[[], Awaitable[None]]
Failed = Callable[[str], None]


class BackgroundWriter:
    """Runs queued writes in order on one task it owns.

    `submit()` from the request path; `drain()` waits until the queue is
    empty; `close()` writes what is queued (for at most `close_timeout`
    seconds) and ends the task. `attempts` tries per write, `backoff`
    seconds apart, doubling; while writes keep failing, each new one gets a
    single try until one succeeds. At most `max_pending` writes wait; past
    that a new write is refused at once (reported as failed).
    """

    def __init__(
        self,
        name: str,
        *,
        attempts: int = 3,
        backoff: float = 0.25,
        max_pending: int = 1000,
        close_timeout: float = 3.0,
        context: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext,
    ) -> None:
        self.name = name
        self.context = context
        self.attempts = attempts
        self.backoff = backoff
        self.max_pending = max_pending
        self.close_timeout = close_timeout
        self._queue: OrderedDict[Hashable, tuple[Write, Failed | None]] = OrderedDict()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._failing = False

    @property
    def failing(self) -> bool:
        """Whether the last write failed for good."""
        return self._failing

    @property
    def pending(self) -> int:
        return len(self._queue)

    def submit(self, key: Hashable, write: Write, failed: Failed | None = None) -> None:
        """Queue `write`; call on the loop. Never blocks, never raises."""
        if self._closing:
            self._give_up(failed, "LM Bridge is stopping")
            return
        if key not in self._queue and len(self._queue) >= self.max_pending:
            self._give_up(failed, f"{self.max_pending} writes already wait")
            return
        self._queue.pop(key, None)
        self._queue[key] = (write, failed)
        self._idle.clear()
        self._wake.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"lmbridge-writer-{self.name}"
            )

    def discard(self, matches: Callable[[Hashable], bool]) -> None:
        """Drop the queued writes whose key `matches` (their state is gone)."""
        for key in [k for k in self._queue if matches(k)]:
            del self._queue[key]

    async def drain(self) -> None:
        """Wait until every queued write has been tried."""
        await self._idle.wait()

    async def close(self) -> None:
        """Write what is queued (bounded by `close_timeout`), end the task."""
        self._closing = True
        task, self._task = self._task, None
        if task is None:
            return
        self._wake.set()
        try:
            async with asyncio.timeout(self.close_timeout):
                await asyncio.shield(task)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for _write, failed in self._queue.values():
            self._give_up(failed, "LM Bridge stopped before it was written")
        self._queue.clear()
        self._idle.set()

    async def _run(self) -> None:
        with self.context():
            while True:
                if not self._queue:
                    self._idle.set()
                    if self._closing:
                        return
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                _key, (write, failed) = self._queue.popitem(last=False)
                await self._write(write, failed)

    async def _write(self, write: Write, failed: Failed | None) -> None:
        tries = 1 if self._failing or self._closing else self.attempts
        for attempt in range(tries):
            try:
                await write()
            except errors.LMBridgeError as err:
                reason = err.message
            except Exception as exc:  # a bug: logged with its traceback, once
                if not self._failing:
                    log.exception("%s: a write failed", self.name)
                reason = f"{type(exc).__name__}: {exc}"
            else:
                if self._failing:
                    log.info("%s: writing again", self.name)
                    self._failing = False
                return
            if attempt + 1 < tries:
                await asyncio.sleep(self.backoff * 2**attempt)
        self._give_up(failed, reason)

    def _give_up(self, failed: Failed | None, reason: str) -> None:
        if not self._failing:
            log.warning("%s: not saved: %s", self.name, reason)
            self._failing = True
        else:
            log.debug("%s: not saved: %s", self.name, reason)
        if failed is not None:
            try:
                failed(reason)
            except Exception:
                log.exception("%s: reporting a failed write failed", self.name)
