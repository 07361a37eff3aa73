"""The sessions as a Qt table: one row per session or subagent chain."""

from __future__ import annotations

from PySide6.QtCore import QObject

from lmbridge.gui.formats import size_text
from lmbridge.gui.sessions.manager import SessionRow, ago
from lmbridge.gui.tablemodel import Column, Columns, ColumnsTableModel
from lmbridge.store.usage_types import client_name

COLUMNS: Columns[SessionRow] = Columns(
    Column("client", "Client", lambda r: client_name(r.client) or "—"),
    Column("key", "Session key", lambda r: r.key_text(), tooltip=lambda r: r.key),
    Column(
        "model",
        "Upstream/model",
        lambda r: f"{r.upstream}/{r.model}" if r.upstream else r.model,
    ),
    Column(
        "turns", "Turns", lambda r: str(r.turns), sort=lambda r: r.turns, numeric=True
    ),
    Column(
        "last_seen", "Last seen", lambda r: ago(r.last_seen), sort=lambda r: r.last_seen
    ),
    Column(
        "bytes_saved",
        "Bytes saved",
        lambda r: size_text(r.bytes_saved),
        sort=lambda r: r.bytes_saved,
        numeric=True,
    ),
    Column("override", "Override", lambda r: r.override_text() or "—"),
)


class SessionTableModel(ColumnsTableModel):
    """Rows set in one go by `set_rows`."""

    COLUMNS = COLUMNS

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.rows: list[SessionRow] = []

    def set_rows(self, rows: list[SessionRow]) -> None:
        self.beginResetModel()
        self.rows = rows
        self.endResetModel()

    def row_total(self) -> int:
        return len(self.rows)

    def row_at(self, row: int) -> SessionRow | None:
        return self.rows[row] if 0 <= row < len(self.rows) else None
