"""The tray icon: state at a glance, a menu for the common actions.

The icon shows stopped / running / busy (a model loading) / error; the
tooltip the address, today's requests and the loaded model. The menu has a
status line, Start / Stop, Copy endpoint URL, Open in a terminal (a
submenu of the coding CLIs installed here, each opened on LM Bridge with
`lmbridge launch`, gui/terminal.py), the loaded models (with size
and context, proxy running or not) each with Unload, Unload all, Set up,
Open LM Bridge and Quit. A left click opens the window. Every
action calls a service; nothing here does the work itself. Menu items stay
short (`short_text`): a long status or model name is elided and the whole
text is the item's tool tip.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from lmbridge.gui.controller import ProxyController, ProxyPhase
from lmbridge.gui.formats import context_k, size_text
from lmbridge.gui.icons import TrayState, icon, tray_icon
from lmbridge.gui.models.manager import ModelsManager
from lmbridge.gui.requests.manager import RequestLog
from lmbridge.gui.tasks import Tasks
from lmbridge.gui.terminal import installed_clients, open_client
from lmbridge.gui.widgets import copy_text
from lmbridge.lmstudio import LoadedModel

# The widest a menu item's text gets, in characters.
MENU_TEXT_MAX = 60


def short_text(text: str, limit: int = MENU_TEXT_MAX) -> str:
    """`text` on one line and at most `limit` characters (ending in "…")."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


LEVEL_ICONS = {
    "info": QSystemTrayIcon.MessageIcon.Information,
    "warning": QSystemTrayIcon.MessageIcon.Warning,
    "error": QSystemTrayIcon.MessageIcon.Critical,
}


def tray_state(controller: ProxyController) -> TrayState:
    if controller.phase is ProxyPhase.FAILED:
        return TrayState.ERROR
    if not controller.running:
        return TrayState.STOPPED
    return TrayState.BUSY if controller.busy else TrayState.RUNNING


def model_label(model: LoadedModel) -> str:
    """ "qwen/qwen3-coder-30b (17.3 GB, 32K context)"."""
    facts = [size_text(model.size_bytes)] if model.size_bytes else []
    facts.append(f"{context_k(model.context_length)} context")
    return f"{model.identifier} ({', '.join(facts)})"


