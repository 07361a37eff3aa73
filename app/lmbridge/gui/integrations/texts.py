"""Texts and code blocks of the Integrations page: the tools' steps are
written with Markdown's `code` marks, shown as rich text or plain quotes."""

from __future__ import annotations

import re
from html import escape

from PySide6.QtWidgets import QPlainTextEdit

from lmbridge.gui.widgets import mono_font


def rich(text: str) -> str:
    """`text` as rich text: escaped, Markdown's `code` as <code>."""
    parts = escape(text).split("`")
    return "".join(
        f"<code>{part}</code>" if i % 2 else part for i, part in enumerate(parts)
    )


def plain(text: str) -> str:
    """`text` without Markdown's backticks: `lms` -> “lms”."""
    return re.sub(r"`([^`]+)`", r"“\1”", text)


def code_view(text: str) -> QPlainTextEdit:
    """A read-only monospace block, as tall as its text (up to 14 lines)."""
    view = QPlainTextEdit(text)
    view.setReadOnly(True)
    view.setFont(mono_font())
    view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
    lines = max(1, text.count("\n") + 1)
    height = view.fontMetrics().lineSpacing() * min(lines, 14) + 16
    view.setFixedHeight(height)
    return view
