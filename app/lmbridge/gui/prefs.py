"""Preferences of the desktop app itself (not the proxy's settings):
notices already shown and the window's geometry.

Kept in `gui.ini` next to config.toml (so `LMBRIDGE_HOME` relocates them
too); the proxy's settings stay in config.toml.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

from lmbridge import config


class Prefs:
    """Typed access to gui.ini."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or config.config_dir() / "gui.ini"
        self._settings = QSettings(str(self.path), QSettings.Format.IniFormat)

    def first_time(self, notice: str) -> bool:
        """True the first time a notice is asked about, False ever after."""
        key = f"notices/{notice}"
        if self._settings.value(key, False, bool):
            return False
        self._settings.setValue(key, True)
        self._settings.sync()
        return True

    @property
    def geometry(self) -> QByteArray | None:
        value = self._settings.value("window/geometry")
        return value if isinstance(value, QByteArray) else None

    @geometry.setter
    def geometry(self, value: QByteArray) -> None:
        self._settings.setValue("window/geometry", value)
        self._settings.sync()