class TrayIcon(QObject):
    """The system tray icon and its menu."""

    openRequested = Signal()
    setupRequested = Signal()
    quitRequested = Signal()

    def __init__(
        self,
        controller: ProxyController,
        log: RequestLog,
        models: ModelsManager,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.log = log
        self.models = models
        self.tasks = Tasks("tray")
        self.menu = QMenu()
        self.menu.setToolTipsVisible(True)
        self.status_action = self.menu.addAction("")
        self.status_action.setEnabled(False)
        self.toggle_action = self.menu.addAction("")
        self.toggle_action.triggered.connect(self.toggle_proxy)
        self.copy_action = self.menu.addAction(icon("copy"), "Copy endpoint URL")
        self.copy_action.triggered.connect(lambda: copy_text(controller.url))
        self.terminal_menu = QMenu("Open in a terminal", self.menu)
        self.terminal_menu.setIcon(icon("terminal"))
        self.terminal_menu.setToolTipsVisible(True)
        self.terminal_menu.aboutToShow.connect(self.fill_terminal_menu)
        self.menu.addMenu(self.terminal_menu)
        self.fill_terminal_menu()
        self.menu.addSeparator()
        self.model_actions: list[QAction] = []
        self.unload_all_action = QAction(icon("trash"), "Unload all models", self.menu)
        self.unload_all_action.triggered.connect(models.unload_all)
        self.menu.addAction(self.unload_all_action)
        self.menu.addSeparator()
        self.setup_action = self.menu.addAction(icon("setup"), "Set up LM Bridge…")
        self.setup_action.triggered.connect(self.setupRequested)
        self.open_action = self.menu.addAction("Open LM Bridge")
        self.open_action.triggered.connect(self.openRequested)
        self.quit_action = self.menu.addAction("Quit LM Bridge")
        self.quit_action.triggered.connect(self.quitRequested)

        self.icon = QSystemTrayIcon(tray_icon(TrayState.STOPPED), self)
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._on_activated)
        for signal in (
            controller.phaseChanged,
            controller.loadedChanged,
            controller.busyChanged,
            controller.lmstudioChanged,
        ):
            signal.connect(self.refresh)
        log.statsChanged.connect(self._refresh_tooltip)
        self._menu_models: tuple[str, ...] | None = None
        self.refresh()

    @property
    def state(self) -> TrayState:
        return tray_state(self.controller)

    def tooltip(self) -> str:
        controller = self.controller
        if controller.phase is ProxyPhase.FAILED:
            lines = [f"LM Bridge — not running: {controller.error}"]
        elif controller.running:
            lines = [f"LM Bridge — {controller.url}"]
        else:
            lines = ["LM Bridge — stopped"]
        lines.append(f"{self.log.stats.requests:,} requests today")
        loaded = ", ".join(m.identifier for m in controller.loaded)
        if controller.busy:
            lines.append("Loading: " + ", ".join(controller.loading))
        if loaded:
            lines.append(f"Loaded: {loaded}")
        return "\n".join(lines)

    def _refresh_tooltip(self) -> None:
        self.icon.setToolTip(self.tooltip())

    def refresh(self) -> None:
        controller = self.controller
        self.icon.setIcon(tray_icon(self.state))
        self._refresh_tooltip()
        status = self.tooltip().splitlines()[0]
        # The reason a failed proxy gives can be long: the item says "not
        # running" and its tool tip (and the window) says why.
        failed = controller.phase is ProxyPhase.FAILED
        self.status_action.setText(
            "LM Bridge — not running" if failed else short_text(status)
        )
        self.status_action.setToolTip(status)
        running = controller.running
        self.toggle_action.setText("Stop proxy" if running else "Start proxy")
        self.toggle_action.setIcon(icon("stop" if running else "play"))
        self.toggle_action.setEnabled(
            controller.phase
            in (ProxyPhase.RUNNING, ProxyPhase.STOPPED, ProxyPhase.FAILED)
        )
        shown = tuple(model_label(m) for m in controller.loaded)
        self.unload_all_action.setVisible(len(shown) > 1)
        if shown == self._menu_models:
            return
        self._menu_models = shown
        for action in self.model_actions:
            self.menu.removeAction(action)
            action.deleteLater()
        self.model_actions = []
        for model, label in zip(controller.loaded, shown, strict=True):
            action = QAction(icon("stop"), short_text(f"Unload {label}"), self.menu)
            action.setToolTip(f"Unload {label} from LM Studio")
            action.triggered.connect(
                lambda _=False, ident=model.identifier: self.models.unload(ident)
            )
            self.menu.insertAction(self.unload_all_action, action)
            self.model_actions.append(action)

    def fill_terminal_menu(self) -> None:
        """One item per coding CLI installed now (looked up on each opening)."""
        self.terminal_menu.clear()
        found = installed_clients()
        for client in found:
            action = self.terminal_menu.addAction(client.name)
            action.setToolTip(
                f"Open {client.name} in a terminal, on LM Bridge "
                f"(lmbridge launch {client.id})"
            )
            action.triggered.connect(
                lambda _=False, c=client.id: open_client(c, self.controller.config_path)
            )
        if not found:
            none = self.terminal_menu.addAction("No coding CLI found on PATH")
            none.setEnabled(False)
            none.setToolTip("lmbridge launch --list names them and how to install")

    def toggle_proxy(self) -> None:
        if self.controller.running:
            self.tasks.start(self.controller.stop(), what="Stopping the proxy")
        else:
            self.tasks.start(self.controller.start(), what="Starting the proxy")

    def show(self) -> None:
        self.icon.show()

    def hide(self) -> None:
        self.icon.hide()

    def notify(self, title: str, text: str, level: str = "info") -> None:
        self.icon.showMessage(title, text, LEVEL_ICONS.get(level, LEVEL_ICONS["info"]))

    def _on_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (
            QSystemTrayIcon.ActivationReason.Trigger,
            QSystemTrayIcon.ActivationReason.DoubleClick,
        ):
            self.openRequested.emit()
