"""The main window: a sidebar of pages, one banner per lasting condition
(`message.condition`), the banner of the latest one-off message, a status
line.

Closing the window does not decide anything itself: it emits
`closeRequested` and the app applies its policy (hide to the tray, or
quit where there is no tray).

A page is given as a widget or as a function that builds it: such a page
is built when it is first shown (or asked for with `page()`), so a page and
the modules only it uses take no
memory in an app that idles in the tray.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QScrollArea,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from lmbridge.gui import message
from lmbridge.gui.controller import ProxyController
from lmbridge.gui.icons import app_icon, icon
from lmbridge.gui.overview.manager import proxy_line
from lmbridge.gui.widgets import Banner, ConditionBanners

PageFactory = Callable[[], QWidget]
# key, title, icon name, the widget or what builds it when first shown
Page = tuple[str, str, str, QWidget | PageFactory]
# How long a one-off information message stays (warnings and errors stay
# until dismissed; lasting states are conditions and clear with their cause).
INFO_MS = 10_000


class MainWindow(QMainWindow):
    """Sidebar + stacked pages; the banner shows `message` output."""

    closeRequested = Signal()

    def __init__(
        self,
        controller: ProxyController,
        pages: list[Page],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setWindowTitle("LM Bridge")
        self.setWindowIcon(app_icon())
        self.resize(1100, 720)
        self.setObjectName("main-window")
        self.sidebar = QListWidget()
        self.sidebar.setObjectName("sidebar")
        self.sidebar.setIconSize(QSize(20, 20))
        self.sidebar.setFixedWidth(180)
        self.sidebar.setFrameShape(QListWidget.Shape.NoFrame)
        self.stack = QStackedWidget()
        self.pages: dict[str, QWidget] = {}  # the pages built so far
        self.page_keys: list[str] = []
        self._factories: dict[str, PageFactory] = {}
        self._scrolls: dict[str, QScrollArea] = {}
        for key, title, icon_name, widget in pages:
            item = QListWidgetItem(icon(icon_name), title)
            item.setData(Qt.ItemDataRole.UserRole, key)
            item.setSizeHint(QSize(160, 36))
            self.sidebar.addItem(item)
            scroll = QScrollArea()
            scroll.setWidgetResizable(True)
            scroll.setFrameShape(QScrollArea.Shape.NoFrame)
            self.stack.addWidget(scroll)
            self.page_keys.append(key)
            self._scrolls[key] = scroll
            if isinstance(widget, QWidget):
                scroll.setWidget(widget)
                self.pages[key] = widget
            else:
                self._factories[key] = widget
        self.sidebar.currentRowChanged.connect(self._on_row)
        self.sidebar.setCurrentRow(0)

        self.conditions = ConditionBanners()
        self.banner = Banner()
        self.info_timer = QTimer(self)
        self.info_timer.setSingleShot(True)
        self.info_timer.setInterval(INFO_MS)
        self.info_timer.timeout.connect(self.banner.hide)
        content = QWidget()
        column = QVBoxLayout(content)
        column.setContentsMargins(12, 12, 12, 6)
        column.addWidget(self.conditions)
        column.addWidget(self.banner)
        column.addWidget(self.stack, 1)
        central = QWidget()
        row = QHBoxLayout(central)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(0)
        row.addWidget(self.sidebar)
        row.addWidget(content, 1)
        self.setCentralWidget(central)

        self.proxy_label = QLabel()
        self.statusBar().addWidget(self.proxy_label, 1)
        controller.phaseChanged.connect(self._on_phase)
        message.global_bridge.shown.connect(self.show_message)
        self._on_phase()
        self._closing = False

    def page(self, key: str) -> QWidget:
        """The page `key`, built now if it was not yet."""
        if key not in self.pages:
            # Building the Usage page imports its chart library (a second or
            # two on a slow machine): say that something is happening.
            QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
            try:
                widget = self._factories.pop(key)()
            finally:
                QApplication.restoreOverrideCursor()
            self._scrolls[key].setWidget(widget)
            self.pages[key] = widget
        return self.pages[key]

    def _on_row(self, row: int) -> None:
        if 0 <= row < len(self.page_keys):
            self.page(self.page_keys[row])
        self.stack.setCurrentIndex(row)

    def show_page(self, key: str) -> None:
        for row in range(self.sidebar.count()):
            if self.sidebar.item(row).data(Qt.ItemDataRole.UserRole) == key:
                self.sidebar.setCurrentRow(row)
                return
        raise KeyError(key)

    def show_message(self, level: str, text: str) -> None:
        self.banner.show_message(level, text)
        if level == "info":
            self.info_timer.start()
        else:
            self.info_timer.stop()

    def bring_to_front(self) -> None:
        self.show()
        self.setWindowState(
            self.windowState() & ~Qt.WindowState.WindowMinimized
            | Qt.WindowState.WindowActive
        )
        self.raise_()
        self.activateWindow()

    def close_for_quit(self) -> None:
        """Close for real (the app is quitting)."""
        self._closing = True
        self.close()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._closing:
            event.accept()
            return
        event.ignore()
        self.closeRequested.emit()

    def _on_phase(self) -> None:
        self.proxy_label.setText(proxy_line(self.controller)[1])
