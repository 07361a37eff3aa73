"""One desktop app per user: a second launch brings the first one forward.

The first instance listens on a local socket (QLocalServer) named after
LM Bridge's home; a second launch connects, asks it to show its window,
and exits. A socket left by a crashed instance is removed.

The socket lives where only this user can create files: the user's runtime
directory (`$XDG_RUNTIME_DIR`, when it is a 0700 directory of this user's),
else a 0700 directory of ours in the temporary directory
(`lmbridge-<uid>`), checked to be this user's and nobody else's. In a
world-writable `/tmp`, another local user could take a predictable name
first and make every launch exit silently. A socket found there that
another user owns is reported, and not obeyed: this launch runs. On
Windows, QLocalServer uses a named pipe, restricted to this user.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from lmbridge import config

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_MS = 500


def _private_to_me(path: Path) -> bool:
    """Whether `path` is a real directory (not a link) of this user's that
    nobody else may write to or enter."""
    try:
        info = path.lstat()
    except OSError:
        return False
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.getuid()
        and stat.S_IMODE(info.st_mode) & 0o077 == 0
    )


def runtime_dir() -> Path | None:
    """A directory only this user can create files in (None on Windows,
    where the name is a pipe; and None when no such directory can be had)."""
    if sys.platform == "win32":
        return None
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and _private_to_me(Path(xdg)):
        return Path(xdg)
    ours = Path(tempfile.gettempdir()) / f"lmbridge-{os.getuid()}"
    try:
        ours.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        log.warning("cannot create %s: %s", ours, exc.strerror or exc)
        return None
    if not _private_to_me(ours):
        log.warning(
            "%s is not a private directory of this user's (another user may"
            " have created it); the single-instance guard is off",
            ours,
        )
        return None
    return ours


def instance_name() -> str:
    """The socket: a full path in `runtime_dir()` (a pipe name on Windows),
    per config/data home; "" when there is no safe place for it."""
    home = str(config.config_dir())
    digest = hashlib.sha1(home.encode(), usedforsecurity=False).hexdigest()[:10]
    name = f"lmbridge-{digest}"
    if sys.platform == "win32":
        return name
    directory = runtime_dir()
    return str(directory / name) if directory is not None else ""


def foreign_owner(name: str) -> bool:
    """Whether the socket file `name` exists and another user owns it."""
    if sys.platform == "win32" or not os.path.isabs(name):
        return False
    try:
        return os.lstat(name).st_uid != os.getuid()
    except OSError:
        return False


class SingleInstance(QObject):
    """Claims the instance name; `activated` fires when another launch asks."""

    activated = Signal()

    def __init__(self, name: str | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = instance_name() if name is None else name
        self.server: QLocalServer | None = None

    def claim(self) -> bool:
        """True if this is the first instance (it now listens), False if
        another one runs (it was asked to show its window)."""
        if not self.name:
            return True  # no safe place for the socket: run without the guard
        if foreign_owner(self.name):
            log.warning(
                "%s belongs to another user; ignoring it and running without"
                " the single-instance guard",
                self.name,
            )
            return True
        socket = QLocalSocket()
        socket.connectToServer(self.name)
        if socket.waitForConnected(CONNECT_TIMEOUT_MS):
            socket.write(b"show\n")
            socket.waitForBytesWritten(CONNECT_TIMEOUT_MS)
            socket.disconnectFromServer()
            return False
        QLocalServer.removeServer(self.name)  # left by a crashed instance
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not server.listen(self.name):
            log.warning(
                "cannot listen on %s (%s); running without the single-instance guard",
                self.name,
                server.errorString(),
            )
            return True
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
