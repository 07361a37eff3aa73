"""Settings: a group per table of config.toml, built from the settings'
declarations (`generated.py`: a widget per declared key, labels and tool
tips from its doc, ranges from its bounds), with what is not a key of the
file added: the access token and API keys, the web search provider's
too (to the keyring, shown masked), the upstreams' and routes' editors,
start at login.

Nothing is saved until it validates as a whole (the same check the proxy
makes at start); the controller's `SettingsService` writes the file and
keeps a backup. Saved settings apply when the proxy restarts, which the
page offers.
"""

from __future__ import annotations

from typing import TypeVar

from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from lmbridge import autostart, config, config_fields, logs
from lmbridge.gui import message
from lmbridge.gui.controller import ProxyController
from lmbridge.gui.portfix import upstream_port_reason
from lmbridge.gui.prefs import Prefs
from lmbridge.gui.settings.fields import bind_fields
from lmbridge.gui.settings.form import RoutesEditor, UpstreamEditor
from lmbridge.gui.settings.generated import sections_for
from lmbridge.gui.settings.manager import SettingsManager
from lmbridge.gui.settings.secrets_box import AccessTokenRow, KeysBox, masked
from lmbridge.gui.tasks import Tasks
from lmbridge.gui.widgets import Banner, button, hint_label, title_label
from lmbridge.settings_store import SettingsInvalid

__all__ = ["SettingsPanel", "masked"]
W = TypeVar("W", bound=QWidget)


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

        # Every table of keys gets a group built from its declarations
        # (config_tables); the page adds what is not a key of the file.
        self.sections = sections_for(config_fields.tables())
        server = self.sections["server"]
        self.host = self._widget("server.host", QLineEdit)
        self.port = self._widget("server.port", QSpinBox)
        self.port.valueChanged.connect(self.check_port)
        self.token = AccessTokenRow(self.manager, self.tasks, self._needs_restart)
        server.form.addRow("Access token", self.token)
        server.form.addRow(
            "",
            hint_label(
                "When set, clients must send it (Authorization: Bearer or "
                "x-api-key). Kept in the keyring, never in the file."
            ),
        )

        self.upstreams = UpstreamEditor()
        self.routes = RoutesEditor()
        self.upstreams.changed.connect(self._refresh_keys_later)
        self.keys_box = KeysBox(self.manager, self.tasks, self._needs_restart)
        self.sections["web_search"].form.addRow(
            "",
            hint_label(
                "Brave's or Tavily's key: Web search under API keys, below. "
                "Kept in the keyring, never in the file."
            ),
        )

        # The [logging] group is the app's: start at login and the log file.
        self.start_at_login = QCheckBox("Start LM Bridge when I log in")
        self.autostart_where = hint_label()
        app_form = self.sections["logging"].form
        app_form.insertRow(0, "", self.start_at_login)
        app_form.insertRow(1, "", self.autostart_where)
        app_form.addRow("", hint_label(f"The log file is {logs.log_file()}"))
        self.start_at_login.toggled.connect(self._set_autostart)

        self.where = hint_label()
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.banner)
        layout.addWidget(server.box)
        layout.addWidget(self.upstreams)
        layout.addWidget(self.routes)
        for name, section in self.sections.items():
            if name not in ("server", "logging"):
                layout.addWidget(section.box)
        layout.addWidget(self.keys_box)
        layout.addWidget(self.sections["logging"].box)
        layout.addWidget(self.where)
        layout.addStretch(1)
        self.form = bind_fields(self.sections, self.upstreams, self.routes)
        self.port_error = self.form.errors["server.port"]
        self._saving = False
        self.load()
        controller.settingsChanged.connect(self._on_settings_changed)

    def _widget(self, name: str, kind: type[W]) -> W:
        """The declared field `name`'s widget, which the page's own logic uses."""
        for section in self.sections.values():
            for field in section.fields:
                if field.name == name and isinstance(field.widget, kind):
                    return field.widget
        raise LookupError(f"the Settings page shows no {kind.__name__} for {name}")

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
        if sorted(self.keys_box.upstream_names) != sorted(self._key_names()):
            self.refresh_keys()

    def _key_names(self) -> list[str]:
        return [
            str(u["name"])
            for u in self.upstreams.values()
            if u.get("kind") != "lmstudio" and u.get("name")
        ]

    def refresh_keys(self) -> None:
        self.keys_box.show_names(self._key_names())
