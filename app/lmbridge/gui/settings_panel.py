"""Settings: server, upstreams and routes, the minimum-context policy, API
keys (to the keyring, shown masked), start at login and the log level.

Nothing is saved until it validates as a whole (`config.parse`, the same
check the proxy makes at start); the file is backed up first. Saved
settings apply when the proxy restarts, which the page offers.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

import msgspec
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from lmbridge import autostart, config, logs
from lmbridge.auth.secrets import SECRETS
from lmbridge.gui import message
from lmbridge.gui.controller import ProxyController
from lmbridge.gui.prefs import Prefs
from lmbridge.gui.settings_form import RoutesEditor, UpstreamEditor
from lmbridge.gui.tasks import Tasks
from lmbridge.gui.widgets import Banner, button, hint_label, title_label

POLICIES = ("auto", "warn", "off")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def masked(key: str) -> str:
    """A stored key as the page shows it: dots and the last four characters."""
    return "•" * 8 + (key[-4:] if len(key) >= 12 else "")


def write_config(path: Path, text: bytes) -> Path | None:
    """Write `text` to `path` atomically, keeping the old file as `.bak`."""
    backup = None
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        backup = path.with_name(path.name + ".bak")
        shutil.copy2(path, backup)
    temp = path.with_name(path.name + ".tmp")
    temp.write_bytes(text)
    os.replace(temp, path)
    return backup


def apply_log_level(level: str) -> None:
    """Use `level` for the log file the app writes now (if it writes one)."""
    root = logging.getLogger()
    handlers = [h for h in root.handlers if isinstance(h, logs.LogFileHandler)]
    for handler in handlers:
        handler.setLevel(level)
    if handlers and root.getEffectiveLevel() > handlers[0].level:
        root.setLevel(level)


def spin(low: int, high: int, step: int = 1, suffix: str = "") -> QSpinBox:
    box = QSpinBox()
    box.setRange(low, high)
    box.setSingleStep(step)
    box.setGroupSeparatorShown(True)
    box.setSuffix(suffix)
    return box


class KeyRow:
    """One upstream's API key: its state, a masked entry, Save and Remove."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.state = QLabel("checking…")
        self.entry = QLineEdit()
        self.entry.setEchoMode(QLineEdit.EchoMode.Password)
        self.entry.setPlaceholderText("paste a new key")
        self.save = button("Save key")
        self.remove = button("Remove")


