"""The Settings form as data: each field bound to its settings key, what
the user changed since the form was filled, and each key's problem shown
next to its field.

A save writes only `FormFields.key_paths()`: the keys whose widget differs
from what the form was filled with, as the settings store's key paths
(entries of upstreams and routes by their name). So a page opened before
the wizard wrote its routes, saved after changing only the port, changes
only the port (issue 20, point 3). When the settings change elsewhere,
`refill` shows the new values and keeps the user's unsaved edits on top.
`show_problems` puts the store's per-key messages under their fields.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from PySide6.QtWidgets import QFormLayout, QLabel, QWidget

from lmbridge import config, settings_edit
from lmbridge.gui.icons import ERROR_COLOR
from lmbridge.gui.settings.form import RoutesEditor, UpstreamEditor
from lmbridge.gui.settings.generated import Field, Section
from lmbridge.settings_edit import REMOVE, KeyPath

__all__ = ["Field", "FormFields", "bind_fields"]

Changes = dict[str, Any]  # table -> {key: value}, or table -> a whole list


_ENTRY_KEY = re.compile(r"^(?P<table>\w+)\[(?P<name>.*)\](?:\.(?P<key>\w+))?$")


def entry_problem(key: str, text: str) -> str:
    """ "route[llama*].upstream", "..." as a user reads it:
    "Route llama*, upstream: ..."."""
    match = _ENTRY_KEY.match(key)
    if match is None:
        return f"{key}: {text}"
    where = f"{match['table'].capitalize()} {match['name']}"
    if match["key"]:
        where += f", {match['key']}"
    return f"{where}: {text}"


def field_error() -> QLabel:
    """The red line under a field that says what is wrong with it."""
    label = QLabel()
    label.setWordWrap(True)
    label.setStyleSheet(f"color: {ERROR_COLOR}")
    label.hide()
    return label


def _under(widget: QWidget, label: QLabel) -> None:
    """Put `label` in the form row below `widget`'s."""
    parent = widget.parentWidget()
    layout = parent.layout() if parent is not None else None
    if isinstance(layout, QFormLayout):
        position: Any = layout.getWidgetPosition(widget)
        row = int(position[0])
        if row >= 0:
            layout.insertRow(row + 1, "", label)
            return
    label.setParent(parent)


class FormFields:
    """The scalar fields and the two list editors of the Settings form."""

    def __init__(
        self,
        fields: list[Field],
        upstreams: UpstreamEditor,
        routes: RoutesEditor,
    ) -> None:
        self.fields = fields
        self.by_name = {field.name: field for field in fields}
        self.upstreams = upstreams
        self.routes = routes
        self.baseline: Changes = {}
        self.snapshot = config.Settings()
        # key name ("server.port") -> the red line under its field; the
        # lists' problems go under their editors.
        self.errors: dict[str, QLabel] = {}
        for field in fields:
            self.errors[field.name] = label = field_error()
            label.setObjectName(f"error:{field.name}")
            _under(field.widget, label)
        for name, editor in (("upstream", upstreams), ("route", routes)):
            self.errors[name] = label = field_error()
            label.setObjectName(f"error:{name}")
            box = editor.layout()
            if box is not None:
                box.addWidget(label)

    def widget(self, name: str) -> QWidget:
        """The widget of setting `name` ("server.port"); KeyError if the
        page does not show it."""
        return self.by_name[name].widget

    def values(self) -> Changes:
        """Everything the form holds, as settings data."""
        values: Changes = {}
        for field in self.fields:
            values.setdefault(field.table, {})[field.key] = field.get()
        values["upstream"] = self.upstreams.values()
        values["route"] = self.routes.values()
        return values

    def fill(self, settings: config.Settings) -> None:
        """Show `settings`; they become what changes are measured from."""
        for field in self.fields:
            field.set(getattr(getattr(settings, field.table), field.key))
        self.upstreams.load(settings.upstream)
        self.routes.load(settings.route)
        self.baseline = self.values()
        self.snapshot = settings
        self.show_problems({})

    def changes(self) -> Changes:
        """What the user changed since `fill` (only those keys)."""
        now = self.values()
        changed: Changes = {}
        for table, value in now.items():
            before = self.baseline.get(table)
            if isinstance(value, dict):
                old = before if isinstance(before, dict) else {}
                keys = {k: v for k, v in value.items() if old.get(k) != v}
                if keys:
                    changed[table] = keys
            elif value != before:
                changed[table] = value
        return changed

    def key_paths(self) -> dict[KeyPath, Any]:
        """`changes()` as the store's key paths: `(table, key)` for a key,
        and for upstreams and routes each changed entry by its name (the
        whole list only when entries were reordered or cannot be told
        apart), so a save never touches entries it did not change."""
        paths: dict[KeyPath, Any] = {}
        lists: Changes = {}
        for table, value in self.changes().items():
            if isinstance(value, dict):
                for key, item in value.items():
                    paths[(table, key)] = REMOVE if item is None else item
            else:
                lists[table] = value
        if not lists:
            return paths
        data = msgspec.to_builtins(self.snapshot)
        data.update(lists)
        try:
            wanted = msgspec.convert(data, config.Settings)
        except msgspec.ValidationError:  # the store names the bad key
            paths.update({(table,): value for table, value in lists.items()})
            return paths
        for path, value in settings_edit.diff(self.snapshot, wanted).items():
            if path[0] in lists:
                paths[path] = value
        return paths

    def show_problems(self, problems: dict[str, str]) -> list[str]:
        """Show each key's problem under its field (and clear the others);
        returns the problems that have no field of their own."""
        shown: dict[str, list[str]] = {}
        elsewhere = []
        for key, text in problems.items():
            head = key.split(".")[0].split("[")[0]
            if key in self.errors:
                shown.setdefault(key, []).append(text[:1].upper() + text[1:])
            elif head in ("upstream", "route"):
                shown.setdefault(head, []).append(entry_problem(key, text))
            else:
                elsewhere.append(f"{key}: {text}" if key else text)
        for key, label in self.errors.items():
            lines = shown.get(key, [])
            label.setText("\n".join(lines))
            label.setVisible(bool(lines))
        return elsewhere

    def refill(self, settings: config.Settings) -> Changes:
        """Show `settings` (changed elsewhere) and put the user's unsaved
        edits back on top; returns those edits."""
        pending = self.changes()
        self.fill(settings)
        self.apply(pending)
        return pending

    def apply(self, changes: Changes) -> None:
        """Show `changes` in the form, as if the user had made them."""
        by_key = {(f.table, f.key): f for f in self.fields}
        for table, value in changes.items():
            if table == "upstream":
                self.upstreams.load_values(value)
            elif table == "route":
                self.routes.load_values(value)
            else:
                for key, item in value.items():
                    by_key[(table, key)].set(item)


def bind_fields(
    sections: dict[str, Section], upstreams: UpstreamEditor, routes: RoutesEditor
) -> FormFields:
    """The form of the Settings page: every declared field of `sections`
    (gui/settings/generated.py) and the two list editors."""
    fields = [field for section in sections.values() for field in section.fields]
    return FormFields(fields, upstreams, routes)
