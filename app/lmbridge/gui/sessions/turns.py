"""Sessions: how the page counts the turns of a session without a chain
(a Chat upstream, or a session from before this start): its requests
since its reset, from the request history (`HistoryTurns`, which counts
each key's older requests once per run and then only this run's) and the
request log, which holds only the last 1,000 requests."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from lmbridge.core import errors
from lmbridge.core.events import RequestRecord
from lmbridge.core.ir import split_chain_key
from lmbridge.gui.controller import ProxyController
from lmbridge.store.dbjobs import background_jobs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredTurns:
    """The requests of sessions without a chain in the request history,
    since each one's reset, split at `started_at` (when this app run
    began): those `before` it, of which the request log holds only the
    last, and those `during` this run, written so far."""

    started_at: float
    before: Mapping[str, int]
    during: Mapping[str, int]


# Counts the stored requests of keys since a time each (None: no history).
CountStored = Callable[[Mapping[str, float]], Awaitable[StoredTurns | None]]


def reset_time(key: str, reset_at: Mapping[str, float]) -> float:
    """When chain `key` last started counting again: its own reset or its
    session's (a session's reset resets its subagents' chains too)."""
    session = split_chain_key(key)[0]
    return max(reset_at.get(key, 0.0), reset_at.get(session, 0.0))


def since_reset(record: RequestRecord, reset_at: Mapping[str, float]) -> bool:
    """Whether `record` came after its chain was last reset (if it was)."""
    return record.received >= reset_time(record.session_key or "", reset_at)


def request_turns(
    key: str,
    logged: list[RequestRecord],
    since: float,
    stored: StoredTurns | None,
) -> int:
    """The turns of session `key`, which has no chain: its requests since
    `since`. From the history where there is one: all it holds from before
    this run, and of this run the history's count or the request log's,
    whichever is more (the log has what is not written yet, or what the
    history does not keep, `usage.record = false`; the history has what
    the log let go). Without one, the request log's count (`logged`: the
    key's records in the log)."""
    recent = [r for r in logged if r.received >= since]
    if stored is None:
        return len(recent)
    this_run = sum(1 for r in recent if r.received >= stored.started_at)
    return stored.before.get(key, 0) + max(stored.during.get(key, 0), this_run)


class HistoryTurns:
    """Counts sessions' requests in the app's request history for the
    page's listings (`count`), as `StoredTurns`.

    The history from before this run does not grow while the app runs, so
    each key's count of it is read once (again after the key's reset, or
    after `forget()`, when the database changed); a listing then counts
    only this run's requests, a short indexed range per key. A request the
    history prunes while the app runs stays counted until it restarts.
    """

    def __init__(self, controller: ProxyController) -> None:
        self.controller = controller
        # key -> (since, how many requests before this run)
        self._before: dict[str, tuple[float, int]] = {}

    def forget(self) -> None:
        """Count the older history again (the database changed)."""
        self._before.clear()

    async def count(self, since: Mapping[str, float]) -> StoredTurns | None:
        """The history's counts of these keys, each since its time (None
        without a usable history: the page counts the request log then)."""
        store = self.controller.usage
        if store is None:
            return None
        started = self.controller.started_at
        try:
            if self.controller.db.state.ok:
                # What finished a moment ago is counted too; like the
                # recorder's own writes, it waits only briefly for a lock.
                with background_jobs():
                    await self.controller.flush_usage()
            uncounted = {
                key: at
                for key, at in since.items()
                if key not in self._before or self._before[key][0] != at
            }
            if uncounted:
                counted = await store.session_counts(uncounted, until=started)
                for key, count in counted.items():
                    self._before[key] = (uncounted[key], count)
            during = await store.session_counts(
                {key: max(at, started) for key, at in since.items()}
            )
        except errors.LMBridgeError as err:
            # The database's state (Overview) says what is wrong, once.
            log.debug("turns counted from the request log: %s", err.message)
            return None
        before = {key: self._before[key][1] for key in since if key in self._before}
        return StoredTurns(started, before, during)
