"""The desktop app: one qasync loop, the proxy, the window and the tray.

`LMBridgeApp` wires the services (controller, request log, model manager,
Azure accounts, health checks) to the window, the tray and the notifier,
and owns the one shutdown path that every exit takes (tray Quit, closing
the window where there is no tray, SIGINT / SIGTERM): cancel the GUI's
tasks, stop the proxy (stop accepting, end streams, close upstreams and the
database), close LM Studio's service, hide the tray, close the window.

On the first start (no settings file yet) it opens first-run setup
(`SetupWizard`); the tray and the Overview open it again. Setup and the
one-time notices are recorded as seen (`Prefs`) only when they were on a
real screen (not Qt's offscreen platform) and, for setup, when the user
finished or dismissed it; quitting with setup open does not count.

Where a system tray exists, closing the window keeps the app in the tray;
where none exists, the window is the app and closing it quits (said once).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QApplication, QSystemTrayIcon, QWidget

from lmbridge import config
from lmbridge.gui import automation, message, qtfix
from lmbridge.gui.azure.manager import AzureAccounts
from lmbridge.gui.controller import ProxyController
from lmbridge.gui.filewatch import ConfigWatcher
from lmbridge.gui.health import UpstreamHealth
from lmbridge.gui.icons import app_icon
from lmbridge.gui.models.manager import ModelsManager
from lmbridge.gui.notifications import Notifier
from lmbridge.gui.overview.view import OverviewPanel
from lmbridge.gui.portfix import PortDoctor
from lmbridge.gui.prefs import Prefs
from lmbridge.gui.prefs import on_screen as prefs_on_screen
from lmbridge.gui.requests.manager import RequestLog
from lmbridge.gui.requests.view import RequestsPanel
from lmbridge.gui.single_instance import SingleInstance
from lmbridge.gui.tasks import Tasks
from lmbridge.gui.tray import TrayIcon
from lmbridge.gui.window import MainWindow, Page

if TYPE_CHECKING:
    from lmbridge.gui.setup.wizard import SetupWizard

log = logging.getLogger(__name__)

if qtfix.APPLIED:
    log.info("applied the PySide6 workaround for None/True/False references")

NO_TRAY_NOTICE = (
    "There is no system tray on this desktop, so this window is LM Bridge: "
    "closing it stops the proxy and quits."
)
TRAY_NOTICE = (
    "LM Bridge keeps running in the tray. Open it from the tray icon; quit from "
    "its menu."
)


class LMBridgeApp(QObject):
    """Everything the desktop app is made of, and its lifecycle."""

    def __init__(
        self,
        settings: config.Settings,
        config_path: Path | None = None,
        *,
        tray_available: bool | None = None,
        prefs: Prefs | None = None,
        setup: bool | None = None,
        on_screen: bool | None = None,
    ) -> None:
        """`setup`: open first-run setup at start (None: if no settings
        file exists yet and setup was never shown). `on_screen`: whether
        what the app shows reaches a person (None: not Qt's offscreen
        platform); only then are notices recorded as seen."""
        super().__init__()
        # Quitting is this object's decision (see `_on_close_requested`).
        QApplication.setQuitOnLastWindowClosed(False)
        self.prefs = prefs or Prefs()
        self.on_screen = on_screen if on_screen is not None else prefs_on_screen()
        self.controller = ProxyController(settings, config_path, self)
        self.log = RequestLog(self.controller, parent=self)
        self.health = UpstreamHealth(self.controller, self)
        self.azure = AzureAccounts(self.controller, self)
        self.models = ModelsManager(self.controller, self)
        self.port_doctor = PortDoctor(self.controller, self)
        self.config_watcher = ConfigWatcher(
            self.controller.config_path, self.controller.check_disk, self
        )
        self.controller.settingsChanged.connect(self.config_watcher.rewatch)
        self.tasks = Tasks("app")
        self.setup: SetupWizard | None = None
        if setup is None:
            path = self.controller.config_path
            setup = not path.exists() and not self.prefs.seen("setup")
        self._setup_at_start = setup
        self.pages = self._build_pages()
        self.window = MainWindow(self.controller, self.pages)
        if tray_available is None:
            tray_available = QSystemTrayIcon.isSystemTrayAvailable()
        self.tray: TrayIcon | None = None
        if tray_available:
            self.tray = TrayIcon(self.controller, self.log, self.models, self)
            self.tray.openRequested.connect(self.window.bring_to_front)
            self.tray.setupRequested.connect(lambda: self.open_setup())
            self.tray.quitRequested.connect(self.request_quit)
        self.notifier = Notifier(self.controller, self)
        self.notifier.notify.connect(self.notify)
        self.window.closeRequested.connect(self._on_close_requested)
        geometry = self.prefs.geometry
        if geometry is not None:
            self.window.restoreGeometry(geometry)
        self._quit = asyncio.Event()
        self._shut_down = False
        self.notifications: list[tuple[str, str, str]] = []

    def _build_pages(self) -> list[Page]:
        """The Overview and Requests now; every other page (and its modules)
        when it is first opened. Requests is built at start because its
        table model moves new requests into the request log, which the
        Sessions page and the tests read."""
        c = self.controller
        overview = OverviewPanel(c, self.log, self.health, self.azure)
        overview.setupRequested.connect(lambda: self.open_setup())
        requests = RequestsPanel(c, self.log)

        def models() -> QWidget:
            from lmbridge.gui.models.view import ModelsPanel

            return ModelsPanel(c, self.models)

        def usage() -> QWidget:
            from lmbridge.gui.usage.view import UsagePanel

            return UsagePanel(c)

        def sessions() -> QWidget:
            from lmbridge.gui.sessions.view import SessionsPanel

            return SessionsPanel(c, self.log)

        def conversations() -> QWidget:
            from lmbridge.gui.conversations.view import ConversationsPanel

            return ConversationsPanel(c)

        def azure() -> QWidget:
            from lmbridge.gui.azure.view import AzurePanel

            panel = AzurePanel(self.azure)
            panel.settingsRequested.connect(lambda: self.window.show_page("settings"))
            return panel

        def settings() -> QWidget:
            from lmbridge.gui.settings.view import SettingsPanel

            return SettingsPanel(c, self.prefs)

        def integrations() -> QWidget:
            from lmbridge.gui.integrations.view import IntegrationsPanel

            return IntegrationsPanel(c)

        return [
            ("overview", "Overview", "overview", overview),
            ("models", "Models", "models", models),
            ("requests", "Requests", "requests", requests),
            ("usage", "Usage", "usage", usage),
            ("sessions", "Sessions", "sessions", sessions),
            ("conversations", "Conversations", "conversations", conversations),
            ("azure", "Azure", "azure", azure),
            ("settings", "Settings", "settings", settings),
            ("integrations", "Integrations", "integrations", integrations),
        ]

    def page(self, key: str) -> object:
        """The page `key` (built now if it was not opened yet)."""
        return self.window.page(key)

    def open_setup(self, home: Path | None = None) -> SetupWizard:
        """Open first-run setup (or bring the open one forward).

        `home`: the user's home for LM Studio and the tools' files (tests).
        """
        if self.setup is None:
            from lmbridge.gui.setup.wizard import SetupWizard

            self.setup = SetupWizard(
                self.controller, self.models, self.azure, self.window, home=home
            )
            self.setup.finished.connect(self._on_setup_finished)
        self.window.bring_to_front()
        self.setup.show()
        self.setup.raise_()
        return self.setup

    def _on_setup_finished(self, _result: int) -> None:
        wizard, self.setup = self.setup, None
        if not self._shut_down:  # the user finished or dismissed it
            self._mark_seen("setup")
        if wizard is not None:
            wizard.deleteLater()
            if wizard.review_page.written:
                self.window.show_page("overview")

    # -- lifecycle ---------------------------------------------------------------

    async def run(self, started: Callable[[], object] | None = None) -> int:
        """Start, serve until asked to quit, then shut down. `started` is
        called once the window is up and the proxy serves."""
        await self.startup()
        if started is not None:
            started()
        await self._quit.wait()
        await self.shutdown()
        return 0

    async def startup(self) -> None:
        self.window.show()
        if self.tray is not None:
            self.tray.show()
        elif not self.prefs.seen("no-tray"):
            message.info(NO_TRAY_NOTICE)
            self._mark_seen("no-tray")
        await self.controller.open()
        await self.controller.start()
        if self._setup_at_start:
            self.open_setup()
        self.tasks.start(self.azure.refresh(), what="Checking the Azure sign-in")

    def request_quit(self) -> None:
        """Ask the app to quit; `run()` then takes the shutdown path."""
        self._quit.set()

    async def shutdown(self) -> None:
        """The one shutdown path."""
        if self._shut_down:
            return
        self._shut_down = True
        if self.setup is not None:
            await self.setup.aclose()
            self.setup.close()
        owners: list[object] = [
            self.tasks,
            self.models.tasks,
            self.health.tasks,
            self.log.tasks,
            self.port_doctor.tasks,
        ]
        owners += [getattr(page, "tasks", None) for page in self.window.pages.values()]
        if self.tray is not None:
            owners.append(self.tray.tasks)
        for owner in owners:
            if isinstance(owner, Tasks):
                await owner.aclose()
        self.config_watcher.stop()
        await self.health.aclose()
        await self.controller.aclose()
        if self.tray is not None:
            self.tray.hide()
        self.prefs.geometry = self.window.saveGeometry()
        self.window.close_for_quit()

    # -- policies ------------------------------------------------------------------

    def _on_close_requested(self) -> None:
        if self.tray is None:
            self.request_quit()
            return
        self.window.hide()
        if not self.prefs.seen("tray"):
            self.notify("LM Bridge is still running", TRAY_NOTICE, "info")
            self._mark_seen("tray")

    def _mark_seen(self, notice: str) -> None:
        """Record a notice as seen, if it was shown where a person sees it."""
        if self.on_screen:
            self.prefs.mark_seen(notice)
        else:
            log.info("%s shown offscreen; not recorded as seen", notice)

    def notify(self, title: str, text: str, level: str = "info") -> None:
        """A desktop notification (the tray) while the app is in the
        background; the window's banner while one of its windows has the
        focus, or without a tray. (Where the desktop has no notification
        service, Qt draws the tray's message as a balloon that stays on top
        of every window, over the setup wizard's Finish button.)"""
        self.notifications.append((title, text, level))
        if self.tray is not None and QApplication.activeWindow() is None:
            self.tray.notify(title, text, level)
            return
        shown = f"{title}: {text}"
        lasting = {c.text for c in message.global_bridge.conditions.values()}
        if shown not in lasting:  # a condition banner already says it
            message.global_bridge.show(message.Level(level), shown)


class MainThreadGC(QObject):
    """Python's cyclic garbage collector runs on whichever thread happens to
    allocate. When that is a worker (the database's thread, `to_thread`) and
    the garbage holds Qt objects, they are destroyed off the GUI thread and
    the app crashes. So automatic collection is off and this timer collects
    on the GUI thread, each generation when its threshold is reached."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = 500):
        super().__init__(parent)
        self.threshold = gc.get_threshold()
        gc.disable()
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.collect)
        self._timer.start()

    def settle(self) -> None:
        """What is alive once the app has started (modules, Qt's wrappers,
        the window, the proxy) lives as long as the app: move it out of the
        collector's reach (`gc.freeze`), so that a full collection scans
        only what came after. On the 2-core VM a full collection of the
        started app took 280-300 ms, a freeze of the window about once a
        minute under load (about one in 121 of this timer's collections is
        a full one); after `settle`, 2-5 ms. A cycle frozen here that
        became garbage later would never be freed; the app's startup
        objects live until it quits."""
        gc.freeze()
        log.debug("%d objects set aside from garbage collection", gc.get_freeze_count())

    def collect(self) -> None:
        counts = gc.get_count()
        for generation in (2, 1, 0):
            if counts[generation] > self.threshold[generation]:
                gc.collect(generation)
                return

    def stop(self) -> None:
        self._timer.stop()
        gc.enable()


def run(settings: config.Settings, config_path: Path | None = None) -> int:
    """Run the desktop app until it quits; returns the exit code."""
    from lmbridge.gui.loop import AppLoop

    qt_app = QApplication.instance() or QApplication(sys.argv)
    assert isinstance(qt_app, QApplication)
    qt_app.setApplicationName("LM Bridge")
    qt_app.setWindowIcon(app_icon())
    instance = SingleInstance()
    if not instance.claim():
        print("LM Bridge is already running; its window was brought forward")
        return 0
    loop = AppLoop(qt_app)
    asyncio.set_event_loop(loop)
    collector = MainThreadGC()
    shell = LMBridgeApp(settings, config_path)
    hook = automation.start_if_asked(shell)
    instance.activated.connect(shell.window.bring_to_front)
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, shell.request_quit)
    with loop:
        code: int = loop.run_until_complete(shell.run(started=collector.settle))
    collector.stop()
    instance.release()
    if hook is not None:
        hook.close()
    return code
