"""Sessions: what the Sessions page shows and changes, from the proxy's
`SessionManager` (chains on Responses upstreams: turns, upstream bytes saved
by sending only what is new) plus session keys seen in the request log that
have no chain (their turns: their requests in the log, since a reset made
here), and for one chain its turns (the log's records of it: prompt
tokens, cached, kept, what changed). `SessionsManager` is the page's one
way to the proxy: it owns the rows and keeps them current."""

from __future__ import annotations

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
from lmbridge.gui.tasks import Tasks
from lmbridge.upstreams.sessions import SessionManager

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
) -> list[SessionRow]:
    """Chained sessions, then keys seen in requests without a chain: their
    turns are their requests in `seen` (the request log, which holds the
    history read at start and every request since), as their turn list
    shows them; for a session reset here, those since (`reset_at`, by
    session key)."""
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
    latest: dict[str, RequestRecord] = {}
    requests: dict[str, int] = {}
    for record in seen:
        key = record.session_key
        if key and key not in known:
            latest[key] = record
            counted = since_reset(record, reset_at or {})
            requests[key] = requests.get(key, 0) + counted
    for key, record in latest.items():
        rows.append(
            SessionRow(
                key,
                record.client,
                record.upstream,
                record.target or record.model,
                requests[key],
                record.received,
                0,
                manager.settings_for(split_chain_key(key)[0]),
            )
        )
    return grouped(rows)


def since_reset(record: RequestRecord, reset_at: Mapping[str, float]) -> bool:
    """Whether `record` came after its session was last reset (if it was)."""
    session = split_chain_key(record.session_key or "")[0]
    return record.received >= reset_at.get(session, 0.0)


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
        self.reset_at: dict[str, float] = {}
        self.loaded = False  # listed at least once since the proxy started
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(RELOAD_MS)
        self._timer.timeout.connect(self.refresh)
        controller.requestFinished.connect(self._on_request)
        controller.phaseChanged.connect(self.refresh)

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

    def refresh(self) -> None:
        """List the sessions again, now (latest wins)."""
        self._timer.stop()
        self.tasks.cancel(LISTING)
        if not self.available:
            self.rows, self.loaded = [], False
            self.changed.emit()
            return
        self.tasks.start(self._list(), what=LISTING)

    async def _list(self) -> None:
        self.rows = await session_rows(
            self.service(), self.log.session_records(), self.reset_at
        )
        self.loaded = True
        self.changed.emit()

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
        self.reset_at[key] = time.time()
        message.info(f"Session {key} was reset")
        await self._list()

    def model_aliases(self) -> list[str]:
        """The model names a session override may use (none when stopped)."""
        state = self.controller.services
        return list(state.router.aliases()) if state is not None else []
