"""The Download section of the Models page: search, files with their fit
verdict, and the downloads under way with progress, speed and Cancel."""

from __future__ import annotations

from typing import ClassVar

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from lmbridge.gui.formats import size_text
from lmbridge.gui.icons import ERROR_COLOR, OK_COLOR, WARNING_COLOR
from lmbridge.gui.models.downloads import DownloadsManager, progress_text
from lmbridge.gui.widgets import button, hint_label
from lmbridge.lmstudio import DownloadOption, FitEstimate

FIT_COLORS = {
    FitEstimate.FULL_GPU: OK_COLOR,
    FitEstimate.PARTIAL_GPU: WARNING_COLOR,
    FitEstimate.CPU_ONLY: WARNING_COLOR,
    FitEstimate.WILL_NOT_FIT: ERROR_COLOR,
}


class DownloadRow(QWidget):
    """One download under way: what, how far, how fast, and Cancel."""

    def __init__(self, key: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.key = key
        self.label = QLabel(key)
        self.bar = QProgressBar()
        self.bar.setRange(0, 100)
        self.bar.setMaximumWidth(220)
        self.cancel_button = button("Cancel", "cancel", f"Cancel downloading {key}")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel_button)


class DownloadsBox(QGroupBox):
    """Search LM Studio's catalog and download a model."""

    # The download options' columns: key -> header title.
    OPTION_COLUMNS: ClassVar[dict[str, str]] = {
        "file": "File",
        "size": "Size",
        "fit": "This machine",
        "get": "",
    }

    def __init__(self, manager: DownloadsManager, parent: QWidget | None = None):
        super().__init__("Download a model", parent)
        self.manager = manager
        self.query = QLineEdit()
        self.query.setPlaceholderText("Search LM Studio's catalog: qwen3 coder, gemma…")
        self.query.setClearButtonEnabled(True)
        self.search_button = button("Search", "search")
        self.search_button.clicked.connect(self.search)
        self.query.returnPressed.connect(self.search)
        self.results = QListWidget()
        self.results.setMaximumHeight(150)
        self.results.currentRowChanged.connect(self._on_result)
        self.options = QTableWidget(0, len(self.OPTION_COLUMNS))
        self.options.setHorizontalHeaderLabels(list(self.OPTION_COLUMNS.values()))
        self.options.verticalHeader().hide()
        self.options.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.options.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.options.setMaximumHeight(170)
        header = self.options.horizontalHeader()
        for position, key in enumerate(self.OPTION_COLUMNS):
            header.setSectionResizeMode(
                position,
                QHeaderView.ResizeMode.Stretch
                if key == "file"
                else QHeaderView.ResizeMode.ResizeToContents,
            )
        self.hint = hint_label(
            "LM Studio searches its catalog and Hugging Face; its verdict says "
            "whether each file fits this machine's memory."
        )
        self.active = QVBoxLayout()
        self.rows: dict[str, DownloadRow] = {}
        search = QHBoxLayout()
        search.addWidget(self.query, 1)
        search.addWidget(self.search_button)
        lists = QHBoxLayout()
        lists.addWidget(self.results, 2)
        lists.addWidget(self.options, 3)
        layout = QVBoxLayout(self)
        layout.addLayout(search)
        layout.addWidget(self.hint)
        layout.addLayout(lists)
        layout.addLayout(self.active)
        manager.resultsChanged.connect(self._show_results)
        manager.optionsChanged.connect(self._show_options)
        manager.progressChanged.connect(self._show_progress)
        self.refresh()

    def refresh(self) -> None:
        usable = self.manager.usable
        self.query.setEnabled(usable)
        self.search_button.setEnabled(usable)

    def search(self) -> None:
        text = self.query.text().strip()
        if text:
            self.manager.search(text)

    def _on_result(self, row: int) -> None:
        if 0 <= row < len(self.manager.results):
            self.manager.choose(self.manager.results[row])

    def _show_results(self) -> None:
        self.results.blockSignals(True)
        self.results.clear()
        for model in self.manager.results:
            badge = " ★ staff pick" if model.staff_pick else ""
            item = QListWidgetItem(f"{model.name}{badge}")
            item.setToolTip(f"{model.source.value}: {model.identifier}")
            self.results.addItem(item)
        self.results.blockSignals(False)

    def _show_options(self) -> None:
        options = self.manager.options
        self.options.setRowCount(len(options))
        for row, option in enumerate(options):
            name = option.quantization or option.name
            if option.recommended:
                name += "  (recommended)"
            cells = {
                "file": QTableWidgetItem(name),
                "size": QTableWidgetItem(size_text(option.size_bytes)),
                "fit": QTableWidgetItem(option.fit.label),
            }
            cells["size"].setTextAlignment(
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
            )
            if option.fit in FIT_COLORS:
                cells["fit"].setForeground(QBrush(QColor(FIT_COLORS[option.fit])))
            for key, item in cells.items():
                item.setToolTip(option.name)
                self.options.setItem(row, self.option_column(key), item)
            get = QPushButton("Download")
            get.setEnabled(option.key not in self.manager.active)
            get.clicked.connect(lambda _=False, o=option: self.download(o))
            self.options.setCellWidget(row, self.option_column("get"), get)

    def download(self, option: DownloadOption) -> None:
        self.manager.download(option)

    def option_column(self, key: str) -> int:
        """Where the download options' column `key` is shown."""
        return list(self.OPTION_COLUMNS).index(key)

    def option_button(self, row: int) -> QPushButton:
        widget = self.options.cellWidget(row, self.option_column("get"))
        assert isinstance(widget, QPushButton)
        return widget

    def _show_progress(self) -> None:
        active = self.manager.active
        for key in list(self.rows):
            if key not in active:
                self.rows.pop(key).deleteLater()
        for key, step in active.items():
            row = self.rows.get(key)
            if row is None:
                row = self.rows[key] = DownloadRow(key)
                row.cancel_button.clicked.connect(
                    lambda _=False, k=key: self.manager.cancel(k)
                )
                self.active.addWidget(row)
            row.label.setText(progress_text(step))
            row.bar.setValue(round(step.fraction * 100))
        self._show_options()
