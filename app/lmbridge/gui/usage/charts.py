"""Day charts for the Usage page, painted with QPainter in the palette's colours.

`DayChart` is one titled plot over a fixed run of days (x = day index, the
axis ticks labelled "MM-DD"): stacked bars per key (`bars`) or lines per key
(`lines`, None for a day without a value: a gap). Colours come from one
qualitative palette that reads on light and dark backgrounds; the plot's
background, axes and legend follow the Qt palette, also when it changes.

Qt alone draws them: a plotting library (pyqtgraph with numpy) added 56 MB
to the app's memory for six small charts. The value axis has round steps
(1, 2 or 5 times a power of ten; whole steps for counts) labelled 700k and
1.5M, and the unit above it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from html import escape

from PySide6.QtCore import QEvent, QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

# Okabe-Ito and Tableau hues: distinguishable, legible on white and on black.
SERIES_COLORS = (
    "#4E79A7",
    "#F28E2B",
    "#59A14F",
    "#E15759",
    "#B07AA1",
    "#76B7B2",
    "#EDC948",
    "#FF9DA7",
    "#9C755F",
    "#BAB0AC",
)
MAX_SERIES = 8  # more keys are summed as "other"

_YOf = Callable[[float], float]  # a value -> its height on the plot


def top_keys(
    series: Mapping[str, Sequence[float]], limit: int = MAX_SERIES
) -> dict[str, list[float]]:
    """The `limit - 1` largest series, the rest summed as "other"."""
    ordered = sorted(series.items(), key=lambda kv: -sum(kv[1]))
    if len(ordered) <= limit:
        return {k: list(v) for k, v in ordered}
    kept = {k: list(v) for k, v in ordered[: limit - 1]}
    rest = [
        sum(vals) for vals in zip(*(v for _k, v in ordered[limit - 1 :]), strict=True)
    ]
    kept["other"] = rest
    return kept


def compact(value: float) -> str:
    """700000 -> "700k", 1500000 -> "1.5M", 2.5 -> "2.5"."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}"


