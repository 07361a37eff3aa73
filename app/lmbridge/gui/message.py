"""The one channel for messages to the user.

Code anywhere in the GUI says `message.error("...")` (or `info`, `warning`)
instead of raising a dialog; the main window shows the latest message in
its banner and the notifier decides what also becomes a desktop
notification. Like qutebrowser's `utils/message.py`, this keeps dialogs out
of deep code and makes every message observable in tests.

A message about a state that lasts (LM Studio unreachable, the port taken,
a task that keeps failing) is a *condition* instead:
`message.condition(key, level, text)` shows it until the code that knows the
cause says `message.clear(key)`, so a banner never outlives its cause. Setting
a key again replaces its text (and its actions); one-off `info` / `warning` /
`error` messages are for events that do not last.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, Signal

log = logging.getLogger(__name__)


class Level(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


Action = tuple[str, Callable[[], object]]  # button label, what it does


@dataclass(frozen=True)
class Condition:
    """A lasting state the user is told about until its cause clears."""

    key: str
    level: Level
    text: str
    actions: tuple[Action, ...] = field(default=(), compare=False)


class MessageBridge(QObject):
    """Emits `shown(level, text)` for every one-off message and
    `conditionsChanged()` when a condition is set, changed or cleared."""

    shown = Signal(str, str)
    conditionsChanged = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.history: list[tuple[Level, str]] = []
        self.conditions: dict[str, Condition] = {}

    def show(self, level: Level, text: str) -> None:
        self.history.append((level, text))
        del self.history[:-100]
        # Failures the user is told about are not program errors: log them
        # at INFO so an expected failure never looks like a crash in the log.
        log.info("%s: %s", level, text)
        self.shown.emit(str(level), text)

    def set_condition(
        self,
        key: str,
        level: Level,
        text: str,
        actions: Sequence[Action] = (),
    ) -> None:
        """Show `text` under `key` until `clear_condition(key)`."""
        new = Condition(key, level, text, tuple(actions))
        old = self.conditions.get(key)
        if old == new and [a[0] for a in old.actions] == [a[0] for a in actions]:
            return
        if old is None or (old.level, old.text) != (new.level, new.text):
            self.history.append((level, text))
            del self.history[:-100]
            log.info("%s (%s): %s", level, key, text)
        self.conditions[key] = new
        self.conditionsChanged.emit()

    def clear_condition(self, key: str) -> bool:
        """End the condition `key` (and every `key/…` under it); False if
        none was set."""
        gone = [k for k in self.conditions if k == key or k.startswith(key + "/")]
        for k in gone:
            del self.conditions[k]
            log.info("cleared: %s", k)
        if gone:
            self.conditionsChanged.emit()
        return bool(gone)

    def condition_text(self, key: str) -> str:
        """The text shown under `key` ("" for none)."""
        found = self.conditions.get(key)
        return found.text if found else ""


global_bridge = MessageBridge()


def info(text: str) -> None:
    global_bridge.show(Level.INFO, text)


def warning(text: str) -> None:
    global_bridge.show(Level.WARNING, text)


def error(text: str) -> None:
    global_bridge.show(Level.ERROR, text)


def condition(
    key: str, level: Level | str, text: str, actions: Sequence[Action] = ()
) -> None:
    """Show a lasting state under `key` (replacing what `key` said before)
    until `clear(key)`; each action is a button on its banner."""
    global_bridge.set_condition(key, Level(level), text, actions)


def clear(key: str) -> bool:
    """The cause of condition `key` (and of its `key/…` children) is gone."""
    return global_bridge.clear_condition(key)
