"""The request log as a Qt table: `RequestTableModel` over a `RequestLog`.

Bus events arrive at any rate (50 streams publish many updates a second);
the model applies them in batches at most every `FLUSH_MS`, so the UI cost
stays flat.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QColor

from lmbridge.core.events import RequestRecord
from lmbridge.gui.formats import duration
from lmbridge.gui.icons import ERROR_COLOR
from lmbridge.gui.requests.manager import (
    RequestLog,
    clock_text,
    route_text,
    status_text,
)
from lmbridge.gui.stats import is_error
from lmbridge.gui.tablemodel import SORT_ROLE, Column, Columns, ColumnsTableModel
from lmbridge.store.usage_types import client_name

FLUSH_MS = 100
RECORD_ROLE = Qt.ItemDataRole.UserRole

__all__ = ["FLUSH_MS", "RECORD_ROLE", "SORT_ROLE", "RequestTableModel"]


def _seconds_or_last(value: float | None) -> float:
    return value if value is not None else -1.0


COLUMNS: Columns[RequestRecord] = Columns(
    Column("time", "Time", lambda r: clock_text(r.received), sort=lambda r: r.received),
    Column(
        "client",
        "Client",
        lambda r: client_name(r.client) or "—",
        sort=lambda r: r.client,
    ),
    Column(
        "protocol",
        "Protocol",
        lambda r: r.protocol + (" (stream)" if r.stream else ""),
        sort=lambda r: r.protocol,
    ),
    Column("route", "Model → upstream/target", route_text, tooltip=route_text),
    Column(
        "status",
        "Status",
        status_text,
        sort=lambda r: r.status,
        tooltip=lambda r: r.error or None,
    ),
    Column(
        "ttft",
        "TTFT",
        lambda r: duration(r.first_token),
        sort=lambda r: _seconds_or_last(r.first_token),
        numeric=True,
    ),
    Column(
        "duration",
        "Duration",
        lambda r: duration(r.done),
        sort=lambda r: _seconds_or_last(r.done),
        numeric=True,
    ),
    Column(
        "tokens",
        "Tokens in/out",
        lambda r: f"{r.tokens_in:,} / {r.tokens_out:,}",
        sort=lambda r: r.tokens_in + r.tokens_out,
        numeric=True,
    ),
)


class RequestTableModel(ColumnsTableModel):
    """Rows of a `RequestLog`, oldest first; the columns of the issue."""

    COLUMNS = COLUMNS

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
        if log.history:  # read before this model existed (a page built late)
            self._take_history(len(log.history))
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

    # -- ColumnsTableModel --------------------------------------------------

    def row_total(self) -> int:
        return len(self.log.rows)

    def row_at(self, row: int) -> RequestRecord | None:
        return self.log.rows[row] if 0 <= row < len(self.log.rows) else None

    def row_data(self, row: Any, column: Column[Any], role: int) -> Any:
        if role == RECORD_ROLE:
            return row
        if role == Qt.ItemDataRole.ForegroundRole and is_error(row):
            return QColor(ERROR_COLOR)
        return None
