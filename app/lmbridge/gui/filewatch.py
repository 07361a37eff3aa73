"""Edits of config.toml made outside the app (a text editor, the CLI) reach
the app while it runs.

`ConfigWatcher` watches the settings file AND its directory: editors often
save by writing a new file and renaming it over the old one, which ends a
watch on the file itself. Changes are debounced (an editor's save is several
events) and then handed to `on_change`, which re-reads the file and
announces what changed (the controller's `check_disk`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QFileSystemWatcher, QObject, QTimer

DEBOUNCE_MS = 250


class ConfigWatcher(QObject):
    """Calls `on_change()` shortly after the file at `path` changed."""

    def __init__(
        self,
        path: Path,
        on_change: Callable[[], object],
        parent: QObject | None = None,
        debounce_ms: int = DEBOUNCE_MS,
    ) -> None:
        super().__init__(parent)
        self.path = path
        self.on_change = on_change
        self._watcher = QFileSystemWatcher(self)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(debounce_ms)
        self._timer.timeout.connect(self._fire)
        self._watcher.fileChanged.connect(self._changed)
        self._watcher.directoryChanged.connect(self._changed)
        self.rewatch()

    def rewatch(self) -> None:
        """(Re-)add the watches: the file may have been replaced or created."""
        directory = self.path.parent
        if directory.is_dir() and str(directory) not in self._watcher.directories():
            self._watcher.addPath(str(directory))
        if self.path.is_file() and str(self.path) not in self._watcher.files():
            self._watcher.addPath(str(self.path))

    def _changed(self, _path: str) -> None:
        self._timer.start()

    def _fire(self) -> None:
        self.rewatch()
        self.on_change()

    def stop(self) -> None:
        self._timer.stop()
        for paths in (self._watcher.files(), self._watcher.directories()):
            if paths:
                self._watcher.removePaths(paths)
