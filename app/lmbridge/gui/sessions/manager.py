"""Sessions: what the Sessions page shows and changes, from the proxy's
`SessionManager` (chains on Responses upstreams: turns, upstream bytes saved
by sending only what is new) plus session keys seen in the request log that
have no chain (their turns: their requests in the request history, since a
reset made here), and for one chain its turns (the log's records of it:
prompt tokens, cached, kept, what changed). `SessionsManager` is the page's
one way to the proxy: it owns the rows and keeps them current.

A reset made here is kept in the database (`store/sessions.SessionResets`),
so a reset session still counts from its reset after a restart. Without a
usable database, turns are counted from the request log (its last 1,000
requests) and resets last until the app quits, as they did before either
was stored."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from PySide6.QtCore import QObject, QTimer, Signal

from lmbridge.core import errors
from lmbridge.core.events import RequestRecord
from lmbridge.core.ir import split_chain_key
from lmbridge.core.sessions import SessionSettings
from lmbridge.gui import message
from lmbridge.gui.controller import ProxyController
from lmbridge.gui.sessions.turns import (
    CountStored,
    HistoryTurns,
    request_turns,
    reset_time,
    since_reset,
)
from lmbridge.gui.tasks import Tasks
from lmbridge.store.sessions import SessionResets
from lmbridge.upstreams.sessions import SessionManager

log = logging.getLogger(__name__)

LISTING = "Listing the sessions"
RELOAD_MS = 500


def ago(stamp: float, now: float | None = None) -> str:
    seconds = max(0.0, (now or time.time()) - stamp)
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min ago"
    if seconds < 86400:
        return f"{seconds // 3600:.0f} h ago"
    return time.strftime("%Y-%m-%d", time.localtime(stamp))


@dataclass
class SessionRow:
    key: str
    client: str
    upstream: str
    model: str
    turns: int
    last_seen: float
    bytes_saved: int
    settings: SessionSettings | None
    # When its turns start counting (a reset made here); 0.0: never reset.
    counted_since: float = 0.0

    @property
    def session(self) -> str:
        """The session this row belongs to (its own key for a main agent)."""
        return split_chain_key(self.key)[0]

    @property
    def agent(self) -> str | None:
        """The subagent whose chain this row is; None for the main agent."""
        return split_chain_key(self.key)[1]

    def key_text(self) -> str:
        """The key as the table shows it: a subagent under its session."""
        return f"  └ subagent {self.agent}" if self.agent else self.key

    def override_text(self) -> str:
        s = self.settings
        if s is None:
            return ""
        parts = []
        if s.model_override:
            parts.append(f"model {s.model_override}")
        if s.allowed_tools is not None:
            parts.append(f"tools: {', '.join(s.allowed_tools) or 'none'}")
        return "; ".join(parts)


async def session_rows(
    manager: SessionManager,
    seen: list[RequestRecord],
    reset_at: Mapping[str, float] | None = None,
    count_stored: CountStored | None = None,
) -> list[SessionRow]:
    """Chained sessions, then keys seen in requests without a chain: their
    turns are their requests since their reset (`reset_at`, by the key
    reset), counted in the request history by `count_stored` and, where it
    gives nothing, in `seen` (the request log: the history's last requests
    read at start and every request since)."""
    resets = reset_at or {}
    rows = [
        SessionRow(
            s.key,
            s.client,
            s.upstream,
            s.model,
            s.turns,
            s.last_seen,
            s.bytes_saved,
            manager.settings_for(s.session),
        )
        for s in await manager.sessions()
    ]
    known = {r.key for r in rows}
    by_key: dict[str, list[RequestRecord]] = {}
    for record in seen:
        key = record.session_key
        if key and key not in known:
            by_key.setdefault(key, []).append(record)
    since = {key: reset_time(key, resets) for key in by_key}
    stored = await count_stored(since) if count_stored and since else None
    for key, records in by_key.items():
        record = records[-1]
        rows.append(
            SessionRow(
                key,
                record.client,
                record.upstream,
                record.target or record.model,
                request_turns(key, records, since[key], stored),
                record.received,
                0,
                manager.settings_for(split_chain_key(key)[0]),
                since[key],
            )
        )
    return grouped(rows)


def grouped(rows: list[SessionRow]) -> list[SessionRow]:
    """Sessions by last activity, each followed by its subagents' chains
    (Claude Code's subagents share their session's id)."""
    latest: dict[str, float] = {}
    for row in rows:
        latest[row.session] = max(latest.get(row.session, 0.0), row.last_seen)
    return sorted(
        rows,
        key=lambda r: (
            -latest[r.session],
            r.session,
            r.agent is not None,
            -r.last_seen,
        ),
    )


class SeenRequests(Protocol):
    """The request log (`requests.manager.RequestLog`) as sessions read it."""

    def session_records(self) -> list[RequestRecord]: ...


class SessionsManager(QObject):
    """The sessions of the running proxy, kept current: listed again (with
    the session keys the request log has seen) when a request with a
    session key finishes, at most every `RELOAD_MS`, when the proxy starts
    or stops, and after a change made here. Views redraw on `changed`."""

    changed = Signal()

    def __init__(
        self,
        controller: ProxyController,
        log: SeenRequests,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.log = log
        self.tasks = Tasks("sessions")
        self.rows: list[SessionRow] = []
        # When a session was reset here: its turns count again from then.
        # Kept in the database too, read back once it can be.
        self.reset_at: dict[str, float] = {}
        self.resets = SessionResets(controller.db)
        self._resets_read = False
        self.history = HistoryTurns(controller)
        self.loaded = False  # listed at least once since the proxy started
        self._again = False  # list again once the listing under way ends
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(RELOAD_MS)
        self._timer.timeout.connect(self.refresh)
        controller.requestFinished.connect(self._on_request)
        controller.phaseChanged.connect(self.refresh)
        controller.databaseChanged.connect(self._on_database)

    @property
    def available(self) -> bool:
        """True while the proxy runs (sessions live in its services)."""
        return self.controller.services is not None

    def service(self) -> SessionManager:
        state = self.controller.services
        if state is None:
            raise errors.UpstreamUnavailable(
                "the proxy is stopped — start it on the Overview page to see and "
                "change sessions"
            )
        return state.sessions

    def _on_request(self, record: RequestRecord) -> None:
        if record.session_key and not self._timer.isActive():
            self._timer.start()

    def _on_database(self) -> None:
        # A fresh file, or one that works again: count and read it anew.
        self.history.forget()
        self._resets_read = False
        if self.available:
            self.refresh()

    def refresh(self) -> None:
        """List the sessions again: now, or right after the listing under
        way. One listing at a time: a cancelled listing's database reads
        would still run, and piled up they held the one database worker
        (a Reset behind them failed as "busy for too long")."""
        self._timer.stop()
        if not self.available:
            self.tasks.cancel(LISTING)
            self._again = False
            self.rows, self.loaded = [], False
            self.changed.emit()
            return
        if self.tasks.running(LISTING):
            self._again = True
            return
        self.tasks.start(self._list(), what=LISTING).add_done_callback(self._listed)

    def _listed(self, _task: object) -> None:
        if self._again:
            self._again = False
            self.refresh()

    async def _list(self) -> None:
        service = self.service()
        await self._read_resets()
        self.rows = await session_rows(
            service, self.log.session_records(), self.reset_at, self.history.count
        )
        self.loaded = True
        self.changed.emit()

    async def _read_resets(self) -> None:
        """The resets kept in the database, once (again at the next listing
        while it cannot be read)."""
        if self._resets_read or not self.controller.db.is_open:
            return
        try:
            kept = await self.resets.all()
        except errors.LMBridgeError as err:
            log.debug("session resets not read yet: %s", err.message)
            return
        for key, at in kept.items():
            self.reset_at[key] = max(at, self.reset_at.get(key, 0.0))
        self._resets_read = True

    def turns(self, key: str) -> list[RequestRecord]:
        """The requests of chain `key` the request log holds, oldest first:
        one per turn, with its prompt, cache and prefix figures (since
        its session was reset here, if it was)."""
        turns = [
            r
            for r in self.log.session_records()
            if r.session_key == key and since_reset(r, self.reset_at)
        ]
        return sorted(turns, key=lambda r: r.received)

    def configure(self, settings: SessionSettings) -> None:
        self.tasks.start(
            self._configure(settings), what="Saving the session's settings"
        )

    async def _configure(self, settings: SessionSettings) -> None:
        await self.service().configure(settings)
        message.info(f"Saved the settings of session {settings.key}")
        await self._list()

    def reset(self, key: str) -> None:
        self.tasks.start(self._reset(key), what="Resetting the session")

    async def _reset(self, key: str) -> None:
        await self.service().reset(key)
        at = time.time()
        self.reset_at[key] = at
        try:
            await self.resets.mark(key, at)
        except errors.LMBridgeError as err:
            message.warning(
                f"Session {key} was reset, but the reset could not be saved"
                f" ({err.message}): after LM Bridge restarts, its turns count"
                " from its first request again"
            )
        else:
            message.info(f"Session {key} was reset")
        await self._list()

    def model_aliases(self) -> list[str]:
        """The model names a session override may use (none when stopped)."""
        state = self.controller.services
        return list(state.router.aliases()) if state is not None else []
