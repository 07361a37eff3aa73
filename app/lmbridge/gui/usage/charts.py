"""Day charts for the Usage page, drawn with pyqtgraph in the palette's colours.

`DayChart` is one titled plot over a fixed run of days (x = day index, the
axis ticks labelled "MM-DD"): stacked bars per key (`bars`) or lines per key
(`lines`, None for a day without a value). Colours come from one qualitative
palette that reads on light and dark backgrounds; the plot's background,
axes and legend follow the Qt palette, and follow it again when it changes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from html import escape

import pyqtgraph as pg
from PySide6.QtCore import QEvent, QSize, Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

pg.setConfigOptions(antialias=True)

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


def plain(value: float) -> str:
    """1500 -> "1,500", 12.5 -> "12.5": for milliseconds."""
    return f"{value:,.0f}" if value >= 100 or value == int(value) else f"{value:.3g}"


def _runs(values: Sequence[float | None]) -> list[list[tuple[int, float]]]:
    """(day, value) runs between the days without a value."""
    runs: list[list[tuple[int, float]]] = []
    current: list[tuple[int, float]] = []
    for x, value in enumerate(values):
        if value is None:
            if current:
                runs.append(current)
            current = []
        else:
            current.append((x, float(value)))
    if current:
        runs.append(current)
    return runs


class ValueAxis(pg.AxisItem):  # type: ignore[misc]
    """A value axis in the chart's own unit (never pyqtgraph's "(x0.001)"
    scale): labels from `text` (700k and 1.5M by default, not 700000), and
    with `integer` only whole steps, for counts (0, 1, 2; never 0.1)."""

    def __init__(
        self,
        *,
        integer: bool = False,
        text: Callable[[float], str] = compact,
    ) -> None:
        super().__init__(orientation="left")
        self.integer = integer
        self.text = text
        self.enableAutoSIPrefix(False)

    def tickSpacing(
        self, minVal: float, maxVal: float, size: float
    ) -> list[tuple[float, float]]:
        levels: list[tuple[float, float]] = super().tickSpacing(minVal, maxVal, size)
        if not self.integer:
            return levels
        whole = [(float(round(s)), o) for s, o in levels if s >= 1]
        return whole or [(1.0, 0.0)]

    def tickStrings(
        self, values: list[float], scale: float, spacing: float
    ) -> list[str]:
        return [self.text(v * scale) for v in values]


class DayChart(QWidget):
    """One chart of values per day; `integer` for counts (whole steps, the
    top at least 1), `text` formats the value axis' labels."""

    def __init__(
        self,
        title: str,
        unit: str = "",
        parent: QWidget | None = None,
        *,
        integer: bool = False,
        text: Callable[[float], str] = compact,
    ):
        super().__init__(parent)
        self.title = title
        self.integer = integer
        self.axis = pg.AxisItem(orientation="bottom")
        self.value_axis = ValueAxis(integer=integer, text=text)
        self.plot = pg.PlotWidget(
            axisItems={"bottom": self.axis, "left": self.value_axis}
        )
        self.plot.setMinimumHeight(150)
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.showGrid(x=False, y=True, alpha=0.25)
        self.unit = unit
        # The legend is a line of text under the plot: it never hides a bar
        # and takes the palette's text colour by itself.
        self.legend = QLabel()
        self.legend.setWordWrap(True)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        # One line even when empty, so the charts of a row line up.
        self.legend.setMinimumHeight(self.legend.fontMetrics().height())
        self.series_keys: list[str] = []
        self.values: dict[str, list[float | None]] = {}
        self.days: list[str] = []
        self.top = 1.0
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        layout.addWidget(self.legend)
        self._apply_palette()

    def sizeHint(self) -> QSize:
        # pyqtgraph asks for 600x480; in the page's scroll area (whose
        # wrapped labels make it size by height-for-width) that made each
        # row of charts taller than the window. Rows share what there is.
        return QSize(420, 190)

    def hasHeightForWidth(self) -> bool:
        # The wrapped legend would make the chart's height follow the plot's
        # own 480 px hint (see sizeHint).
        return False

    # -- drawing -----------------------------------------------------------

    def _reset(self, days: list[str]) -> None:
        self.plot.clear()
        self.days = days
        step = max(1, len(days) // 10)
        self.axis.setTicks([[(i, days[i][5:]) for i in range(0, len(days), step)]])
        self.plot.setXRange(-0.6, max(len(days) - 0.4, 0.6), padding=0)

    def bars(self, days: list[str], series: Mapping[str, Sequence[float]]) -> None:
        """Stacked bars: one colour per key, summed per day."""
        self._reset(days)
        shown = top_keys(series)
        self.series_keys = list(shown)
        self.values = {k: list(v) for k, v in shown.items()}
        base = [0.0] * len(days)
        xs = list(range(len(days)))
        for i, values in enumerate(shown.values()):
            color = QColor(SERIES_COLORS[i % len(SERIES_COLORS)])
            item = pg.BarGraphItem(
                x=xs, height=values, y0=list(base), width=0.7, brush=color, pen=None
            )
            self.plot.addItem(item)
            base = [b + v for b, v in zip(base, values, strict=True)]
        self._show_legend(list(shown), ())
        self._set_top(max(base, default=0.0), 1.1)

    def lines(
        self,
        days: list[str],
        series: Mapping[str, Sequence[float | None]],
        dashed: Sequence[str] = (),
    ) -> None:
        """One line per key with a dot per day; None leaves a gap."""
        self._reset(days)
        self.series_keys = list(series)
        self.values = {k: list(v) for k, v in series.items()}
        top = 0.0
        for i, (key, values) in enumerate(series.items()):
            color = QColor(SERIES_COLORS[i % len(SERIES_COLORS)])
            style = Qt.PenStyle.DashLine if key in dashed else Qt.PenStyle.SolidLine
            # One line per run of days with values: a day without one is a
            # gap (no NaN handed to pyqtgraph: all-NaN data crashes its paint).
            for run in _runs(values):
                self.plot.plot(
                    [x for x, _y in run],
                    [y for _x, y in run],
                    pen=pg.mkPen(color, width=2, style=style),
                    symbol="o",
                    symbolSize=6,
                    symbolBrush=color,
                    symbolPen=color,
                )
                top = max([top, *(y for _x, y in run)])
        self._show_legend(list(series), dashed)
        self._set_top(top, 1.15)

    def _set_top(self, top: float, headroom: float) -> None:
        """The value axis from 0 to a little above `top`."""
        high = top * headroom if top else 1.0
        if self.integer:
            high = float(max(1, math.ceil(high)))
        self.top = high
        # A little room past both ends, or pyqtgraph drops the labels there
        # (an empty count chart would have none at all).
        self.plot.setYRange(0, high, padding=0.05)

    def _show_legend(self, keys: list[str], dashed: Sequence[str]) -> None:
        parts = []
        for i, key in enumerate(keys):
            color = SERIES_COLORS[i % len(SERIES_COLORS)]
            mark = "╌" if key in dashed else "■"
            parts.append(
                f'<span style="color:{color}">{mark}</span>&nbsp;{escape(key or "—")}'
            )
        self.legend.setText("&nbsp;&nbsp;&nbsp;".join(parts))

    # -- theme --------------------------------------------------------------

    def _apply_palette(self) -> None:
        palette = self.palette()
        background = palette.color(QPalette.ColorRole.Base)
        text = palette.color(QPalette.ColorRole.WindowText)
        self.plot.setBackground(background)
        item = self.plot.getPlotItem()
        item.setTitle(self.title, color=text.name(), size="10pt")
        for name in ("left", "bottom"):
            axis = item.getAxis(name)
            axis.setPen(pg.mkPen(text))
            axis.setTextPen(pg.mkPen(text))
        if self.unit:
            item.getAxis("left").setLabel(self.unit, color=text.name())

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_palette()
        super().changeEvent(event)
