"""Requests: the live table with a filter and Pause, and the detail pane."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from lmbridge.core.events import RequestRecord
from lmbridge.gui.controller import ProxyController
from lmbridge.gui.requests.detail_view import RequestDetail
from lmbridge.gui.requests.manager import RequestLog
from lmbridge.gui.requests.model import RECORD_ROLE, SORT_ROLE, RequestTableModel
from lmbridge.gui.widgets import button, hint_label, title_label

# The column that takes the room the others leave: every other column is
# as wide as its widest text so far. Only rows that arrive or change are
# measured (Qt's ResizeToContents re-measures on every update, too costly
# with 50 streams updating).
WIDE_COLUMN = "route"
CELL_PADDING = 10  # the cell's margins and a little air
MEASURED_ROWS = 200  # a change to more rows measures the newest this many


class RequestsPanel(QWidget):
    """The Requests page."""

    def __init__(
        self,
        controller: ProxyController,
        log: RequestLog,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.log = log
        self.model = RequestTableModel(log, self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setFilterKeyColumn(-1)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.proxy.setSortRole(SORT_ROLE)

        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter: model, client, upstream, status…")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self.proxy.setFilterFixedString)
        self.pause_button = button("Pause", "pause", "Stop adding new requests")
        self.pause_button.setCheckable(True)
        self.pause_button.toggled.connect(self.set_paused)
        self.count = QLabel()
        toolbar = QHBoxLayout()
        toolbar.addWidget(self.filter, 1)
        toolbar.addWidget(self.pause_button)
        toolbar.addWidget(self.count)

        self.table = QTableView()
        self.table.setObjectName("requests-table")
        self.table.setModel(self.proxy)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setSortingEnabled(False)
        self.table.verticalHeader().hide()
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(
            RequestTableModel.column_position(WIDE_COLUMN),
            QHeaderView.ResizeMode.Stretch,
        )
        self._fit_titles()
        self.detail = RequestDetail(log)
        self.tasks = self.detail.tasks
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(self.detail)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)

        layout = QVBoxLayout(self)
        layout.addWidget(title_label("Requests"))
        layout.addLayout(toolbar)
        layout.addWidget(splitter, 1)
        layout.addWidget(
            hint_label(
                f"The last {log.limit:,} requests are kept in memory. Bodies are "
                "size-capped and secrets are redacted."
            )
        )

        self.table.selectionModel().currentRowChanged.connect(self._on_current)
        self.model.rowsAboutToBeInserted.connect(self._remember_scroll)
        self.model.rowsInserted.connect(self._follow)
        self.model.rowsInserted.connect(
            lambda _parent, first, last: self.fit_columns(first, last)
        )
        self.model.dataChanged.connect(
            lambda top, bottom: self.fit_columns(top.row(), bottom.row())
        )
        self.model.dataChanged.connect(self._refresh_detail)
        self.model.flushed.connect(self._update_count)
        self._at_bottom = True
        self._update_count()

    def _fit_titles(self) -> None:
        header = self.table.horizontalHeader()
        for position, column in enumerate(self.model.COLUMNS):
            if column.key != WIDE_COLUMN:
                header.resizeSection(position, header.sectionSizeHint(position))

    def fit_columns(self, first: int, last: int) -> None:
        """Widen the columns (all but the route) to the text of rows
        `first`..`last` where it is wider than they are."""
        header = self.table.horizontalHeader()
        metrics = self.table.fontMetrics()
        rows = [
            record
            for row in range(max(first, last - MEASURED_ROWS + 1), last + 1)
            if (record := self.model.row_at(row)) is not None
        ]
        for position, column in enumerate(self.model.COLUMNS):
            if column.key == WIDE_COLUMN or not rows:
                continue
            widest = max(metrics.horizontalAdvance(column.text(r)) for r in rows)
            if widest + CELL_PADDING > header.sectionSize(position):
                header.resizeSection(position, widest + CELL_PADDING)

    def set_paused(self, paused: bool) -> None:
        self.model.set_paused(paused)
        self.pause_button.setText("Resume" if paused else "Pause")
        self._update_count()

    def selected(self) -> RequestRecord | None:
        index = self.table.selectionModel().currentIndex()
        record = index.data(RECORD_ROLE) if index.isValid() else None
        return record if isinstance(record, RequestRecord) else None

    def select_row(self, row: int) -> None:
        self.table.selectRow(row)

    def _on_current(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self.detail.show_record(self.selected())

    def _refresh_detail(self) -> None:
        record = self.selected()
        if record is not None and record is self.detail.record:
            self.detail.show_record(record)

    def _remember_scroll(self) -> None:
        bar = self.table.verticalScrollBar()
        self._at_bottom = bar.value() >= bar.maximum() - 2

    def _follow(self) -> None:
        if self._at_bottom:
            self.table.scrollToBottom()

    def _update_count(self) -> None:
        waiting = len(self.log.pending) if self.log.paused else 0
        count = len(self.log.rows)
        text = f"{count:,} request" if count == 1 else f"{count:,} requests"
        if waiting:
            text += f" · {waiting:,} waiting"
        self.count.setText(text)
