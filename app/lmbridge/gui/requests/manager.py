"""The live request log: a bounded history and the Qt table model over it.

`RequestLog` owns the data: the last `limit` records (the pipeline's own
`RequestRecord` objects, updated in place as requests progress) and today's
numbers. When the proxy starts it also reads the requests from before (the
history in the database, metadata only: no bodies) and puts them first.
`RequestTableModel` adapts it for views. Bus events arrive at any rate (50
streams publish many updates a second); the model applies them in batches
at most every `FLUSH_MS`, so the UI cost stays flat.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QColor

from lmbridge.core.events import Phase, RequestRecord
from lmbridge.gui.controller import ProxyController
from lmbridge.gui.icons import ERROR_COLOR
from lmbridge.gui.stats import TodayStats, is_error
from lmbridge.gui.tablemodel import ColumnsTableModel
from lmbridge.gui.tasks import Tasks

HISTORY_LIMIT = 1000
FLUSH_MS = 100
STATS_MS = 250

RECORD_ROLE = Qt.ItemDataRole.UserRole
SORT_ROLE = Qt.ItemDataRole.UserRole + 1

Index = QModelIndex | QPersistentModelIndex


def duration(seconds: float | None) -> str:
    """ "312 ms", "2.4 s", or "—"."""
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.1f} s"


def clock_text(received: float) -> str:
    """ "14:03:22" today, "05-31 14:03:22" on an earlier day."""
    when = time.localtime(received)
    today = time.localtime()
    same_day = (when.tm_year, when.tm_yday) == (today.tm_year, today.tm_yday)
    return time.strftime("%H:%M:%S" if same_day else "%m-%d %H:%M:%S", when)


def client_name(user_agent: str) -> str:
    """The product part of a user agent ("claude-cli/1.0.80")."""
    return (user_agent or "—").split(" ")[0][:40]


def status_text(record: RequestRecord) -> str:
    if record.phase is not Phase.FINISHED:
        return "streaming…" if record.first_token is not None else "…"
    if record.client_gone:
        return "client left"
    if record.status:
        return str(record.status)
    return "error" if record.error else "—"


def route_text(record: RequestRecord) -> str:
    model = record.model or "—"
    if not record.upstream:
        return model
    return f"{model} → {record.upstream}/{record.target}"


class RequestLog(QObject):
    """The last `limit` requests and today's numbers.

    New records wait in `pending` until the table model takes them (never
    while paused); `dirty` names records that changed since.
    """

    changed = Signal()
    statsChanged = Signal()
    historyLoaded = Signal(int)  # how many older records went in front

    def __init__(
        self,
        controller: ProxyController,
        limit: int = HISTORY_LIMIT,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.limit = limit
        self.rows: list[RequestRecord] = []
        self.pending: deque[RequestRecord] = deque(maxlen=limit)
        self.dirty: set[int] = set()
        self.paused = False
        self.controller = controller
        self.tasks = Tasks("requests")
        self.history: list[RequestRecord] = []
        self._history_read = False
        self.stats = TodayStats()
        # Today's numbers are redrawn at most every STATS_MS, however busy.
        self._stats_timer = QTimer(self)
        self._stats_timer.setSingleShot(True)
        self._stats_timer.setInterval(STATS_MS)
        self._stats_timer.timeout.connect(self.statsChanged)
        controller.requestStarted.connect(self._on_started)
        controller.requestUpdated.connect(self._on_updated)
        controller.requestFinished.connect(self._on_finished)
        controller.phaseChanged.connect(self._on_phase)

    def _on_phase(self) -> None:
        if self.controller.usage is not None and not self._history_read:
            self._history_read = True
            self.tasks.start(self._read_history(), what="Reading the request history")

    async def _read_history(self) -> None:
        store = self.controller.usage
        if store is None:
            return
        room = self.limit - len(self.rows) - len(self.pending)
        if room <= 0:
            return
        stored = await store.recent(room, received_before=self.controller.started_at)
        older = [s.to_record() for s in reversed(stored)]
        for record in older:
            self.stats.add(record)
        self.history = older
        self.historyLoaded.emit(len(older))
        self.statsChanged.emit()

    def find(self, record_id: int) -> RequestRecord | None:
        for record in reversed(self.rows):
            if record.id == record_id:
                return record
        return None

    def session_records(self) -> list[RequestRecord]:
        """Records that carried a session key, newest last."""
        return [r for r in self.rows if r.session_key]

    def _on_started(self, record: RequestRecord) -> None:
        self.pending.append(record)
        self.changed.emit()

    def _on_updated(self, record: RequestRecord) -> None:
        self.dirty.add(record.id)
        self.changed.emit()

    def _on_finished(self, record: RequestRecord) -> None:
        self.stats.add(record)
        self.dirty.add(record.id)
        self.changed.emit()
        if not self._stats_timer.isActive():
            self._stats_timer.start()


class RequestTableModel(ColumnsTableModel):
    """Rows of a `RequestLog`, oldest first; the columns of the issue."""

    COLUMNS = (
        "Time",
        "Client",
        "Protocol",
        "Model → upstream/target",
        "Status",
        "TTFT",
        "Duration",
        "Tokens in/out",
    )

    flushed = Signal()

    def __init__(self, log: RequestLog, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.log = log
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(FLUSH_MS)
        self._timer.timeout.connect(self.flush)
        log.changed.connect(self._schedule)
        log.historyLoaded.connect(self._take_history)
        self.flush()

    def _take_history(self, _count: int) -> None:
        """Put the requests from before this run first."""
        older, self.log.history = self.log.history, []
        room = self.log.limit - len(self.log.rows)
        older = older[-room:] if room > 0 else []
        if older:
            self.beginInsertRows(QModelIndex(), 0, len(older) - 1)
            self.log.rows[:0] = older
            self.endInsertRows()
            self.flushed.emit()

    def set_paused(self, paused: bool) -> None:
        """Paused: rows keep updating but no new rows appear (they wait)."""
        self.log.paused = paused
        if not paused:
            self._schedule()

    def _schedule(self) -> None:
        if not self._timer.isActive():
            self._timer.start()

    def flush(self) -> None:
        """Apply the waiting new rows and changes now."""
        log = self.log
        if log.pending and not log.paused:
            new = list(log.pending)[-log.limit :]
            log.pending.clear()
            drop = min(len(log.rows), len(log.rows) + len(new) - log.limit)
            if drop > 0:
                self.beginRemoveRows(QModelIndex(), 0, drop - 1)
                del log.rows[:drop]
                self.endRemoveRows()
            first = len(log.rows)
            self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
            log.rows.extend(new)
            self.endInsertRows()
        if log.dirty:
            dirty, log.dirty = log.dirty, set()
            rows = [i for i, r in enumerate(log.rows) if r.id in dirty]
            if rows:
                self.dataChanged.emit(
                    self.index(min(rows), 0),
                    self.index(max(rows), len(self.COLUMNS) - 1),
                )
        self.flushed.emit()

    # -- QAbstractTableModel ------------------------------------------------

    def row_total(self) -> int:
        return len(self.log.rows)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self.log.rows):
            return None
        record = self.log.rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(record, column)
        if role == RECORD_ROLE:
            return record
        if role == SORT_ROLE:
            return self._sort_value(record, column)
        if role == Qt.ItemDataRole.ForegroundRole and is_error(record):
            return QColor(ERROR_COLOR)
        if role == Qt.ItemDataRole.ToolTipRole and column == 4 and record.error:
            return record.error
        if role == Qt.ItemDataRole.TextAlignmentRole and column >= 5:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    @staticmethod
    def _text(record: RequestRecord, column: int) -> str:
        if column == 0:
            return clock_text(record.received)
        if column == 1:
            return client_name(record.client)
        if column == 2:
            return record.protocol + (" (stream)" if record.stream else "")
        if column == 3:
            return route_text(record)
        if column == 4:
            return status_text(record)
        if column == 5:
            return duration(record.first_token)
        if column == 6:
            return duration(record.done)
        return f"{record.tokens_in:,} / {record.tokens_out:,}"

    @staticmethod
    def _sort_value(record: RequestRecord, column: int) -> Any:
        values: tuple[Any, ...] = (
            record.received,
            record.client,
            record.protocol,
            route_text(record),
            record.status,
            record.first_token if record.first_token is not None else -1.0,
            record.done if record.done is not None else -1.0,
            record.tokens_in + record.tokens_out,
        )
        return values[column]
