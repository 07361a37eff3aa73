"""The Settings page's fields, built from the settings' declarations
(`config_fields`): a widget per type, its label and tool tip from the
declaration, its range from the declared bounds, one group per table.

- true/false: a check box (optional: a list with the unset meaning first);
- a whole number: a spin box within the bounds, shown in `unit` (divided
  by `scale`); optional: its lowest step means unset;
- a number: a spin box with one decimal within the bounds;
- one of several words (a Literal): a list;
- text: a line; a list of text: a comma-separated line;
- a number or some words (`load_gpu_offload`): an editable list;
- secrets are never shown (the page has its keyring rows for them).

Each widget's value is read and shown in the settings' own units, so the
form saves and compares what the file holds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from lmbridge.config_fields import Declared, Table

INT_MAX = 2**31 - 1
FLOAT_MAX = 1e9


class _WheelScrollsThePage(QObject):
    """The wheel over a spin box or list scrolls the page, unless the field
    has the focus: scrolling down a long form changes no value by accident."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            event.type() != QEvent.Type.Wheel
            or not isinstance(watched, QWidget)
            or watched.hasFocus()
        ):
            return False
        parent = watched.parentWidget()
        if parent is not None:  # on its way up to the scroll area
            QApplication.sendEvent(parent, event)
        return True


_WHEEL_GUARD = _WheelScrollsThePage()


@dataclass(frozen=True)
class Field:
    """One setting on the page: its widget, how to read it and show a value."""

    table: str
    key: str
    widget: QWidget
    get: Callable[[], Any]
    set: Callable[[Any], object]
    declared: Declared | None = None

    @property
    def name(self) -> str:
        return f"{self.table}.{self.key}"


