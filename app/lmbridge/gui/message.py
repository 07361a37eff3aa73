"""The one channel for messages to the user.

Code anywhere in the GUI says `message.error("...")` (or `info`, `warning`)
instead of raising a dialog; the main window shows the latest message in
its banner and the notifier decides what also becomes a desktop
notification. Like qutebrowser's `utils/message.py`, this keeps dialogs out
of deep code and makes every message observable in tests.
"""

from __future__ import annotations

import enum
import logging

from PySide6.QtCore import QObject, Signal

log = logging.getLogger(__name__)


class Level(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class MessageBridge(QObject):
    """Emits `shown(level, text)` for every message."""

    shown = Signal(str, str)

    def __init__(self) -> None:
        super().__init__()
        self.history: list[tuple[Level, str]] = []

    def show(self, level: Level, text: str) -> None:
        self.history.append((level, text))
        del self.history[:-100]
        # Failures the user is told about are not program errors: log them
        # at INFO so an expected failure never looks like a crash in the log.
        log.info("%s: %s", level, text)
        self.shown.emit(str(level), text)


global_bridge = MessageBridge()


def info(text: str) -> None:
    global_bridge.show(Level.INFO, text)


def warning(text: str) -> None:
    global_bridge.show(Level.WARNING, text)


def error(text: str) -> None:
    global_bridge.show(Level.ERROR, text)