def nice_ticks(top: float, whole: bool, count: int = 4) -> list[float]:
    """Round tick values from 0 to at least `top`: steps of 1, 2 or 5 times a
    power of ten, whole numbers when the values are counts."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    if whole:
        step = max(1.0, round(step))
    ticks = [0.0]
    while ticks[-1] < top - step * 1e-9:
        ticks.append(round(ticks[-1] + step, 12))
    return ticks


class Plot(QWidget):
    """The drawing area of a `DayChart`: title, axes, grid, bars or lines."""

    MARGIN = 8

    def __init__(self, chart: DayChart) -> None:
        super().__init__(chart)
        self.chart = chart
        self.setMinimumHeight(150)  # three rows of charts fit a 720 px window

    def backgroundBrush(self) -> QBrush:
        """The plot's background: the palette's Base colour."""
        return QBrush(self.palette().color(QPalette.ColorRole.Base))

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        try:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            self._paint(painter)
        finally:
            painter.end()

    def _paint(self, painter: QPainter) -> None:
        chart, palette = self.chart, self.palette()
        text = palette.color(QPalette.ColorRole.WindowText)
        painter.fillRect(self.rect(), self.backgroundBrush())
        metrics = painter.fontMetrics()
        line = metrics.height()
        title_font = QFont(painter.font())
        title_font.setBold(True)
        painter.setFont(title_font)
        painter.setPen(text)
        painter.drawText(
            QRectF(0, self.MARGIN / 2, self.width(), line),
            Qt.AlignmentFlag.AlignHCenter,
            chart.title,
        )
        painter.setFont(self.font())
        ticks = nice_ticks(chart.top, chart.whole)
        labels = [compact(t) for t in ticks]
        left = self.MARGIN + max(metrics.horizontalAdvance(x) for x in labels) + 6
        top = self.MARGIN / 2 + line * (2.4 if chart.unit else 1.6)
        area = QRectF(
            left,
            top,
            self.width() - left - self.MARGIN,
            self.height() - top - line * 1.6,
        )
        if area.width() < 20 or area.height() < 20:
            return
        if chart.unit:
            painter.drawText(QPointF(self.MARGIN, top - line * 0.6), chart.unit)
        span = ticks[-1] or 1.0

        def y_of(value: float) -> float:
            return area.bottom() - value / span * area.height()

        grid = QColor(text)
        grid.setAlpha(50)
        for value, label in zip(ticks, labels, strict=True):
            y = y_of(value)
            painter.setPen(grid)
            painter.drawLine(QPointF(area.left(), y), QPointF(area.right(), y))
            painter.setPen(text)
            painter.drawText(
                QRectF(self.MARGIN, y - line / 2, left - self.MARGIN - 6, line),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                label,
            )
        painter.drawLine(area.bottomLeft(), area.bottomRight())
        days = chart.days
        slot = area.width() / max(len(days), 1)
        step = max(1, math.ceil(len(days) / 10))
        for i in range(0, len(days), step):
            painter.drawText(
                QRectF(
                    area.left() + i * slot - slot, area.bottom() + 2, slot * 3, line
                ),
                Qt.AlignmentFlag.AlignHCenter,
                days[i][5:],
            )
        if chart.kind == "bars":
            self._paint_bars(painter, area, slot, y_of)
        else:
            self._paint_lines(painter, area, slot, y_of)

    def _paint_bars(
        self, painter: QPainter, area: QRectF, slot: float, y_of: _YOf
    ) -> None:
        base = [0.0] * len(self.chart.days)
        painter.setPen(Qt.PenStyle.NoPen)
        for i, values in enumerate(self.chart.values.values()):
            painter.setBrush(QColor(SERIES_COLORS[i % len(SERIES_COLORS)]))
            for day, value in enumerate(values):
                if not value:
                    continue
                x = area.left() + (day + 0.15) * slot
                low, high = y_of(base[day]), y_of(base[day] + value)
                painter.drawRect(QRectF(x, high, slot * 0.7, low - high))
                base[day] += value

    def _paint_lines(
        self, painter: QPainter, area: QRectF, slot: float, y_of: _YOf
    ) -> None:
        for i, (key, values) in enumerate(self.chart.values.items()):
            color = QColor(SERIES_COLORS[i % len(SERIES_COLORS)])
            pen = QPen(color, 2)
            if key in self.chart.dashed:
                pen.setStyle(Qt.PenStyle.DashLine)
            points = [
                QPointF(area.left() + (day + 0.5) * slot, y_of(v))
                if v is not None
                else None
                for day, v in enumerate(values)
            ]
            painter.setPen(pen)
            for a, b in itertools.pairwise(points):
                if a is not None and b is not None:
                    painter.drawLine(a, b)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(color)
            for point in points:
                if point is not None:
                    painter.drawEllipse(point, 3, 3)


class DayChart(QWidget):
    """One chart of values per day."""

    def __init__(self, title: str, unit: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self.title = title
        self.unit = unit
        self.kind = "bars"
        self.series_keys: list[str] = []
        self.values: dict[str, list[float | None]] = {}
        self.days: list[str] = []
        self.dashed: tuple[str, ...] = ()
        self.top = 0.0  # the largest value (bars: the largest day's sum)
        self.whole = True  # every value a whole number
        self.plot = Plot(self)
        # The legend is a line of text under the plot: it never hides a bar
        # and takes the palette's text colour by itself.
        self.legend = QLabel()
        self.legend.setWordWrap(True)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        layout.addWidget(self.legend)

    def _show(
        self, kind: str, days: list[str], values: dict[str, list[float | None]]
    ) -> None:
        self.kind = kind
        self.days = days
        self.series_keys = list(values)
        self.values = values
        numbers = [v for vs in values.values() for v in vs if v is not None]
        self.whole = all(float(v).is_integer() for v in numbers)
        self.plot.update()

    def bars(self, days: list[str], series: Mapping[str, Sequence[float]]) -> None:
        """Stacked bars: one colour per key, summed per day."""
        shown = top_keys(series)
        sums = [sum(day) for day in zip(*shown.values(), strict=True)] if shown else []
        self.top = max(sums, default=0.0)
        self.dashed = ()
        values: dict[str, list[float | None]] = {k: list(v) for k, v in shown.items()}
        self._show("bars", days, values)
        self._show_legend(list(shown), ())

    def lines(
        self,
        days: list[str],
        series: Mapping[str, Sequence[float | None]],
        dashed: Sequence[str] = (),
        top: float | None = None,
    ) -> None:
        """One line per key with a dot per day; None leaves a gap. `top`
        fixes the top of the value axis (100 for a percentage)."""
        values = {k: list(v) for k, v in series.items()}
        self.top = top or max(
            (v for vs in values.values() for v in vs if v is not None), default=0.0
        )
        self.dashed = tuple(dashed)
        self._show("lines", days, values)
        self._show_legend(list(series), dashed)

    def _show_legend(self, keys: list[str], dashed: Sequence[str]) -> None:
        parts = []
        for i, key in enumerate(keys):
            color = SERIES_COLORS[i % len(SERIES_COLORS)]
            mark = "╌" if key in dashed else "■"
            parts.append(
                f'<span style="color:{color}">{mark}</span>&nbsp;{escape(key or "—")}'
            )
        self.legend.setText("&nbsp;&nbsp;&nbsp;".join(parts))

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self.plot.update()
        super().changeEvent(event)
