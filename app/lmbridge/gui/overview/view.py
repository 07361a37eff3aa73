"""Overview: the proxy with Start / Stop, each upstream's health (LM Studio's
with the proxy stopped too), today's requests, tokens, errors and median
time to first token, and a way back into first-run setup."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from lmbridge.gui.controller import ProxyController, ProxyPhase, database_text
from lmbridge.gui.formats import duration
from lmbridge.gui.health import UpstreamHealth
from lmbridge.gui.overview.manager import (
    AzureStatus,
    TodayNumbers,
    proxy_line,
    upstream_lines,
)
from lmbridge.gui.tasks import Tasks
from lmbridge.gui.widgets import StatusDot, button, copy_text, hint_label, title_label


class Tile(QFrame):
    """A big number with a caption."""

    def __init__(self, caption: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.value = QLabel("0")
        font = self.value.font()
        font.setPointSizeF(font.pointSizeF() * 2.0)
        font.setBold(True)
        self.value.setFont(font)
        self.caption = hint_label(caption)
        layout = QVBoxLayout(self)
        layout.addWidget(self.value)
        layout.addWidget(self.caption)


class OverviewPanel(QWidget):
    """The first page: is it running, is everything reachable, how busy."""

    setupRequested = Signal()

    def __init__(
        self,
        controller: ProxyController,
        log: TodayNumbers,
        health: UpstreamHealth,
        azure: AzureStatus,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.log = log
        self.health = health
        self.azure = azure
        self.tasks = Tasks("overview")

        self.proxy_status = StatusDot()
        self.start_button = button("Start", "play", "Start the proxy")
        self.stop_button = button("Stop", "stop", "Stop the proxy")
        self.copy_button = button("Copy URL", "copy", "Copy the endpoint URL")
        self.start_button.clicked.connect(self.start_proxy)
        self.stop_button.clicked.connect(self.stop_proxy)
        self.copy_button.clicked.connect(lambda: copy_text(controller.url))
        self.setup_button = button(
            "Set up…", "setup", "Pick models for your tools and test them"
        )
        self.setup_button.clicked.connect(self.setupRequested)
        proxy_row = QHBoxLayout()
        proxy_row.addWidget(self.proxy_status, 1)
        for widget in (
            self.start_button,
            self.stop_button,
            self.copy_button,
            self.setup_button,
        ):
            proxy_row.addWidget(widget)

        self.database_status = StatusDot()
        self.fresh_database_button = button(
            "Start a fresh database",
            "refresh",
            "Keep the damaged file under a dated name and start an empty one",
        )
        self.fresh_database_button.clicked.connect(controller.start_fresh_database)
        database_row = QHBoxLayout()
        database_row.addWidget(self.database_status, 1)
        database_row.addWidget(self.fresh_database_button)

        self.upstream_box = QGroupBox("Upstreams")
        self.upstream_layout = QVBoxLayout(self.upstream_box)
        self.upstream_dots: dict[str, StatusDot] = {}

        self.tiles = {
            "requests": Tile("requests today"),
            "tokens": Tile("tokens in / out"),
            "errors": Tile("errors"),
            "ttft": Tile("median time to first token"),
        }
        today = QGroupBox("Today")
        grid = QGridLayout(today)
        for i, tile in enumerate(self.tiles.values()):
            grid.addWidget(tile, 0, i)

        layout = QVBoxLayout(self)
        layout.addWidget(title_label("LM Bridge"))
        layout.addLayout(proxy_row)
        layout.addWidget(self.upstream_box)
        layout.addLayout(database_row)
        layout.addWidget(today)
        layout.addStretch(1)

        for signal in (
            controller.phaseChanged,
            controller.lmstudioChanged,
            controller.loadedChanged,
            controller.settingsChanged,
            health.changed,
            azure.changed,
            controller.databaseChanged,
        ):
            signal.connect(self.refresh)
        log.statsChanged.connect(self.refresh_stats)
        self.refresh()
        self.refresh_stats()

    def start_proxy(self) -> None:
        self.tasks.start(self.controller.start(), what="Starting the proxy")

    def stop_proxy(self) -> None:
        self.tasks.start(self.controller.stop(), what="Stopping the proxy")

    def refresh(self) -> None:
        kind, text = proxy_line(self.controller)
        self.proxy_status.set_status(kind, text)
        phase = self.controller.phase
        self.start_button.setEnabled(phase in (ProxyPhase.STOPPED, ProxyPhase.FAILED))
        self.stop_button.setEnabled(phase is ProxyPhase.RUNNING)
        state = self.controller.database_state
        self.database_status.set_status(
            "ok" if state.ok else "error", database_text(state)
        )
        self.fresh_database_button.setVisible(self.controller.database_fixable)
        lines = upstream_lines(self.controller, self.health, self.azure)
        names = [name for name, _k, _t in lines]
        for name in list(self.upstream_dots):
            if name not in names:
                self.upstream_dots.pop(name).deleteLater()
        for name, kind, text in lines:
            dot = self.upstream_dots.get(name)
            if dot is None:
                dot = self.upstream_dots[name] = StatusDot()
                dot.setAlignment(Qt.AlignmentFlag.AlignLeft)
                self.upstream_layout.addWidget(dot)
            dot.set_status(kind, text)

    def refresh_stats(self) -> None:
        stats = self.log.stats
        self.tiles["requests"].value.setText(f"{stats.requests:,}")
        self.tiles["tokens"].value.setText(
            f"{stats.tokens_in:,} / {stats.tokens_out:,}"
        )
        self.tiles["errors"].value.setText(f"{stats.errors:,}")
        self.tiles["ttft"].value.setText(duration(stats.median_ttft))
