"""Preferences of the desktop app itself (not the proxy's settings):
notices already shown and the window's geometry.

Kept in `gui.ini` next to config.toml (so `LMBRIDGE_HOME` relocates them
too); the proxy's settings stay in config.toml.

A notice is recorded as seen only once it was really on a screen: the app
asks `seen()` before showing it and calls `mark_seen()` after, and only on
a real display (`on_screen()`), so an offscreen run never uses it up.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtGui import QGuiApplication

from lmbridge import config

# Qt platforms that draw nowhere a person can see.
INVISIBLE_PLATFORMS = frozenset({"offscreen", "minimal", "minimalegl"})


def on_screen() -> bool:
    """Whether the running QGuiApplication draws on a real display."""
    return QGuiApplication.platformName() not in INVISIBLE_PLATFORMS


class Prefs:
    """Typed access to gui.ini."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or config.config_dir() / "gui.ini"
        self._settings = QSettings(str(self.path), QSettings.Format.IniFormat)

    def seen(self, notice: str) -> bool:
        """Whether the notice (or the first-run setup) was already shown."""
        return bool(self._settings.value(f"notices/{notice}", False, bool))

    def mark_seen(self, notice: str) -> None:
        """Record that the user has seen the notice; it is not shown again."""
        self._settings.setValue(f"notices/{notice}", True)
        self._settings.sync()

    @property
    def geometry(self) -> QByteArray | None:
        value = self._settings.value("window/geometry")
        return value if isinstance(value, QByteArray) else None

    @geometry.setter
    def geometry(self, value: QByteArray) -> None:
        self._settings.setValue("window/geometry", value)
        self._settings.sync()
