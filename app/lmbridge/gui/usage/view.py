"""Usage: the request history over days, as charts.

Tokens per day by model and by client, time to first token and output
tokens/s (median, with p90 dashed), errors per day by kind, and the
kilobytes that sessions saved (prompts not re-sent upstream). Read from the
history in the database (`[usage] record`, kept `retention_days`); bodies
are never stored. `lmbridge usage` prints the same as a table.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QVBoxLayout,
    QWidget,
)

from lmbridge.gui.controller import ProxyController
from lmbridge.gui.tasks import Tasks
from lmbridge.gui.usage.charts import DayChart
from lmbridge.gui.usage.data import UsageData
from lmbridge.gui.usage.manager import UsageManager
from lmbridge.gui.widgets import button, hint_label, title_label

LOADING = "Reading the request history"
RANGES = ((7, "Last 7 days"), (14, "Last 14 days"), (30, "Last 30 days"))


def bytes_text(size: int) -> str:
    """12.3 MB, 840 KB, 12 bytes."""
    if size >= 1024**2:
        return f"{size / 1024**2:,.1f} MB"
    if size >= 1024:
        return f"{size / 1024:,.0f} KB"
    return f"{size} bytes"


def summary_text(data: UsageData, days: int) -> str:
    return (
        f"{data.requests:,} requests, {data.tokens:,} tokens and "
        f"{data.error_count:,} errors in the last {days} days; sessions saved "
        f"{bytes_text(data.bytes_saved)} of prompts not sent again."
    )


class UsagePanel(QWidget):
    """The Usage page."""

    def __init__(self, controller: ProxyController, parent: QWidget | None = None):
        super().__init__(parent)
        self.controller = controller
        self.usage = UsageManager(controller)
        self.tasks = Tasks("usage")
        self.data: UsageData | None = None
        self.range = QComboBox()
        for days, label in RANGES:
            self.range.addItem(label, days)
        self.range.setCurrentIndex(0)
        self.range.currentIndexChanged.connect(self.refresh)
        self.refresh_button = button("Refresh", "refresh")
        self.refresh_button.clicked.connect(self.refresh)
        self.summary = hint_label()
        self.charts = {
            "models": DayChart("Tokens per day by model"),
            "clients": DayChart("Tokens per day by client"),
            "ttft": DayChart("Time to first token (median; p90 dashed)", "s"),
            "speed": DayChart("Output tokens/s (median; p90 dashed)", "tokens/s"),
            "errors": DayChart("Errors per day"),
            "saved": DayChart("What sessions saved", "KB"),
        }
        top = QHBoxLayout()
        top.addWidget(title_label("Usage"), 1)
        top.addWidget(self.range)
        top.addWidget(self.refresh_button)
        grid = QGridLayout()
        for i, chart in enumerate(self.charts.values()):
            grid.addWidget(chart, i // 2, i % 2)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.summary)
        layout.addLayout(grid, 1)
        controller.phaseChanged.connect(self.refresh)
        self.refresh()

    @property
    def days(self) -> int:
        return int(self.range.currentData())

    def refresh(self) -> None:
        if not self.usage.available:
            self.summary.setText(
                "The request history is unavailable: LM Bridge's database could"
                " not be opened (the log says why)."
            )
            self.refresh_button.setEnabled(False)
            return
        self.refresh_button.setEnabled(True)
        self.tasks.cancel(LOADING)
        self.tasks.start(self._load(self.days), what=LOADING)

    async def _load(self, days: int) -> None:
        data = await self.usage.load(days)
        if data is not None:
            self.show_data(data, days)

    def show_data(self, data: UsageData, days: int) -> None:
        self.data = data
        if data.empty:
            self.summary.setText(
                f"No requests in the last {days} days yet. Each request through "
                "LM Bridge is counted here (metadata only, never its text)."
            )
        else:
            self.summary.setText(summary_text(data, days))
        c = self.charts
        c["models"].bars(data.days, data.tokens_by_model)
        c["clients"].bars(data.days, data.tokens_by_client)
        c["ttft"].lines(data.days, data.ttft, dashed=("p90",))
        c["speed"].lines(data.days, data.speed, dashed=("p90",))
        c["errors"].bars(data.days, data.errors)
        c["saved"].bars(data.days, data.saved)
