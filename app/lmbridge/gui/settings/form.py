"""Editors for the list-shaped settings: upstreams and routes.

They hold a working copy; `values()` returns plain data that the Settings
page turns into a validated `config.Settings` before anything is saved.
"""

from __future__ import annotations

from typing import Any

import msgspec
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QListWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from lmbridge import config, config_fields
from lmbridge.gui.widgets import button, hint_label

AZURE_ONLY = ("resource", "project", "auth", "tenant")
# Seconds; empty means the built-in default.
TIMEOUTS = ("connect_timeout", "first_byte_timeout", "idle_timeout")
OPTIONAL = ("api", "api_key_env", *TIMEOUTS)


def number(text: str) -> float | str:
    """A timeout field's value: seconds, or the text as typed (so that the
    whole form's validation names the bad field)."""
    try:
        value = float(text)
    except ValueError:
        return text
    return value


class UpstreamEditor(QGroupBox):
    """A list of upstreams and a form for the selected one."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Upstreams", parent)
        self.upstreams: list[dict[str, Any]] = []
        self._row = -1
        self.list = QListWidget()
        self.list.setMaximumWidth(200)
        self.add_button = button("Add", tip="Add an upstream")
        self.remove_button = button("Remove", tip="Remove the selected upstream")
        self.add_button.clicked.connect(self.add)
        self.remove_button.clicked.connect(self.remove)
        # The fields shown, in this order; labels, tool tips and choices
        # come from the declarations (config_tables.UpstreamSettings).
        declared = {key.key: key for key in config_fields.table("upstream").keys}
        shown = (
            "name",
            "kind",
            "base_url",
            "api",
            "api_key_env",
            *AZURE_ONLY,
            *TIMEOUTS,
        )
        self.fields: dict[str, QLineEdit | QComboBox] = {}
        labels: dict[str, str] = {}
        for key in shown:
            spec = declared[key]
            widget: QLineEdit | QComboBox
            if spec.kind == "choice":
                blank = ("",) if spec.default == "" else ()
                widget = self._combo((*blank, *map(str, spec.choices)))
            else:
                widget = QLineEdit()
            widget.setToolTip(spec.doc)
            self.fields[key] = widget
            labels[key] = spec.label
        self._api_field = self.fields["api"]
        assert isinstance(self._api_field, QComboBox)
        self._api_field.setItemText(0, declared["api"].unset)
        for key in TIMEOUTS:
            field = self.fields[key]
            assert isinstance(field, QLineEdit)
            field.setPlaceholderText(declared[key].unset)
        self.form = QFormLayout()
        for key, widget in self.fields.items():
            self.form.addRow(labels[key], widget)
            if isinstance(widget, QLineEdit):
                widget.textEdited.connect(self._edited)
            else:
                widget.currentIndexChanged.connect(self._edited)
        self.form.addRow(
            "",
            hint_label("API keys are never written here: see API keys below."),
        )
        side = QVBoxLayout()
        side.addWidget(self.list, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        side.addLayout(buttons)
        layout = QHBoxLayout(self)
        layout.addLayout(side)
        layout.addLayout(self.form, 1)
        self.list.currentRowChanged.connect(self._select)

    @staticmethod
    def _combo(values: tuple[str, ...]) -> QComboBox:
        combo = QComboBox()
        for value in values:
            combo.addItem(value, value)
        return combo

    def load(self, upstreams: list[config.UpstreamSettings]) -> None:
        self.load_values([msgspec.to_builtins(u) for u in upstreams])

    def load_values(self, upstreams: list[dict[str, Any]]) -> None:
        """Show upstreams given as plain data (what `values()` returns)."""
        self.upstreams = [dict(u) for u in upstreams]
        self._row = -1
        self.list.clear()
        for up in self.upstreams:
            self.list.addItem(up["name"])
        self.list.setCurrentRow(0 if self.upstreams else -1)
        self._select(self.list.currentRow())

    def values(self) -> list[dict[str, Any]]:
        self._commit()
        return [dict(u) for u in self.upstreams]

    def names(self) -> list[str]:
        self._commit()
        return [str(u.get("name", "")) for u in self.upstreams]

    def add(self) -> None:
        self._commit()
        n = len(self.upstreams) + 1
        self.upstreams.append(
            {"name": f"upstream-{n}", "kind": "openai", "base_url": "http://"}
        )
        self.list.addItem(f"upstream-{n}")
        self.list.setCurrentRow(len(self.upstreams) - 1)
        self.changed.emit()

    def remove(self) -> None:
        row = self.list.currentRow()
        if row < 0:
            return
        self._row = -1
        del self.upstreams[row]
        self.list.takeItem(row)
        self._select(self.list.currentRow())
        self.changed.emit()

    def select(self, name: str) -> None:
        for row, up in enumerate(self.upstreams):
            if up.get("name") == name:
                self.list.setCurrentRow(row)

    def set_field(self, key: str, value: str) -> None:
        """Set a field of the selected upstream (as if typed)."""
        widget = self.fields[key]
        if isinstance(widget, QLineEdit):
            widget.setText(value)
        else:
            widget.setCurrentIndex(widget.findData(value))
        self._edited()

    def _select(self, row: int) -> None:
        self._commit()
        self._row = row
        up = self.upstreams[row] if 0 <= row < len(self.upstreams) else None
        for key, widget in self.fields.items():
            raw = up.get(key) if up else None
            value = f"{raw:g}" if isinstance(raw, float) else str(raw or "")
            widget.blockSignals(True)
            if isinstance(widget, QLineEdit):
                widget.setText(value)
            else:
                if key == "auth" and not value:
                    value = "azure-cli"
                if key == "kind" and not value:
                    value = "openai"
                if value and widget.findData(value) < 0:  # an API registered since
                    widget.addItem(value, value)
                widget.setCurrentIndex(max(0, widget.findData(value)))
            widget.setEnabled(up is not None)
            widget.blockSignals(False)
        self.remove_button.setEnabled(up is not None)
        self._show_azure_fields()

    def _commit(self) -> None:
        row = self._row
        if not 0 <= row < len(self.upstreams):
            return
        up = self.upstreams[row]
        values = {
            key: (
                widget.text().strip()
                if isinstance(widget, QLineEdit)
                else str(widget.currentData())
            )
            for key, widget in self.fields.items()
        }
        azure = values["kind"] == "azure-foundry"
        for key, value in values.items():
            unused = key in AZURE_ONLY and not azure
            if unused or (not value and key in OPTIONAL):
                up.pop(key, None)
            elif key in TIMEOUTS:
                up[key] = number(value)
            else:
                up[key] = value
        item = self.list.item(row)
        if item is not None and item.text() != up["name"]:
            item.setText(up["name"])

    def _edited(self) -> None:
        self._commit()
        self._show_azure_fields()
        self.changed.emit()

    def _show_azure_fields(self) -> None:
        kind = self.fields["kind"]
        assert isinstance(kind, QComboBox)
        azure = kind.currentData() == "azure-foundry"
        for key in AZURE_ONLY:
            self.form.setRowVisible(self.fields[key], azure)


class RoutesEditor(QGroupBox):
    """Routes: a model pattern, the upstream, the target model, fallbacks."""

    COLUMNS = ("Model pattern", "Upstream", "Target model", "Fallback upstreams")
    KEYS = ("model", "upstream", "target", "fallback")
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Routes", parent)
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(list(self.COLUMNS))
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.Stretch
        )
        self.table.setMinimumHeight(140)
        self.table.itemChanged.connect(self.changed)
        self.add_button = button("Add route")
        self.remove_button = button("Remove route")
        self.add_button.clicked.connect(self.add)
        self.remove_button.clicked.connect(self.remove)
        buttons = QHBoxLayout()
        buttons.addWidget(
            hint_label(
                "The first route whose pattern (* and ? wildcards) matches the "
                "requested model wins; unmatched models go to the first upstream."
            ),
            1,
        )
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addLayout(buttons)

    def load(self, routes: list[config.RouteSettings]) -> None:
        self.load_values([msgspec.to_builtins(r) for r in routes])

    def load_values(self, routes: list[dict[str, Any]]) -> None:
        """Show routes given as plain data (what `values()` returns)."""
        self.table.setRowCount(0)
        for route in routes:
            self.add(
                [
                    str(route.get("model", "")),
                    str(route.get("upstream", "")),
                    str(route.get("target") or ""),
                    ", ".join(route.get("fallback") or []),
                ]
            )
            # Keys the table does not show (max_tokens_limit, ...) are kept.
            hidden = {k: v for k, v in route.items() if k not in self.KEYS}
            first = self.table.item(self.table.rowCount() - 1, 0)
            if first is not None:
                first.setData(Qt.ItemDataRole.UserRole, hidden)

    def add(self, values: list[str] | None = None) -> None:
        row = self.table.rowCount()
        self.table.insertRow(row)
        for column, value in enumerate(values or ["", "", "", ""]):
            self.table.setItem(row, column, QTableWidgetItem(value))

    def remove(self) -> None:
        row = self.table.currentRow()
        if row >= 0:
            self.table.removeRow(row)
            self.changed.emit()

    def values(self) -> list[dict[str, Any]]:
        routes = []
        for row in range(self.table.rowCount()):
            cells = []
            for column in range(len(self.KEYS)):
                item = self.table.item(row, column)
                cells.append(item.text().strip() if item else "")
            model, upstream, target, fallback = cells
            if not any(cells):
                continue
            first = self.table.item(row, 0)
            hidden = first.data(Qt.ItemDataRole.UserRole) if first else None
            route: dict[str, Any] = {"model": model, "upstream": upstream}
            if isinstance(hidden, dict):
                route.update(hidden)
            if target:
                route["target"] = target
            if fallback:
                route["fallback"] = [
                    f.strip() for f in fallback.split(",") if f.strip()
                ]
            routes.append(route)
        return routes
