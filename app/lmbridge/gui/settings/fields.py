"""The Settings form as data: each field bound to its settings key, and
what the user changed since the form was filled.

A save writes only `FormFields.changes()`: the keys whose widget differs
from what the form was filled with. So a page opened before the wizard
wrote its routes, saved after changing only the port, changes only the
port (issue 20, point 3). When the settings change elsewhere, `refill`
shows the new values and keeps the user's unsaved edits on top.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import QLineEdit

from lmbridge import config
from lmbridge.gui.settings.form import RoutesEditor, UpstreamEditor

if TYPE_CHECKING:
    from lmbridge.gui.settings.view import SettingsPanel

POLICIES = ("auto", "warn", "off")

Changes = dict[str, Any]  # table -> {key: value}, or table -> a whole list


@dataclass(frozen=True)
class Field:
    """One scalar setting: how to read it from the form and show a value."""

    table: str
    key: str
    get: Callable[[], Any]
    set: Callable[[Any], object]


class FormFields:
    """The scalar fields and the two list editors of the Settings form."""

    def __init__(
        self,
        fields: list[Field],
        upstreams: UpstreamEditor,
        routes: RoutesEditor,
    ) -> None:
        self.fields = fields
        self.upstreams = upstreams
        self.routes = routes
        self.baseline: Changes = {}

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


def bind_fields(self: SettingsPanel) -> FormFields:
    """The Settings page's fields, each bound to its settings key."""

    def text(edit: QLineEdit) -> Callable[[], str]:
        return lambda: edit.text().strip()

    def origins() -> list[str]:
        return [o.strip() for o in self.origins.text().split(",") if o.strip()]

    mb = 1024**2
    fields = [
        Field("server", "host", text(self.host), self.host.setText),
        Field("server", "port", self.port.value, self.port.setValue),
        Field(
            "server",
            "port_fallback",
            self.port_fallback.isChecked,
            self.port_fallback.setChecked,
        ),
        Field(
            "server",
            "allowed_origins",
            origins,
            lambda v: self.origins.setText(", ".join(v)),
        ),
        Field("lmstudio", "manage", self.manage.isChecked, self.manage.setChecked),
        Field(
            "lmstudio",
            "min_context",
            self.min_context.value,
            self.min_context.setValue,
        ),
        Field(
            "lmstudio",
            "context_policy",
            self.policy.currentData,
            lambda v: self.policy.setCurrentIndex(POLICIES.index(v)),
        ),
        Field(
            "lmstudio",
            "load_context_length",
            self.load_context.value,
            self.load_context.setValue,
        ),
        Field(
            "lmstudio",
            "load_ttl_seconds",
            lambda: self.load_ttl.value() or None,
            lambda v: self.load_ttl.setValue(v or 0),
        ),
        Field(
            "lmstudio",
            "load_on_demand",
            self.load_on_demand.isChecked,
            self.load_on_demand.setChecked,
        ),
        Field(
            "chat",
            "default_text_model",
            text(self.text_model),
            self.text_model.setText,
        ),
        Field(
            "chat",
            "default_vision_model",
            text(self.vision_model),
            self.vision_model.setText,
        ),
        Field(
            "chat",
            "max_image_bytes",
            lambda: self.max_image.value() * mb,
            lambda v: self.max_image.setValue(max(1, round(v / mb))),
        ),
        Field(
            "logging",
            "level",
            self.log_level.currentText,
            self.log_level.setCurrentText,
        ),
    ]
    return FormFields(fields, self.upstreams, self.routes)
