"""Sessions: the conversations clients keep with a session key.

Rows come from the proxy's `SessionManager` (chains on Responses upstreams:
turns, upstream bytes saved by sending only what is new) plus session keys
seen in the request log that have no chain. For a selected session the
user sets a model override and the tools it may use, or resets its chain.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCompleter,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from lmbridge.core import errors
from lmbridge.core.events import RequestRecord
from lmbridge.core.ir import split_chain_key
from lmbridge.core.sessions import SessionSettings
from lmbridge.gui import message
from lmbridge.gui.controller import ProxyController
from lmbridge.gui.requests.manager import RequestLog, client_name
from lmbridge.gui.tablemodel import ColumnsTableModel
from lmbridge.gui.tasks import Tasks
from lmbridge.gui.widgets import ConfirmBar, button, hint_label, title_label
from lmbridge.upstreams.sessions import SessionManager

Index = QModelIndex | QPersistentModelIndex
LISTING = "Listing the sessions"


def bytes_text(n: int) -> str:
    if n >= 1024**2:
        return f"{n / 1024**2:.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n} B"


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
    manager: SessionManager, seen: list[RequestRecord]
) -> list[SessionRow]:
    """Chained sessions, then keys seen in requests without a chain."""
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
    for record in seen:
        if record.session_key and record.session_key not in known:
            latest[record.session_key] = record
    for key, record in latest.items():
        rows.append(
            SessionRow(
                key,
                record.client,
                record.upstream,
                record.target or record.model,
                0,
                record.received,
                0,
                manager.settings_for(split_chain_key(key)[0]),
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


class SessionTableModel(ColumnsTableModel):
    COLUMNS = (
        "Client",
        "Session key",
        "Upstream/model",
        "Turns",
        "Last seen",
        "Bytes saved",
        "Override",
    )

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.rows: list[SessionRow] = []

    def set_rows(self, rows: list[SessionRow]) -> None:
        self.beginResetModel()
        self.rows = rows
        self.endResetModel()

    def row_total(self) -> int:
        return len(self.rows)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self.rows):
            return None
        row = self.rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return (
                client_name(row.client),
                row.key_text(),
                f"{row.upstream}/{row.model}" if row.upstream else row.model,
                str(row.turns),
                ago(row.last_seen),
                bytes_text(row.bytes_saved),
                row.override_text() or "—",
            )[index.column()]
        if role == Qt.ItemDataRole.ToolTipRole and index.column() == 1:
            return row.key
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() in (3, 5):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class SessionsPanel(QWidget):
    """The Sessions page."""

    def __init__(
        self,
        controller: ProxyController,
        log: RequestLog,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.log = log
        self.tasks = Tasks("sessions")
        self.model = SessionTableModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.refresh_button = button("Refresh", "refresh")
        self.refresh_button.clicked.connect(self.refresh)
        self.status = hint_label()
        top = QHBoxLayout()
        top.addWidget(self.status, 1)
        top.addWidget(self.refresh_button)

        self.editor = QGroupBox("Selected session")
        self.key_label = QLabel("—")
        self.key_label.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
        )
        self.override = QLineEdit()
        self.override.setPlaceholderText("the model the client asks for")
        self.tools = QLineEdit()
        self.tools.setPlaceholderText("all tools (or a comma-separated list)")
        self.save_button = button("Save", "check")
        self.reset_button = button(
            "Reset",
            "refresh",
            "Forget the chain: the next turn sends the whole history",
        )
        self.save_button.clicked.connect(self.save)
        self.reset_button.clicked.connect(self.confirm_reset)
        self.confirm = ConfirmBar()
        form = QFormLayout(self.editor)
        form.addRow("Session key", self.key_label)
        form.addRow("Model override", self.override)
        form.addRow("Allowed tools", self.tools)
        actions = QHBoxLayout()
        actions.addStretch(1)
        actions.addWidget(self.reset_button)
        actions.addWidget(self.save_button)
        form.addRow(actions)
        form.addRow(self.confirm)

        layout = QVBoxLayout(self)
        layout.addWidget(title_label("Sessions"))
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.editor)

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(500)
        self._debounce.timeout.connect(self.refresh)
        controller.requestFinished.connect(self._on_request)
        controller.phaseChanged.connect(self.refresh)
        self.table.selectionModel().selectionChanged.connect(self._show_selected)
        self.model.modelReset.connect(self._show_selected)
        self._selected_key: str | None = None
        self.refresh()

    def manager(self) -> SessionManager:
        state = self.controller.services
        if state is None:
            raise errors.UpstreamUnavailable(
                "the proxy is stopped — start it on the Overview page to see and "
                "change sessions"
            )
        return state.sessions

    def _on_request(self, record: RequestRecord) -> None:
        if record.session_key:
            self._debounce.start()

    def refresh(self) -> None:
        if self.controller.services is None:
            self.model.set_rows([])
            self.status.setText("Start the proxy to see sessions.")
            self._show_selected()
            return
        if not self.tasks.running(LISTING):
            self.tasks.start(self._refresh(), what=LISTING)

    async def _refresh(self) -> None:
        rows = await session_rows(self.manager(), self.log.session_records())
        self.model.set_rows(rows)
        saved = sum(r.bytes_saved for r in rows)
        self.status.setText(
            f"{len(rows)} session(s) · {bytes_text(saved)} not re-sent upstream "
            "thanks to chaining"
            if rows
            else "No sessions yet: clients that send a session key (Claude Code "
            "does) appear here."
        )
        if self._selected_key:
            self.select_key(self._selected_key)

    def selected(self) -> SessionRow | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.rows[rows[0].row()] if rows else None

    def select_key(self, key: str) -> None:
        for i, row in enumerate(self.model.rows):
            if row.key == key:
                self.table.selectRow(i)
                return

    def _show_selected(self) -> None:
        row = self.selected()
        if row is not None:
            self._selected_key = row.key
        enabled = row is not None and self.controller.services is not None
        for widget in (self.override, self.tools, self.save_button, self.reset_button):
            widget.setEnabled(enabled)
        if row is None:
            self.key_label.setText("—")
            return
        self.key_label.setText(row.key)
        settings = row.settings
        self.override.setText(settings.model_override or "" if settings else "")
        tools = settings.allowed_tools if settings else None
        self.tools.setText(", ".join(tools) if tools is not None else "")
        state = self.controller.services
        if state is not None:
            self.override.setCompleter(
                QCompleter(state.router.aliases(), self.override)
            )

    def save(self) -> None:
        row = self.selected()
        if row is None:
            return
        tools_text = self.tools.text().strip()
        tools = (
            [t.strip() for t in tools_text.split(",") if t.strip()]
            if tools_text
            else None
        )
        settings = SessionSettings(
            key=row.key,
            model_override=self.override.text().strip() or None,
            allowed_tools=tools,
        )
        self.tasks.start(self._save(settings), what="Saving the session's settings")

    async def _save(self, settings: SessionSettings) -> None:
        await self.manager().configure(settings)
        message.info(f"Saved the settings of session {settings.key}")
        await self._refresh()

    def confirm_reset(self) -> None:
        row = self.selected()
        if row is None:
            return
        self.confirm.ask(
            f"Reset session {row.key}? Its next turn sends the whole history again.",
            "Reset",
            lambda: self.tasks.start(
                self._reset(row.key), what="Resetting the session"
            ),
        )

    async def _reset(self, key: str) -> None:
        await self.manager().reset(key)
        message.info(f"Session {key} was reset")
        await self._refresh()
