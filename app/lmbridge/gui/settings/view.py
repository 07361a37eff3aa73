"""Settings: server (with allowed origins and the access token), upstreams
(with their timeouts) and routes, the minimum-context policy, the chat API's
defaults, API keys (to the keyring, shown masked), start at login and the
log level.

Nothing is saved until it validates as a whole (the same check the proxy
makes at start); the controller's `SettingsService` writes the file and
keeps a backup. Saved settings apply when the proxy restarts, which the
page offers.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from lmbridge import autostart, config, logs
from lmbridge.gui import message
from lmbridge.gui.controller import ProxyController
from lmbridge.gui.portfix import upstream_port_reason
from lmbridge.gui.prefs import Prefs
from lmbridge.gui.settings.fields import bind_fields
from lmbridge.gui.settings.form import RoutesEditor, UpstreamEditor
from lmbridge.gui.settings.manager import SettingsManager
from lmbridge.gui.settings.secrets_box import AccessTokenRow, KeysBox, masked
from lmbridge.gui.tasks import Tasks
from lmbridge.gui.widgets import Banner, button, hint_label, title_label
from lmbridge.settings_store import SettingsInvalid

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
__all__ = ["SettingsPanel", "masked"]


def spin(low: int, high: int, step: int = 1, suffix: str = "") -> QSpinBox:
    box = QSpinBox()
    box.setRange(low, high)
    box.setSingleStep(step)
    box.setGroupSeparatorShown(True)
    box.setSuffix(suffix)
    return box


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
        self.manager = SettingsManager(controller)
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
        self.port.valueChanged.connect(self.check_port)
        self.port_fallback = QCheckBox("Take the next free port when it is taken")
        self.origins = QLineEdit()
        self.origins.setPlaceholderText("none: every web page is refused")
        self.token = AccessTokenRow(self.manager, self.tasks, self._needs_restart)
        server = QGroupBox("Server")
        form = QFormLayout(server)
        form.addRow("Listen on", self.host)
        form.addRow("Port", self.port)
        form.addRow("", self.port_fallback)
        form.addRow("Allowed web origins", self.origins)
        form.addRow(
            "",
            hint_label(
                "Web pages allowed to call the proxy from a browser, comma-"
                "separated (e.g. http://localhost:3000)."
            ),
        )
        form.addRow("Access token", self.token)
        form.addRow(
            "",
            hint_label(
                "When set, clients must send it (Authorization: Bearer or "
                "x-api-key). Kept in the keyring, never in the file."
            ),
        )

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

        self.text_model = QLineEdit()
        self.vision_model = QLineEdit()
        self.max_image = spin(1, 100, 1, " MB")
        chat = QGroupBox("Chat API defaults")
        form = QFormLayout(chat)
        form.addRow("Text model", self.text_model)
        form.addRow("Vision model", self.vision_model)
        form.addRow("Largest image", self.max_image)
        form.addRow(
            "",
            hint_label(
                "Models /chat and /chat/vision use when a request names none "
                "(empty: the request must name one)."
            ),
        )

        self.keys_box = KeysBox(self.manager, self.tasks, self._needs_restart)

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
        for widget in (
            server,
            self.upstreams,
            self.routes,
            lm,
            chat,
            self.keys_box,
            app_box,
        ):
            layout.addWidget(widget)
        layout.addWidget(self.where)
        layout.addStretch(1)
        self.form = bind_fields(self)
        self.port_error = self.form.errors["server.port"]
        self._saving = False
        self.load()
        controller.settingsChanged.connect(self._on_settings_changed)

    # -- form <-> settings -----------------------------------------------------

    def load(self) -> None:
        """Fill the form from the current settings (Revert: unsaved edits
        are dropped)."""
        self.form.fill(self.manager.settings)
        self._show_app_state()

    def _show_app_state(self) -> None:
        self.token.refresh()
        status = autostart.status()
        self.start_at_login.blockSignals(True)
        self.start_at_login.setChecked(status.enabled)
        self.start_at_login.blockSignals(False)
        self.autostart_where.setText(f"Set in {status.location}")
        self.where.setText(f"Saved in {self.manager.path}")
        self.check_port()
        self.refresh_keys()

    def _on_settings_changed(self) -> None:
        """The settings changed elsewhere (wizard, tray, another page, the
        file): show them, keeping the user's unsaved edits on top."""
        if self._saving:
            return
        pending = self.form.refill(self.manager.settings)
        self._show_app_state()
        if pending:
            self.banner.show_message(
                "info",
                "The settings were changed elsewhere; the form shows them, with "
                "your unsaved edits kept. Save writes only what you changed.",
                [("Discard my edits", self.load)],
            )

    def settings_from_form(self) -> config.Settings:
        """The current settings with the user's changes, validated;
        ConfigError names what is wrong."""
        return self.manager.merged(self.form.changes())

    def check_port(self) -> str:
        """Show (and return) why the port cannot be used ("" if it can)."""
        upstreams = [
            (str(up.get("name", "")), str(up.get("base_url", "")))
            for up in self.upstreams.values()
        ]
        reason = upstream_port_reason(
            self.host.text().strip() or "127.0.0.1", self.port.value(), upstreams
        )
        self.port_error.setText(reason[:1].upper() + reason[1:])
        self.port_error.setVisible(bool(reason))
        return reason

    def save(self) -> None:
        if self.check_port():
            self.banner.show_message(
                "error", "Not saved: the port is not usable (see the Port field)."
            )
            return
        changes = self.form.key_paths()
        if not changes:
            self.banner.show_message("info", "Nothing to save: no field was changed.")
            return
        problems = self.manager.problems(changes)
        if problems:
            self._not_saved(problems)
            return
        self._saving = True
        try:
            saved = self.manager.save_changes(changes)
        except SettingsInvalid as exc:  # changed on disk since the check
            self._not_saved(exc.problems)
            return
        except OSError as exc:
            self.banner.show_message(
                "error", f"Could not write {self.manager.path}: {exc.strerror or exc}"
            )
            return
        except config.ConfigError as exc:
            self.banner.show_message("error", f"Not saved: {exc}")
            return
        finally:
            self._saving = False
        kept = ""
        if saved.backup is not None:
            where = saved.backup.relative_to(self.manager.path.parent)
            kept = f" (the previous file is kept as {where})"
        if self.controller.restart_needed:
            self.banner.show_message(
                "warning",
                f"Saved{kept}. The running proxy still uses the old settings: "
                "restart it to apply them.",
                [("Restart proxy now", self.restart)],
            )
        elif not self.controller.running:
            self.banner.show_message(
                "info",
                f"Saved{kept}. The proxy is not running.",
                [("Start proxy now", self.start_proxy)],
            )
        else:
            self.banner.show_message("info", f"Saved{kept}.")
        self.load()

    def _not_saved(self, problems: dict[str, str]) -> None:
        """Nothing was written: each problem next to its field."""
        elsewhere = self.form.show_problems(problems)
        count = len(problems)
        text = (
            f"Not saved: {count} field{'s' if count > 1 else ''} "
            "need fixing (marked in red)."
        )
        if elsewhere:
            text += " " + "; ".join(elsewhere)
        self.banner.show_message("error", text)

    def _needs_restart(self, text: str) -> None:
        if self.controller.running:
            self.controller.restart_needed = True
            self.banner.show_message(
                "warning", text, [("Restart proxy now", self.restart)]
            )

    def restart(self) -> None:
        self.tasks.start(self._restart(), what="Restarting the proxy")

    async def _restart(self) -> None:
        if await self.controller.restart():
            message.info(f"The proxy restarted on {self.controller.url}")
        else:
            self._say_not_running()

    def start_proxy(self) -> None:
        self.tasks.start(self._start(), what="Starting the proxy")

    async def _start(self) -> None:
        if await self.controller.start():
            message.info(f"The proxy runs on {self.controller.url}")
        else:
            self._say_not_running()

    def _say_not_running(self) -> None:
        """A (re)start failed: why, and the way back."""
        self.banner.show_message(
            "error",
            f"The proxy is not running: {self.controller.error}.",
            [("Start proxy", self.start_proxy)],
        )

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
        self.keys_box.show_names(self._key_names())

    @property
    def key_rows(self) -> dict[str, Any]:
        return self.keys_box.rows
