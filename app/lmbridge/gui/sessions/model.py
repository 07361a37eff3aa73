"""The sessions as a Qt table: one row per session or subagent chain; and
a chain's turns: one row per request, with its prompt and cache figures."""

from __future__ import annotations

import time

from PySide6.QtCore import QObject

from lmbridge.core.events import RequestRecord
from lmbridge.core.record import NoteKind, PrefixChange
from lmbridge.gui.formats import cached_text, duration, share_text, size_text
from lmbridge.gui.sessions.manager import SessionRow, ago
from lmbridge.gui.tablemodel import Column, Columns, ColumnsTableModel
from lmbridge.store.usage_types import client_name


def _turns_tip(row: SessionRow) -> str | None:
    if not row.counted_since:
        return None
    return f"Counted since the session was reset here ({ago(row.counted_since)})"


COLUMNS: Columns[SessionRow] = Columns(
    Column("client", "Client", lambda r: client_name(r.client) or "—"),
    Column("key", "Session key", lambda r: r.key_text(), tooltip=lambda r: r.key),
    Column(
        "model",
        "Upstream/model",
        lambda r: f"{r.upstream}/{r.model}" if r.upstream else r.model,
    ),
    Column(
        "turns",
        "Turns",
        lambda r: str(r.turns),
        sort=lambda r: r.turns,
        tooltip=lambda r: _turns_tip(r),
        numeric=True,
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


def _clock(record: RequestRecord) -> str:
    return time.strftime("%H:%M:%S", time.localtime(record.received))


def _new(record: RequestRecord) -> str:
    new = record.new_tokens
    return "—" if new is None else f"{new:,}"


def _change(record: RequestRecord) -> str:
    change = record.prefix_change
    if change is None:
        return "—"
    text = {
        PrefixChange.FIRST: "first",
        PrefixChange.APPENDED: "appended",
    }.get(change, record.change_text())
    if change is PrefixChange.APPENDED and any(
        note.kind is NoteKind.CACHE for note in record.notes
    ):
        text += " — but the server's cache was lost"
    return text


def _change_tip(record: RequestRecord) -> str | None:
    lines = [record.change_text(), *record.note_texts]
    return "\n".join(line for line in lines if line) or None


TURN_COLUMNS: Columns[RequestRecord] = Columns(
    Column(
        "turn",
        "Turn",
        lambda r: "—" if r.chain_turn is None else str(r.chain_turn),
        sort=lambda r: r.chain_turn or 0,
        numeric=True,
    ),
    Column("time", "Time", _clock, sort=lambda r: r.received),
    Column(
        "prompt",
        "Prompt tokens",
        lambda r: f"{r.tokens_in:,}",
        sort=lambda r: r.tokens_in,
        numeric=True,
    ),
    Column(
        "cached",
        "Cached",
        cached_text,
        sort=lambda r: r.cached_tokens or 0,
        numeric=True,
        tooltip=lambda _r: "Prompt tokens the server served from its cache",
    ),
    Column(
        "new",
        "New",
        _new,
        sort=lambda r: r.new_tokens or 0,
        numeric=True,
        tooltip=lambda _r: "Prompt tokens the server evaluated anew",
    ),
    Column(
        "ttft",
        "First token",
        lambda r: duration(r.first_token),
        sort=lambda r: r.first_token or 0.0,
        numeric=True,
    ),
    Column(
        "kept",
        "Kept",
        lambda r: share_text(r.kept_share),
        sort=lambda r: r.kept_share or 0.0,
        numeric=True,
        tooltip=lambda _r: "Share of the prompt unchanged since the chain's last turn",
    ),
    Column(
        "changed",
        "What changed",
        _change,
        tooltip=_change_tip,
    ),
)


class TurnTableModel(ColumnsTableModel):
    """A chain's turns, set in one go by `set_turns`."""

    COLUMNS = TURN_COLUMNS

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.rows: list[RequestRecord] = []

    def set_turns(self, rows: list[RequestRecord]) -> None:
        self.beginResetModel()
        self.rows = rows
        self.endResetModel()

    def row_total(self) -> int:
        return len(self.rows)

    def row_at(self, row: int) -> RequestRecord | None:
        return self.rows[row] if 0 <= row < len(self.rows) else None