def _number(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def _int_field(
    key: Declared,
) -> tuple[QWidget, Callable[[], Any], Callable[[Any], object]]:
    box = QSpinBox()
    scale = key.scale
    low = key.lowest if key.lowest is not None else 0
    low_shown = max(1, math.ceil(low / scale)) if scale > 1 else int(low)
    high = INT_MAX if key.le is None else key.le
    box.setRange(
        low_shown - (1 if key.optional else 0), min(INT_MAX, int(high // scale))
    )
    box.setSingleStep(int(key.step) or 1)
    box.setGroupSeparatorShown(key.step > 1)
    if key.unit:
        box.setSuffix(f" {key.unit}")
    if key.optional:
        box.setSpecialValueText(key.unset or "unset")

    def get() -> int | None:
        if key.optional and box.value() == box.minimum():
            return None
        return box.value() * scale

    def show(value: int | None) -> None:
        if value is None:
            box.setValue(box.minimum())
        else:
            box.setValue(max(low_shown, round(value / scale)))

    return box, get, show


def _float_field(
    key: Declared,
) -> tuple[QWidget, Callable[[], Any], Callable[[Any], object]]:
    box = QDoubleSpinBox()
    box.setDecimals(1)
    low = key.ge if key.ge is not None else (key.gt + 0.1 if key.gt is not None else 0)
    box.setRange(low, FLOAT_MAX if key.le is None else key.le)
    box.setSingleStep(key.step or 1.0)
    if key.unit:
        box.setSuffix(f" {key.unit}")
    return box, box.value, box.setValue


def _choice_field(
    key: Declared,
) -> tuple[QWidget, Callable[[], Any], Callable[[Any], object]]:
    combo = QComboBox()
    words = dict(key.choice_labels)
    # "" (an empty Literal, or None) is the unset choice, first.
    if key.optional or key.default == "":
        combo.addItem(key.unset or "unset", "")
    for value in key.choices:
        combo.addItem(words.get(str(value), str(value)), value)

    def get() -> Any:
        value = combo.currentData()
        if value == "" and key.optional:
            return None
        return value

    def show(value: Any) -> None:
        combo.setCurrentIndex(max(0, combo.findData("" if value is None else value)))

    return combo, get, show


def _optional_bool_field(
    key: Declared,
) -> tuple[QWidget, Callable[[], Any], Callable[[Any], object]]:
    combo = QComboBox()
    for text, value in ((key.unset or "unset", ""), ("on", "on"), ("off", "off")):
        combo.addItem(text, value)

    def get() -> bool | None:
        value = combo.currentData()
        return None if value == "" else value == "on"

    def show(value: bool | None) -> None:
        data = "" if value is None else ("on" if value else "off")
        combo.setCurrentIndex(combo.findData(data))

    return combo, get, show


def _mixed_field(
    key: Declared,
) -> tuple[QWidget, Callable[[], Any], Callable[[Any], object]]:
    """A number or one of some words: an editable list. What cannot be read
    is passed on as typed, so the save's check names the field."""
    combo = QComboBox()
    combo.setEditable(True)
    combo.addItem("")
    for value in key.choices:
        combo.addItem(str(value))
    line = combo.lineEdit()
    if line is not None:
        line.setPlaceholderText(key.unset or "unset")

    def get() -> Any:
        text = combo.currentText().strip()
        if not text:
            return None if key.optional else ""
        return text if text in key.choices else _number(text)

    def show(value: Any) -> None:
        text = (
            ""
            if value is None
            else f"{value:g}"
            if isinstance(value, float)
            else str(value)
        )
        combo.setCurrentText(text)

    return combo, get, show


def _text_field(
    key: Declared,
) -> tuple[QWidget, Callable[[], Any], Callable[[Any], object]]:
    edit = QLineEdit()
    if key.unset:
        edit.setPlaceholderText(key.unset)
    if key.kind == "list":

        def get_list() -> list[str]:
            return [item.strip() for item in edit.text().split(",") if item.strip()]

        return edit, get_list, lambda value: edit.setText(", ".join(value or []))

    def get() -> str | None:
        text = edit.text().strip()
        return None if key.optional and not text else text

    return edit, get, lambda value: edit.setText(value or "")


def field_for(key: Declared) -> Field:
    """The widget for one declared setting, bound to its key."""
    if key.kind == "bool" and not key.optional:
        box = QCheckBox(key.label)
        made: tuple[QWidget, Callable[[], Any], Callable[[Any], object]] = (
            box,
            box.isChecked,
            box.setChecked,
        )
    elif key.kind == "bool":
        made = _optional_bool_field(key)
    elif key.kind == "int":
        made = _int_field(key)
    elif key.kind == "float" and not key.optional:
        made = _float_field(key)
    elif key.kind == "choice":
        made = _choice_field(key)
    elif key.kind in ("str", "list"):
        made = _text_field(key)
    else:
        made = _mixed_field(key)
    widget, get, show = made
    widget.setObjectName(f"field:{key.name}")
    widget.setToolTip(key.doc)
    if isinstance(widget, (QAbstractSpinBox, QComboBox)):
        widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        widget.installEventFilter(_WHEEL_GUARD)
    return Field(key.table, key.key, widget, get, show, key)


@dataclass(frozen=True)
class Section:
    """A table's group on the page, its form and its fields."""

    table: Table
    box: QGroupBox
    form: QFormLayout
    fields: tuple[Field, ...]


def section_for(table: Table) -> Section:
    """The group of one table: a row per setting shown on the page."""
    box = QGroupBox(table.title)
    box.setObjectName(f"section:{table.name}")
    box.setToolTip(table.doc)
    form = QFormLayout(box)
    fields = []
    for key in table.keys:
        if key.secret or not key.on_page:
            continue
        field = field_for(key)
        if isinstance(field.widget, QCheckBox):
            form.addRow("", field.widget)
        else:
            form.addRow(key.label, field.widget)
            label = form.labelForField(field.widget)
            if label is not None:
                label.setToolTip(key.doc)
        fields.append(field)
    return Section(table, box, form, tuple(fields))


def sections_for(tables: tuple[Table, ...]) -> dict[str, Section]:
    """A group per table of keys (lists of tables have their own editors)."""
    return {t.name: section_for(t) for t in tables if not t.is_list}
