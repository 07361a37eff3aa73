"""Usage: the request history over days, as charts.

Tokens per day by model and by client, time to first token and output
tokens/s (median, with p90 dashed), errors per day by kind, and the
kilobytes that sessions saved (prompts not re-sent upstream), and per model
the share of prompt tokens the upstream served from its cache. Read from the
history in the database (`[usage] record`, kept `retention_days`); bodies
are never stored. `lmbridge usage` prints the same as a table.
"""

from __future__ import annotations

from PySide6.QtGui import QHideEvent, QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QVBoxLayout,
    QWidget,
)

from lmbridge.gui.controller import ProxyController
from lmbridge.gui.formats import size_text
from lmbridge.gui.usage.charts import DayChart
from lmbridge.gui.usage.data import UsageData
from lmbridge.gui.usage.manager import LOADING, UsageManager
from lmbridge.gui.widgets import hint_label, title_label

RANGES = ((7, "Last 7 days"), (14, "Last 14 days"), (30, "Last 30 days"))


def count_text(n: int, noun: str) -> str:
    """1 request, 2 requests."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def summary_text(data: UsageData, days: int) -> str:
    return (
        f"{count_text(data.requests, 'request')}, "
        f"{count_text(data.tokens, 'token')} and "
        f"{count_text(data.error_count, 'error')} in the last {days} days; "
        f"sessions saved {size_text(data.bytes_saved)} of prompts not sent again."
    )


class UsagePanel(QWidget):
    """The Usage page: live while shown (its manager keeps it current)."""

    def __init__(self, controller: ProxyController, parent: QWidget | None = None):
        super().__init__(parent)
        self.controller = controller
        self.usage = UsageManager(controller, RANGES[0][0], self)
        self.tasks = self.usage.tasks
        self.range = QComboBox()
        for days, label in RANGES:
            self.range.addItem(label, days)
        self.range.setCurrentIndex(0)
        self.range.currentIndexChanged.connect(lambda: self.usage.set_days(self.days))
        self.summary = hint_label(LOADING + "…")
        self.summary.setObjectName("usage-summary")
        self.charts = {
            "models": DayChart("Tokens per day by model"),
            "clients": DayChart("Tokens per day by client"),
            "ttft": DayChart("Time to first token (median; p90 dashed)", "ms"),
            "speed": DayChart("Output tokens/s (median; p90 dashed)", "tokens/s"),
            "errors": DayChart("Errors per day"),
            "saved": DayChart("What sessions saved", "KB"),
            "cache": DayChart("Prompt tokens served from cache, by model", "%"),
        }
        top = QHBoxLayout()
        top.addWidget(title_label("Usage"), 1)
        top.addWidget(self.range)
        grid = QGridLayout()
        for i, chart in enumerate(self.charts.values()):
            grid.addWidget(chart, i // 2, i % 2)
            grid.setRowStretch(i // 2, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.summary)
        layout.addLayout(grid, 1)
        self.usage.loaded.connect(self._on_loaded)

    @property
    def days(self) -> int:
        return int(self.range.currentData())

    @property
    def data(self) -> UsageData | None:
        """What the page shows (None before the first read)."""
        return self.usage.data

    def refresh(self) -> None:
        """Read the whole range again (the page is live without it)."""
        self.usage.reload()

    def showEvent(self, event: QShowEvent) -> None:
        self.usage.set_active(True)
        super().showEvent(event)

    def hideEvent(self, event: QHideEvent) -> None:
        self.usage.set_active(False)
        super().hideEvent(event)

    def _on_loaded(self) -> None:
        data = self.usage.data
        if data is None:
            self.summary.setText(
                "The request history is unavailable: LM Bridge's database could"
                " not be opened (the log says why)."
            )
            return
        self.show_data(data, len(data.days))

    def show_data(self, data: UsageData, days: int) -> None:
        if data.empty:
            self.summary.setText(
                f"No requests in the last {days} days yet. Each request through "
                "LM Bridge is counted here as it finishes (metadata only, never "
                "its text)."
            )
        else:
            self.summary.setText(summary_text(data, days))
        c = self.charts
        c["models"].bars(data.days, data.tokens_by_model)
        c["clients"].bars(data.days, data.tokens_by_client)
        c["ttft"].lines(data.days, data.ttft_ms, dashed=("p90",))
        c["speed"].lines(data.days, data.speed, dashed=("p90",))
        c["errors"].bars(data.days, data.errors)
        c["saved"].bars(data.days, data.saved)
        c["cache"].lines(data.days, data.cache_share, top=100.0)
