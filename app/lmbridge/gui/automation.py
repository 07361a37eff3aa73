"""An automation hook for the desktop tests: where widgets are on screen.

Off unless the environment variable `LMBRIDGE_AUTOMATION` names a socket
path; then the app listens there (a local socket, this user only) and
answers one JSON object per line with one JSON object per line. It only
reports; it never clicks or types. The tests click and type with real X
input (xdotool) at the screen coordinates it reports.

Requests (`op`):

- `{"op": "find", "name": "<objectName>"}` or `{"op": "find", "text": "…"}`:
  widgets with that object name, or whose text as shown (button, without
  its & mnemonic; label, line edit,
  window title, an entry of an open menu) equals the text (`"contains"`:
  includes it), as `{"widgets": [...]}`. Each widget:
  `class`, `name`, `text`, `visible`, `enabled`, and its rectangle on the
  screen `x`, `y`, `w`, `h` (global coordinates).
- `{"op": "item", "view": "<objectName>", "text": "…"}`: the on-screen
  rectangle of the item with that text in an item view (a list, a table),
  as `{"widgets": [...]}` with the view's fields and the item's rectangle.
- `{"op": "windows"}`: the top-level widgets (same fields plus `id`, the
  native window id, for xwininfo / xdotool).
- `{"op": "modules", "prefix": "pyqtgraph"}`: the imported modules whose
  name starts with the prefix (what a page loaded, for the memory checks).

Every answer has `"ok": true`, or `"ok": false` and an `"error"`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, QObject, QPoint, Qt
from PySide6.QtNetwork import QLocalServer, QLocalSocket
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QApplication,
    QLabel,
    QLineEdit,
    QMenu,
    QWidget,
)

ENV = "LMBRIDGE_AUTOMATION"

log = logging.getLogger(__name__)


def shown_text(text: str) -> str:
    """A button's text as shown: "&Next >" reads "Next >", "&&" reads "&"."""
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&")


def widget_text(widget: QWidget) -> str:
    """What the widget shows as its text (its title for a window)."""
    if isinstance(widget, QAbstractButton):
        return shown_text(widget.text())
    if isinstance(widget, (QLabel, QLineEdit)):
        return widget.text()
    return widget.windowTitle() if widget.isWindow() else ""


def describe(
    widget: QWidget, x: int = 0, y: int = 0, w: int = -1, h: int = -1
) -> dict[str, Any]:
    """The widget's fields; the rectangle (x, y, w, h) is relative to it
    (default: all of it) and reported in screen coordinates."""
    corner = widget.mapToGlobal(QPoint(x, y))
    return {
        "class": type(widget).__name__,
        "name": widget.objectName(),
        "text": widget_text(widget),
        "visible": widget.isVisible(),
        "enabled": widget.isEnabled(),
        "x": corner.x(),
        "y": corner.y(),
        "w": widget.width() if w < 0 else w,
        "h": widget.height() if h < 0 else h,
    }


def _all_widgets() -> list[QWidget]:
    return [w for w in QApplication.allWidgets() if isinstance(w, QWidget)]


def _menu_actions(text: str) -> list[dict[str, Any]]:
    """The entries with that text of the menus open now (a popup menu's
    entries are actions, not widgets)."""
    found = []
    for menu in _all_widgets():
        if not isinstance(menu, QMenu) or not menu.isVisible():
            continue
        for action in menu.actions():
            if shown_text(action.text()) == text and action.isVisible():
                rect = menu.actionGeometry(action)
                entry = describe(menu, rect.x(), rect.y(), rect.width(), rect.height())
                found.append(entry | {"class": "QAction", "text": text})
    return found


def _find(request: dict[str, Any]) -> list[dict[str, Any]]:
    name, text = request.get("name"), request.get("text")
    part = request.get("contains")
    if name is None and text is None and part is None:
        raise ValueError("find needs a name, a text or a part of a text")
    found = [
        describe(w)
        for w in _all_widgets()
        if (name is None or w.objectName() == name)
        and (text is None or widget_text(w) == text)
        and (part is None or str(part) in widget_text(w))
    ]
    if name is None and text is not None:
        found += _menu_actions(text)
    return found


def _items(view: QAbstractItemView, text: str) -> list[QModelIndex]:
    model = view.model()
    found: list[QModelIndex] = []
    root = QModelIndex()
    for row in range(model.rowCount(root)):
        column = 0
        while model.hasIndex(row, column, root):  # a list model has no columnCount
            index = model.index(row, column, root)
            if model.data(index, Qt.ItemDataRole.DisplayRole) == text:
                found.append(index)
            column += 1
    return found


def _item(request: dict[str, Any]) -> list[dict[str, Any]]:
    answer = []
    for widget in _all_widgets():
        if not isinstance(widget, QAbstractItemView):
            continue
        if widget.objectName() != request.get("view"):
            continue
        port = widget.viewport()
        for index in _items(widget, str(request.get("text", ""))):
            rect = widget.visualRect(index)
            answer.append(
                describe(port, rect.x(), rect.y(), rect.width(), rect.height())
            )
    return answer


def _windows() -> list[dict[str, Any]]:
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    return [
        describe(w) | {"id": int(w.winId()) if w.isVisible() else 0}
        for w in app.topLevelWidgets()
    ]


def answer(request: dict[str, Any]) -> dict[str, Any]:
    """The answer to one request."""
    op = request.get("op")
    try:
        if op == "find":
            return {"ok": True, "widgets": _find(request)}
        if op == "item":
            return {"ok": True, "widgets": _item(request)}
        if op == "windows":
            return {"ok": True, "widgets": _windows()}
        if op == "modules":
            prefix = str(request.get("prefix", ""))
            names = sorted(m for m in sys.modules if m.startswith(prefix))
            return {"ok": True, "modules": names}
    except Exception as exc:  # a bad request must not end the hook
        log.warning("automation request %r failed: %r", request, exc)
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": False, "error": f"unknown op {op!r}"}


class AutomationServer(QObject):
    """Listens on `path` and answers requests (see the module docstring)."""

    def __init__(self, path: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.path = path
        self.server = QLocalServer(self)
        self.server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        QLocalServer.removeServer(path)
        if not self.server.listen(path):
            raise OSError(f"cannot listen on {path}: {self.server.errorString()}")
        self.server.newConnection.connect(self._on_connection)

    def _on_connection(self) -> None:
        while (socket := self.server.nextPendingConnection()) is not None:
            socket.readyRead.connect(lambda s=socket: self._on_ready(s))
            socket.disconnected.connect(socket.deleteLater)

    def _on_ready(self, socket: QLocalSocket) -> None:
        while socket.canReadLine():
            line = bytes(socket.readLine().data()).decode("utf-8", "replace")
            try:
                request = json.loads(line)
                reply = answer(request) if isinstance(request, dict) else None
            except json.JSONDecodeError as exc:
                reply = {"ok": False, "error": f"not JSON: {exc}"}
            reply = reply or {"ok": False, "error": "a request is a JSON object"}
            socket.write(json.dumps(reply).encode() + b"\n")
            socket.flush()

    def close(self) -> None:
        self.server.close()
        Path(self.path).unlink(missing_ok=True)


def start_if_asked(parent: QObject | None = None) -> AutomationServer | None:
    """The automation server if `LMBRIDGE_AUTOMATION` is set, else None."""
    path = os.environ.get(ENV)
    if not path:
        return None
    server = AutomationServer(path, parent)
    log.info("automation hook listening on %s (%s is set)", path, ENV)
    return server
