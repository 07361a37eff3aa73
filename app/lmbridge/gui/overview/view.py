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

from lmbridge.gui.azure.manager import AzureAccounts
from lmbridge.gui.controller import ProxyController, ProxyPhase
from lmbridge.gui.health import UpstreamHealth
from lmbridge.gui.requests.manager import RequestLog, duration
from lmbridge.gui.tasks import Tasks
from lmbridge.gui.widgets import StatusDot, button, copy_text, hint_label, title_label
from lmbridge.lmstudio import ConnectionState
from lmbridge.server.services import managed_upstream

KIND_NAMES = {
    "lmstudio": "LM Studio",
    "openai": "OpenAI-compatible",
    "anthropic": "Anthropic",
    "azure-foundry": "Azure AI Foundry",
}


def context_k(tokens: int) -> str:
    """32768 -> "32K"."""
    return (
        f"{tokens // 1024}K" if tokens >= 1024 and tokens % 1024 == 0 else str(tokens)
    )


def proxy_line(controller: ProxyController) -> tuple[str, str]:
    """(dot kind, text) for the proxy itself."""
    phase = controller.phase
    if phase is ProxyPhase.RUNNING:
        return "ok", f"Running on {controller.url}"
    if phase is ProxyPhase.STARTING:
        return "warning", f"Starting on {controller.url}…"
    if phase is ProxyPhase.STOPPING:
        return "warning", "Stopping…"
    if phase is ProxyPhase.FAILED:
        return "error", f"Not running: {controller.error}"
    return "off", f"Stopped (would listen on {controller.url})"


def upstream_lines(
    controller: ProxyController, health: UpstreamHealth, azure: AzureAccounts
) -> list[tuple[str, str, str]]:
    """(name, dot kind, text) for every configured upstream."""
    lines = []
    managed_name = managed_upstream(controller.settings)
    for up in controller.settings.upstream:
        kind = KIND_NAMES.get(up.kind, up.kind)
        label = f"{up.name} ({kind})"
        if up.kind == "azure-foundry":
            account = azure.accounts.get(up.name)
            text = account.describe() if account else "not checked"
            dot = "ok" if account and account.signed_in else "warning"
            lines.append((up.name, dot, f"{label} — {text}"))
            continue
        managed = managed_name == up.name and controller.lmstudio is not None
        if managed and controller.lmstudio_status is not None:
            lines.append((up.name, *_lmstudio_line(controller, label)))
            continue
        check = health.checks.get(up.name)
        if not controller.running:
            lines.append((up.name, "off", f"{label} — {up.base_url}"))
        elif check is None:
            lines.append((up.name, "off", f"{label} — checking {up.base_url}…"))
        elif check.reachable:
            lines.append((up.name, "ok", f"{label} — reachable at {up.base_url}"))
        else:
            why = check.error or f"HTTP {check.status}"
            lines.append(
                (up.name, "error", f"{label} — unreachable at {up.base_url}: {why}")
            )
    return lines


def _lmstudio_line(controller: ProxyController, label: str) -> tuple[str, str]:
    status = controller.lmstudio_status
    assert status is not None
    if status.state is ConnectionState.CONNECTED:
        models = ", ".join(
            f"{m.identifier} ({context_k(m.context_length)})" for m in controller.loaded
        )
        loaded = f"loaded: {models}" if models else "no model loaded"
        return "ok", f"{label} — connected at {status.address}; {loaded}"
    if status.state is ConnectionState.CONNECTING:
        return "warning", f"{label} — connecting…"
    why = f" ({status.error})" if status.error else ""
    return "error", (
        f"{label} — LM Studio is not reachable{why}; start LM Studio and its "
        "server (Developer ▸ Start Server)"
    )


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
        log: RequestLog,
        health: UpstreamHealth,
        azure: AzureAccounts,
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
        layout.addWidget(today)
        layout.addStretch(1)

        for signal in (
            controller.phaseChanged,
            controller.lmstudioChanged,
            controller.loadedChanged,
            controller.settingsChanged,
            health.changed,
            azure.changed,
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
