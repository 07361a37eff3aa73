"""One desktop app per user: a second launch brings the first one forward.

The first instance listens on a local socket (QLocalServer) named after the
user and LM Bridge's home; a second launch connects, asks it to show its
window, and exits. A socket left by a crashed instance is removed.
"""

from __future__ import annotations

import getpass
import hashlib

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from lmbridge import config

CONNECT_TIMEOUT_MS = 500


def instance_name() -> str:
    """The socket name: per user and per config/data home."""
    home = str(config.config_dir())
    digest = hashlib.sha1(home.encode(), usedforsecurity=False).hexdigest()[:10]
    return f"lmbridge-{getpass.getuser()}-{digest}"


class SingleInstance(QObject):
    """Claims the instance name; `activated` fires when another launch asks."""

    activated = Signal()

    def __init__(self, name: str | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name or instance_name()
        self.server: QLocalServer | None = None

    def claim(self) -> bool:
        """True if this is the first instance (it now listens), False if
        another one runs (it was asked to show its window)."""
        socket = QLocalSocket()
        socket.connectToServer(self.name)
        if socket.waitForConnected(CONNECT_TIMEOUT_MS):
            socket.write(b"show\n")
            socket.waitForBytesWritten(CONNECT_TIMEOUT_MS)
            socket.disconnectFromServer()
            return False
        QLocalServer.removeServer(self.name)  # left by a crashed instance
        server = QLocalServer(self)
        if not server.listen(self.name):
            return True  # cannot listen: run anyway, just without the guard
        server.newConnection.connect(self._on_connection)
        self.server = server
        return True

    def release(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None

    def _on_connection(self) -> None:
        if self.server is None:
            return
        while (connection := self.server.nextPendingConnection()) is not None:
            connection.disconnected.connect(connection.deleteLater)
            connection.disconnectFromServer()
            self.activated.emit()
