"""Crisp SVG icons from resources/icons, drawn in the theme's colours.

Line icons use `currentColor`; `icon(name)` paints them at whatever size
and device pixel ratio Qt asks for, in the palette's text colour (or its
disabled / highlighted text colour), so they stay sharp and readable in
light and dark themes. The app and tray icons keep their own colours.
"""

from __future__ import annotations

import enum
import functools

from PySide6.QtCore import QByteArray, QRect, QRectF, QSize, Qt
from PySide6.QtGui import (
    QColor,
    QGuiApplication,
    QIcon,
    QIconEngine,
    QPainter,
    QPalette,
    QPixmap,
)
from PySide6.QtSvg import QSvgRenderer

from lmbridge.resources import resource


class TrayState(enum.StrEnum):
    """What the tray icon shows."""

    STOPPED = "stopped"
    RUNNING = "running"
    BUSY = "busy"
    ERROR = "error"


@functools.cache
def _svg(name: str) -> bytes:
    return resource(f"icons/{name}.svg").read_bytes()


class _ThemedSvgEngine(QIconEngine):
    """Paints one `currentColor` SVG in the current palette's colour."""

    def __init__(self, name: str, color: QColor | None = None) -> None:
        super().__init__()
        self._name = name
        self._color = color

    def _colour(self, mode: QIcon.Mode) -> QColor:
        if self._color is not None and mode is not QIcon.Mode.Disabled:
            return self._color
        palette = QGuiApplication.palette()
        if mode is QIcon.Mode.Disabled:
            return palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
        if mode is QIcon.Mode.Selected:
            return palette.color(QPalette.ColorRole.HighlightedText)
        return palette.color(QPalette.ColorRole.WindowText)

    def paint(
        self, painter: QPainter, rect: QRect, mode: QIcon.Mode, state: QIcon.State
    ) -> None:
        data = _svg(self._name).replace(
            b"currentColor", self._colour(mode).name().encode()
        )
        renderer = QSvgRenderer(QByteArray(data))
        renderer.render(painter, QRectF(rect))

    def pixmap(self, size: QSize, mode: QIcon.Mode, state: QIcon.State) -> QPixmap:
        pixmap = QPixmap(size)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        self.paint(painter, QRect(0, 0, size.width(), size.height()), mode, state)
        painter.end()
        return pixmap

    def clone(self) -> QIconEngine:
        return _ThemedSvgEngine(self._name, self._color)


def icon(name: str, color: QColor | str | None = None) -> QIcon:
    """A line icon from resources/icons/<name>.svg in the theme's colour
    (or in `color`, e.g. a warning in amber)."""
    _svg(name)  # fail early, naming the missing file
    colour = QColor(color) if isinstance(color, str) else color
    return QIcon(_ThemedSvgEngine(name, colour))


@functools.cache
def app_icon() -> QIcon:
    """The application icon."""
    return QIcon(str(resource("icons/app.svg")))


@functools.cache
def tray_icon(state: TrayState) -> QIcon:
    """The tray icon for a proxy state."""
    return QIcon(str(resource(f"icons/tray-{state}.svg")))


WARNING_COLOR = "#D97706"
ERROR_COLOR = "#DC2626"
OK_COLOR = "#16A34A"