class SettingsPanel(QWidget):
    """The Settings page."""

    def __init__(
        self,
        controller: ProxyController,
        prefs: Prefs,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.prefs = prefs
        self.tasks = Tasks("settings")
        self.banner = Banner()
        self.save_button = button("Save", "check")
        self.revert_button = button("Revert", "refresh", "Discard unsaved changes")
        self.save_button.clicked.connect(self.save)
        self.revert_button.clicked.connect(self.load)
        top = QHBoxLayout()
        top.addWidget(title_label("Settings"), 1)
        top.addWidget(self.revert_button)
        top.addWidget(self.save_button)

        self.host = QLineEdit()
        self.port = spin(0, 65535)
        self.port.setGroupSeparatorShown(False)
        self.port_fallback = QCheckBox("Take the next free port when it is taken")
        server = QGroupBox("Server")
        form = QFormLayout(server)
        form.addRow("Listen on", self.host)
        form.addRow("Port", self.port)
        form.addRow("", self.port_fallback)

        self.upstreams = UpstreamEditor()
        self.routes = RoutesEditor()
        self.upstreams.changed.connect(self._refresh_keys_later)

        self.manage = QCheckBox(
            "Manage LM Studio's models (load on demand, check context)"
        )
        self.min_context = spin(512, 1_048_576, 1024, " tokens")
        self.policy = QComboBox()
        for value, label in (
            ("auto", "reload the model with the minimum"),
            ("warn", "only warn"),
            ("off", "do not check"),
        ):
            self.policy.addItem(label, value)
        self.load_context = spin(512, 1_048_576, 1024, " tokens")
        self.load_ttl = spin(0, 7 * 86400, 60, " s")
        self.load_ttl.setSpecialValueText("stay loaded")
        self.load_on_demand = QCheckBox("Load a requested model that is not loaded")
        lm = QGroupBox("LM Studio: minimum context")
        form = QFormLayout(lm)
        form.addRow("", self.manage)
        form.addRow("Minimum context", self.min_context)
        form.addRow("Below the minimum", self.policy)
        form.addRow("Context for loads on demand", self.load_context)
        form.addRow("Unload when idle for", self.load_ttl)
        form.addRow("", self.load_on_demand)

        self.keys_box = QGroupBox("API keys")
        self.keys_layout = QGridLayout(self.keys_box)
        self.key_rows: dict[str, KeyRow] = {}
        # Bumped by every change, so a slow keyring read never overwrites it.
        self._keys_seen = 0

        self.start_at_login = QCheckBox("Start LM Bridge when I log in")
        self.autostart_where = hint_label()
        self.log_level = QComboBox()
        self.log_level.addItems(list(LOG_LEVELS))
        app_box = QGroupBox("App")
        form = QFormLayout(app_box)
        form.addRow("", self.start_at_login)
        form.addRow("", self.autostart_where)
        form.addRow("Log file level", self.log_level)
        form.addRow("", hint_label(f"The log file is {logs.log_file()}"))
        self.start_at_login.toggled.connect(self._set_autostart)

        self.where = hint_label()
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.banner)
        for widget in (server, self.upstreams, self.routes, lm, self.keys_box, app_box):
            layout.addWidget(widget)
        layout.addWidget(self.where)
        layout.addStretch(1)
        self.load()

    # -- form <-> settings -----------------------------------------------------

    def load(self) -> None:
        """Fill the form from the current settings."""
        s = self.controller.settings
        self.host.setText(s.server.host)
        self.port.setValue(s.server.port)
        self.port_fallback.setChecked(s.server.port_fallback)
        self.upstreams.load(s.upstream)
        self.routes.load(s.route)
        lm = s.lmstudio
        self.manage.setChecked(lm.manage)
        self.min_context.setValue(lm.min_context)
        self.policy.setCurrentIndex(POLICIES.index(lm.context_policy))
        self.load_context.setValue(lm.load_context_length)
        self.load_ttl.setValue(lm.load_ttl_seconds or 0)
        self.load_on_demand.setChecked(lm.load_on_demand)
        self.log_level.setCurrentText(s.logging.level)
        status = autostart.status()
        self.start_at_login.blockSignals(True)
        self.start_at_login.setChecked(status.enabled)
        self.start_at_login.blockSignals(False)
        self.autostart_where.setText(f"Set in {status.location}")
        self.where.setText(f"Saved in {self.controller.config_path}")
        self.refresh_keys()

    def settings_from_form(self) -> config.Settings:
        """The form as validated Settings; ConfigError names what is wrong."""
        data: dict[str, Any] = msgspec.to_builtins(self.controller.settings)
        data["server"] = {
            **data.get("server", {}),
            "host": self.host.text().strip(),
            "port": self.port.value(),
            "port_fallback": self.port_fallback.isChecked(),
        }
        data["upstream"] = self.upstreams.values()
        data["route"] = self.routes.values()
        data["lmstudio"] = {
            **data.get("lmstudio", {}),
            "manage": self.manage.isChecked(),
            "min_context": self.min_context.value(),
            "context_policy": self.policy.currentData(),
            "load_context_length": self.load_context.value(),
            "load_ttl_seconds": self.load_ttl.value() or None,
            "load_on_demand": self.load_on_demand.isChecked(),
        }
        data["logging"] = {
            **data.get("logging", {}),
            "level": self.log_level.currentText(),
        }
        source = str(self.controller.config_path)
        if not data["upstream"]:
            raise config.ConfigError(f"{source}: add at least one upstream")
        try:
            settings = msgspec.convert(data, config.Settings)
        except msgspec.ValidationError as exc:
            raise config.ConfigError(f"{source}: {exc}") from None
        return config.parse(config.dump(settings), source)

    def save(self) -> None:
        try:
            settings = self.settings_from_form()
        except config.ConfigError as exc:
            self.banner.show_message("error", f"Not saved: {exc}")
            return
        path = self.controller.config_path
        try:
            backup = write_config(path, config.dump(settings))
        except OSError as exc:
            self.banner.show_message(
                "error", f"Could not write {path}: {exc.strerror or exc}"
            )
            return
        self.controller.use_settings(settings)
        apply_log_level(settings.logging.level)
        kept = f" (the previous file is kept as {backup.name})" if backup else ""
        if self.controller.restart_needed:
            self.banner.show_message(
                "warning",
                f"Saved{kept}. The running proxy still uses the old settings: "
                "restart it to apply them.",
                [("Restart proxy now", self.restart)],
            )
        else:
            self.banner.show_message("info", f"Saved{kept}.")
        self.load()

    def restart(self) -> None:
        self.tasks.start(self._restart(), what="Restarting the proxy")

    async def _restart(self) -> None:
        if await self.controller.restart():
            message.info(f"The proxy restarted on {self.controller.url}")

    # -- app preferences (apply at once) -------------------------------------

    def _set_autostart(self, enabled: bool) -> None:
        try:
            if enabled:
                where = autostart.enable()
                message.info(f"LM Bridge will start when you log in ({where})")
            else:
                autostart.disable()
                message.info("LM Bridge will no longer start when you log in")
        except autostart.AutostartError as exc:
            message.error(f"Could not change start at login: {exc}")
            self.start_at_login.blockSignals(True)
            self.start_at_login.setChecked(not enabled)
            self.start_at_login.blockSignals(False)

    # -- API keys ------------------------------------------------------------------

    def _refresh_keys_later(self) -> None:
        if sorted(self.key_rows) != sorted(self._key_names()):
            self.refresh_keys()

    def _key_names(self) -> list[str]:
        return [
            str(u["name"])
            for u in self.upstreams.values()
            if u.get("kind") != "lmstudio" and u.get("name")
        ]

    def refresh_keys(self) -> None:
        while self.keys_layout.count():
            item = self.keys_layout.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        self.key_rows = {}
        self._keys_seen += 1
        status = SECRETS.status()
        note = (
            "Keys go to the system keyring; LM Bridge never writes them to a file."
            if status.secure
            else f"Keys entered here last for this session only: {status.reason}."
        )
        self.keys_layout.addWidget(hint_label(note), 0, 0, 1, 5)
        for i, name in enumerate(self._key_names(), start=1):
            row = self.key_rows[name] = KeyRow(name)
            row.save.clicked.connect(lambda _=False, r=row: self._save_key(r))
            row.remove.clicked.connect(lambda _=False, r=row: self._remove_key(r))
            for column, widget in enumerate(
                (QLabel(name), row.state, row.entry, row.save, row.remove)
            ):
                self.keys_layout.addWidget(widget, i, column)
        if self.key_rows:
            self.tasks.start(self._read_keys(), what="Reading the keyring")

    async def _read_keys(self) -> None:
        seen = self._keys_seen
        for name, row in list(self.key_rows.items()):
            key = await SECRETS.get(name)
            if self._keys_seen == seen:
                row.state.setText(masked(key) if key else "no key stored")
                row.remove.setEnabled(key is not None)

    def _save_key(self, row: KeyRow) -> None:
        key = row.entry.text().strip()
        if not key:
            message.warning(f"Type or paste the key of {row.name} first")
            return
        self.tasks.start(
            self._store_key(row, key), what=f"Saving the key of {row.name}"
        )

    async def _store_key(self, row: KeyRow, key: str) -> None:
        stored = await SECRETS.set(row.name, key)
        self._keys_seen += 1
        row.entry.clear()
        row.state.setText(masked(key))
        row.remove.setEnabled(True)
        if stored.where == "keyring":
            message.info(f"The key of {row.name} is in the keyring")
        else:
            message.warning(
                f"The key of {row.name} is kept for this session only: {stored.reason}"
            )
        if self.controller.running:
            self.controller.restart_needed = True
            self.banner.show_message(
                "warning",
                "Restart the proxy so the upstream uses the new key.",
                [("Restart proxy now", self.restart)],
            )

    def _remove_key(self, row: KeyRow) -> None:
        self.tasks.start(self._delete_key(row), what=f"Removing the key of {row.name}")

    async def _delete_key(self, row: KeyRow) -> None:
        await SECRETS.delete(row.name)
        self._keys_seen += 1
        row.state.setText("no key stored")
        row.remove.setEnabled(False)
        message.info(f"Removed the key of {row.name}")
