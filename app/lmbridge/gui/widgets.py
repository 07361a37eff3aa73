"""Small widgets the panels share: banners (one per lasting condition, too),
inline confirmations, a progress row with Cancel, a status dot, and font /
clipboard helpers.

They only draw and emit signals; the panels decide what happens.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontDatabase, QGuiApplication, QPalette
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from lmbridge.gui import message
from lmbridge.gui.icons import ERROR_COLOR, OK_COLOR, WARNING_COLOR, icon

LEVEL_COLORS = {"info": "#2563EB", "warning": WARNING_COLOR, "error": ERROR_COLOR}
DOT_COLORS = {
    "ok": OK_COLOR,
    "warning": WARNING_COLOR,
    "error": ERROR_COLOR,
    "off": "#9CA3AF",
}


def mono_font() -> QFont:
    return QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)


def copy_text(text: str) -> None:
    QGuiApplication.clipboard().setText(text)


def title_label(text: str) -> QLabel:
    """A panel or section title."""
    label = QLabel(text)
    font = label.font()
    font.setPointSizeF(font.pointSizeF() * 1.25)
    font.setBold(True)
    label.setFont(font)
    return label


def hint_label(text: str = "") -> QLabel:
    """Secondary text that wraps (explanations, empty states), drawn in the
    palette's placeholder colour, so it follows light and dark themes."""
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    return label


def button(text: str, icon_name: str | None = None, tip: str = "") -> QPushButton:
    widget = QPushButton(text)
    if icon_name:
        widget.setIcon(icon(icon_name))
    if tip:
        widget.setToolTip(tip)
    return widget


class Banner(QFrame):
    """A coloured message line with optional action buttons and a close
    button; hidden until `show_message`."""

    def __init__(self, parent: QWidget | None = None, closable: bool = True) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setSizePolicy(
            QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred
        )
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(10, 6, 6, 6)
        self._layout.addWidget(self.label, 1)
        self._actions: list[QPushButton] = []
        self.close_button = QToolButton()
        self.close_button.setIcon(icon("cancel"))
        self.close_button.setAutoRaise(True)
        self.close_button.setToolTip("Dismiss")
        self.close_button.clicked.connect(self.hide)
        self.close_button.setVisible(closable)
        self._layout.addWidget(self.close_button)
        self.level = "info"
        self.hide()

    def show_message(
        self,
        level: str,
        text: str,
        actions: list[tuple[str, Callable[[], object]]] | None = None,
    ) -> None:
        """Show `text`; each action is a button that also dismisses the banner."""
        self.level = level
        color = QColor(LEVEL_COLORS.get(level, LEVEL_COLORS["info"]))
        fill = QColor(color)
        fill.setAlpha(38)
        self.setStyleSheet(
            f"QFrame#banner {{ background: {fill.name(QColor.NameFormat.HexArgb)};"
            f" border: 1px solid {color.name()}; border-radius: 6px; }}"
        )
        self.label.setText(text)
        for old in self._actions:
            old.deleteLater()
        self._actions = []
        for label, callback in actions or []:
            action = QPushButton(label)
            action.clicked.connect(callback)
            action.clicked.connect(self.hide)
            self._layout.insertWidget(self._layout.count() - 1, action)
            self._actions.append(action)
        self.show()

    def action_buttons(self) -> list[QPushButton]:
        return list(self._actions)


class ConditionBanners(QWidget):
    """One banner per lasting condition of `message`, removed when the
    condition clears. A banner the user dismissed stays hidden until its
    condition says something new."""

    def __init__(
        self,
        bridge: message.MessageBridge | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.bridge = bridge or message.global_bridge
        self.banners: dict[str, Banner] = {}
        self._shown: dict[str, tuple[str, str, tuple[str, ...]]] = {}
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(4)
        self.bridge.conditionsChanged.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        conditions = self.bridge.conditions
        for key in [k for k in self.banners if k not in conditions]:
            self.banners.pop(key).deleteLater()
            self._shown.pop(key, None)
        for key, cond in conditions.items():
            what = (str(cond.level), cond.text, tuple(a[0] for a in cond.actions))
            if self._shown.get(key) == what:
                continue
            banner = self.banners.get(key)
            if banner is None:
                banner = self.banners[key] = Banner()
                banner.setObjectName("banner")
                banner.setProperty("conditionKey", key)
                self._layout.addWidget(banner)
            self._shown[key] = what
            banner.show_message(str(cond.level), cond.text, list(cond.actions))
        self.setVisible(bool(self.banners))

    def visible_texts(self) -> list[str]:
        """The texts of the banners shown now (for tests and the tray)."""
        return [b.label.text() for b in self.banners.values() if not b.isHidden()]


class ConfirmBar(Banner):
    """An inline "are you sure?" instead of a modal dialog."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, closable=False)

    def ask(self, text: str, confirm: str, on_confirm: Callable[[], object]) -> None:
        self.show_message("warning", text, [(confirm, on_confirm), ("Cancel", _noop)])

    def confirm_button(self) -> QPushButton:
        return self.action_buttons()[0]


def _noop() -> None:
    return None


class ProgressRow(QWidget):
    """A label, a progress bar and Cancel, for a long action."""

    cancelled = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel()
        self.bar = QProgressBar()
        self.bar.setTextVisible(True)
        self.bar.setMaximumWidth(260)
        self.cancel_button = button("Cancel", "cancel")
        self.cancel_button.clicked.connect(self.cancelled)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel_button)
        self.hide()

    def start(self, text: str, *, determinate: bool = False) -> None:
        self.label.setText(text)
        self.bar.setRange(0, 100 if determinate else 0)
        self.bar.setValue(0)
        self.cancel_button.setEnabled(True)
        self.show()

    def set_fraction(self, fraction: float) -> None:
        if self.bar.maximum() == 0:
            self.bar.setRange(0, 100)
        self.bar.setValue(round(max(0.0, min(1.0, fraction)) * 100))

    def finish(self) -> None:
        self.hide()


class StatusDot(QLabel):
    """A coloured dot and a line of text: ok, warning, error or off."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.kind = "off"
        self.plain = ""
        self.set_status("off", text)

    def set_status(self, kind: str, text: str) -> None:
        self.kind = kind
        self.plain = text
        color = DOT_COLORS.get(kind, DOT_COLORS["off"])
        self.setText(f'<span style="color:{color}">●</span>&nbsp;{escape(text)}')
