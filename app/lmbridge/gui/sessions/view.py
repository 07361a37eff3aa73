"""Sessions: the page. The table of sessions; for a selected chain its
turns (prompt tokens, cached, new, time to first token, the share kept
from the turn before and what changed), a model override and the tools it
may use, or a reset of its chain."""

from __future__ import annotations

from PySide6.QtCore import Qt
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

from lmbridge.core.sessions import SessionSettings
from lmbridge.gui.controller import ProxyController
from lmbridge.gui.formats import size_text
from lmbridge.gui.sessions.manager import (
    SeenRequests,
    SessionRow,
    SessionsManager,
    ago,
)
from lmbridge.gui.sessions.model import SessionTableModel, TurnTableModel
from lmbridge.gui.widgets import ConfirmBar, button, hint_label, title_label


class SessionsPanel(QWidget):
    """The Sessions page."""

    def __init__(
        self,
        controller: ProxyController,
        log: SeenRequests,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.sessions = SessionsManager(controller, log, self)
        self.tasks = self.sessions.tasks
        self.model = SessionTableModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(
            self.model.column_position("key"), QHeaderView.ResizeMode.Stretch
        )
        self.status = hint_label()

        self.turns_box = QGroupBox("Turns of the selected chain")
        self.turns_model = TurnTableModel(self)
        self.turns = QTableView()
        self.turns.setObjectName("session-turns")
        self.turns.setModel(self.turns_model)
        self.turns.verticalHeader().hide()
        self.turns.setAlternatingRowColors(True)
        self.turns.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        turns_header = self.turns.horizontalHeader()
        turns_header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        turns_header.setSectionResizeMode(
            self.turns_model.column_position("changed"), QHeaderView.ResizeMode.Stretch
        )
        self.turns_hint = hint_label(
            "Select a session to see its turns: how much of each prompt the server"
            " reused from its cache, and what changed when it could not."
        )
        self.turns_hint.setWordWrap(True)
        turns_layout = QVBoxLayout(self.turns_box)
        turns_layout.addWidget(self.turns_hint)
        turns_layout.addWidget(self.turns, 1)

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
            "Forget the chain: the next turn sends the whole history, and the"
            " turns count from now",
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
        layout.addWidget(self.status)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.turns_box, 1)
        layout.addWidget(self.editor)

        self.sessions.changed.connect(self._show_rows)
        self.table.selectionModel().selectionChanged.connect(self._show_selected)
        self.model.modelReset.connect(self._show_selected)
        self._selected_key: str | None = None
        self.refresh()

    def refresh(self) -> None:
        """List the sessions again (the page is live without it)."""
        self.sessions.refresh()

    def _show_rows(self) -> None:
        rows = self.sessions.rows
        self.model.set_rows(rows)
        saved = sum(r.bytes_saved for r in rows)
        if not self.sessions.available:
            text = "Start the proxy to see sessions."
        elif not self.sessions.loaded:
            text = "Listing the sessions…"
        elif rows:
            text = (
                f"{len(rows)} session(s) · {size_text(saved)} not re-sent upstream "
                "thanks to chaining"
            )
        else:
            text = (
                "No sessions yet: clients that send a session key (Claude Code "
                "does) appear here as they make requests."
            )
        self.status.setText(text)
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
        enabled = row is not None and self.sessions.available
        for widget in (self.override, self.tools, self.save_button, self.reset_button):
            widget.setEnabled(enabled)
        self._show_turns(row)
        if row is None:
            self.key_label.setText("—")
            return
        self.key_label.setText(row.key)
        settings = row.settings
        self.override.setText(settings.model_override or "" if settings else "")
        tools = settings.allowed_tools if settings else None
        self.tools.setText(", ".join(tools) if tools is not None else "")
        if self.sessions.available:
            self.override.setCompleter(
                QCompleter(self.sessions.model_aliases(), self.override)
            )

    def _show_turns(self, row: SessionRow | None) -> None:
        turns = self.sessions.turns(row.key) if row is not None else []
        self.turns_model.set_turns(turns)
        if row is None:
            return
        if not turns and row.counted_since:
            self.turns_hint.setText(
                f"No turn since this session was reset ({ago(row.counted_since)})."
            )
            return
        if not turns:
            self.turns_hint.setText(
                "The request log holds no request of this chain (it keeps the"
                " last 1,000)."
            )
            return
        kept = [t.kept_share for t in turns if t.kept_share is not None]
        cached = [t.cache_share for t in turns if t.cache_share is not None]
        parts = [f"{len(turns)} turn(s) in the request log"]
        if row.turns > len(turns):
            parts = [
                f"The last {len(turns):,} of its {row.turns:,} turns (the request"
                " log keeps the last 1,000 requests)"
            ]
        if cached:
            parts.append(f"{sum(cached) / len(cached):.0%} of the prompt from cache")
        if kept:
            parts.append(f"{sum(kept) / len(kept):.0%} kept from the turn before")
        self.turns_hint.setText(" · ".join(parts) + " (on average).")

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
        self.sessions.configure(settings)

    def confirm_reset(self) -> None:
        row = self.selected()
        if row is None:
            return
        self.confirm.ask(
            f"Reset session {row.key}? Its next turn sends the whole history"
            " again, and its turns count from now.",
            "Reset",
            lambda: self.sessions.reset(row.key),
        )
