"""Writing finished requests to the history without slowing the proxy down.

The proxy's latency is a product feature, so the event-bus callback only
appends the record to a list. One background task, owned by the
`UsageRecorder`, writes the list in batches (every `flush_interval` seconds,
sooner once `batch_size` records wait) and prunes the history past its
retention at start and then daily. A batch that cannot be written (the
database locked by another program, read-only, full) is tried again at the
next flushes, up to `attempts` times; then it is dropped, each of its
records noting why, and the failure is logged once until writing works
again. Never an exception in the bus or the request, never a wait in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from lmbridge.core import errors
from lmbridge.core.events import REQUEST_FINISHED, EventBus, RequestRecord
from lmbridge.core.record import NoteKind
from lmbridge.store.dbjobs import background_jobs
from lmbridge.store.usage import INSERT_CHUNK, UsageStore

log = logging.getLogger(__name__)

DAY = 86400.0
# The note on a record the history could not keep, before the reason.
NOT_KEPT = "not kept in the request history: "


class UsagePolicy(Protocol):
    """What the recorder reads of the settings: the `[usage]` table
    (config.UsageSettings). Read on every use, so a change applies at once."""

    @property
    def record(self) -> bool: ...

    @property
    def retention_days(self) -> int: ...


class UsageRecorder:
    """Keeps every finished request in a `UsageStore`, in batches.

    `start()` (on the running loop) subscribes to REQUEST_FINISHED and starts
    the writer task; `close()` unsubscribes, writes what is queued and ends
    the task. While `settings.record` is false, records are not kept; the
    history is still pruned to `settings.retention_days`.
    """

    def __init__(
        self,
        bus: EventBus,
        store: UsageStore,
        settings: UsagePolicy,
        *,
        flush_interval: float = 1.0,
        batch_size: int = 200,
        max_pending: int = 10_000,
        prune_interval: float = DAY,
        attempts: int = 3,
    ) -> None:
        self.bus = bus
        self.store = store
        self.settings = settings
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self.max_pending = max_pending
        self.prune_interval = prune_interval
        self.attempts = attempts
        self._failed_flushes = 0
        self._pending: list[RequestRecord] = []
        self._dropped = 0
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._failing = False

    @property
    def pending(self) -> int:
        """Records queued and not written yet."""
        return len(self._pending)

    def start(self) -> None:
        """Subscribe and start the writer task; call on the running loop."""
        if self._task is not None or self._closing:
            return
        self._unsubscribe = self.bus.subscribe(REQUEST_FINISHED, self._on_finished)
        with background_jobs():  # its jobs never hold the database's thread
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="lmbridge-usage-recorder"
            )

    async def close(self) -> None:
        """Stop taking records, write the queued ones and end the task."""
        self._closing = True
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        task, self._task = self._task, None
        if task is not None:
            self._wake.set()
            await task
        await self.flush()

    def _on_finished(self, topic: str, payload: Any) -> None:
        # On the request path: append and nothing else that could take time.
        if isinstance(payload, RequestRecord) and self.settings.record:
            if len(self._pending) >= self.max_pending:
                self._dropped += 1
                payload.note(NoteKind.STORAGE, NOT_KEPT + "the history queue was full")
                return
            self._pending.append(payload)
            if len(self._pending) >= self.batch_size:
                self._wake.set()

    async def _run(self) -> None:
        await self.prune()
        next_prune = time.monotonic() + self.prune_interval
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.flush_interval):
                    await self._wake.wait()
            self._wake.clear()
            await self.flush()
            if time.monotonic() >= next_prune:
                await self.prune()
                next_prune = time.monotonic() + self.prune_interval

    async def flush(self) -> int:
        """Write the queued records now; how many were written.

        A failed batch waits for the next flush, `attempts` times at most
        (a stuck database must not hold memory), then is dropped with a
        note on each record; the failure is logged once until writing works.
        """
        batch, self._pending = self._pending, []
        dropped, self._dropped = self._dropped, 0
        if dropped:
            self._fail(f"{dropped} requests not kept: the history queue was full")
        if not batch:
            return 0
        written = 0
        # A transaction per INSERT_CHUNK (other database work interleaves):
        # when one fails, those before it are kept, and only the rest is
        # tried again (not written twice).
        for start in range(0, len(batch), INSERT_CHUNK):
            chunk = batch[start : start + INSERT_CHUNK]
            try:
                written += await self.store.add(chunk)
            except errors.LMBridgeError as err:
                self._retry_later(batch[start:], err.message)
                return written
            except Exception as exc:
                if not self._failing:
                    log.exception(
                        "request history: %d requests not kept", len(batch) - start
                    )
                self._failing = True
                reason = f"{type(exc).__name__}: {exc}"
                self._retry_later(batch[start:], reason, log_it=False)
                return written
        self._failed_flushes = 0
        self._recovered()
        return written

    def _retry_later(
        self, batch: list[RequestRecord], reason: str, *, log_it: bool = True
    ) -> None:
        self._failed_flushes += 1
        if self._failed_flushes < self.attempts and not self._closing:
            # Ahead of what came meanwhile, so the history keeps its order.
            self._pending = (batch + self._pending)[: self.max_pending]
            if log_it:
                self._fail(f"{len(batch)} requests not written yet: {reason}")
            return
        self._failed_flushes = 0
        for record in batch:
            record.note(NoteKind.STORAGE, NOT_KEPT + reason)
        if log_it:
            self._fail(f"{len(batch)} requests not kept: {reason}")

    async def prune(self) -> int:
        """Delete history older than the retention; how many requests."""
        cutoff = time.time() - max(self.settings.retention_days, 1) * DAY
        try:
            removed = await self.store.prune(cutoff)
        except errors.LMBridgeError as err:
            self._fail(f"not pruned: {err.message}")
            return 0
        except Exception:
            if not self._failing:
                log.exception("request history: pruning failed")
            self._failing = True
            return 0
        if removed:
            log.debug("request history: pruned %d requests", removed)
        return removed

    def _fail(self, message: str) -> None:
        if self._failing:
            log.debug("request history: %s", message)
        else:
            log.warning("request history: %s", message)
            self._failing = True

    def _recovered(self) -> None:
        if self._failing:
            log.info("request history: writing again")
            self._failing = False
