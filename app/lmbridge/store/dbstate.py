"""What state the database is in, in words a user can act on.

`classify` turns a failure of SQLite (or of the file system under it) into
a `DatabaseState`: one of the `DatabaseCondition`s, the file's path and a
message that names the file and the fix. The database (`store/db.py`)
keeps the latest one; `Services.database_state` hands it to the CLI and
the GUI, and the `/store` API answers 503 with its message.
"""

from __future__ import annotations

import contextlib
import datetime
import enum
import errno
import os
import sqlite3
import time
from pathlib import Path

import msgspec

# SQLite's primary result codes (the low byte of an extended code).
_BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = (
    5,
    6,
    8,
    10,
    11,
    13,
    14,
    26,
)


class DatabaseCondition(enum.StrEnum):
    """Whether the database can be used, and if not, why."""

    OK = "ok"
    # Another program holds SQLite's lock (a second LM Bridge, a backup
    # tool, `sqlite3` in a shell): reads work, writes wait and fail.
    LOCKED = "locked"
    # Not a database, or damaged: move it aside and start a fresh one.
    CORRUPT = "corrupt"
    # The file or its directory cannot be written.
    READ_ONLY = "read-only"
    # The disk holding it is full.
    FULL = "full"
    # Anything else (a newer schema, an I/O error): the message says what.
    UNAVAILABLE = "unavailable"


class DatabaseState(msgspec.Struct, frozen=True, kw_only=True):
    """The database's condition, its file, and a sentence for the user."""

    condition: DatabaseCondition
    path: str
    # For the user: what is wrong, with the file, and what to do.
    message: str
    # SQLite's (or the OS's) own words, for the log and the curious.
    detail: str = ""
    # When this state began (time.time()).
    since: float = msgspec.field(default_factory=time.time)

    @property
    def ok(self) -> bool:
        return self.condition is DatabaseCondition.OK

    def summary(self) -> str:
        """One line: `database PATH`, or `database CONDITION: message`."""
        if self.ok:
            return f"database {self.path}"
        return f"database {self.condition}: {self.message}"


def ok_state(path: Path) -> DatabaseState:
    """The state of a database that works."""
    return DatabaseState(
        condition=DatabaseCondition.OK, path=str(path), message=f"{path} works"
    )


def state_for(
    condition: DatabaseCondition, path: Path, detail: str = ""
) -> DatabaseState:
    """The state `condition` of the database at `path`, worded for the user."""
    return DatabaseState(
        condition=condition,
        path=str(path),
        message=_message(condition, path, detail),
        detail=detail,
    )


def _message(condition: DatabaseCondition, path: Path, detail: str) -> str:
    kept = "nothing already stored is lost; model calls go on"
    if condition is DatabaseCondition.LOCKED:
        return (
            f"the database {path} is locked by another program (a second LM"
            " Bridge on the same data directory, a backup tool, or sqlite3 in"
            f" a shell) — close that program or end its transaction; {kept}"
        )
    if condition is DatabaseCondition.CORRUPT:
        return (
            f"the database {path} is damaged ({detail}) — move it aside and"
            " start a fresh one, keeping the old file: stop LM Bridge and rename"
            " the file; LM Bridge starts a fresh one; model calls go on meanwhile"
        )
    if condition is DatabaseCondition.READ_ONLY:
        return (
            f"the database {path} cannot be written ({detail}) — make"
            f" {path.parent} writable, or set LMBRIDGE_HOME to a writable"
            f" directory; {kept}"
        )
    if condition is DatabaseCondition.FULL:
        return (
            f"the disk holding the database {path} is full — free some space"
            f" on it; {kept}"
        )
    if condition is DatabaseCondition.OK:
        return f"{path} works"
    return f"the database {path} cannot be used: {detail}"


def classify(exc: BaseException, path: Path) -> DatabaseState | None:
    """The state a failure shows, or None for a fault of ours (bad SQL, a
    constraint): those stay 500s, logged with their traceback."""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        primary = code & 0xFF if isinstance(code, int) else None
        condition = _by_code(primary, detail, path)
    elif isinstance(exc, OSError):
        condition = _by_errno(exc.errno)
    else:
        return None
    if condition is None:
        return None
    return state_for(condition, path, detail)


def _by_code(primary: int | None, detail: str, path: Path) -> DatabaseCondition | None:
    words = detail.lower()
    if primary in (_BUSY, _LOCKED) or "locked" in words:
        return DatabaseCondition.LOCKED
    if primary in (_CORRUPT, _NOTADB) or "not a database" in words:
        return DatabaseCondition.CORRUPT
    if "malformed" in words:
        return DatabaseCondition.CORRUPT
    if primary == _READONLY or "readonly" in words:
        return DatabaseCondition.READ_ONLY
    if primary == _FULL or "disk is full" in words:
        return DatabaseCondition.FULL
    if primary == _CANTOPEN:
        if not _writable(path.parent):
            return DatabaseCondition.READ_ONLY
        return DatabaseCondition.UNAVAILABLE
    if primary == _IOERR:
        return DatabaseCondition.UNAVAILABLE
    return None


def _by_errno(number: int | None) -> DatabaseCondition:
    if number in (errno.EROFS, errno.EACCES, errno.EPERM):
        return DatabaseCondition.READ_ONLY
    if number in (errno.ENOSPC, errno.EDQUOT):
        return DatabaseCondition.FULL
    return DatabaseCondition.UNAVAILABLE


def _writable(directory: Path) -> bool:
    # access() also says no for a read-only mount, where root's bits would not.
    return os.access(directory, os.W_OK) if directory.exists() else True


def writable(path: Path) -> bool:
    """Whether the database file at `path` and its directory can be written."""
    return _writable(path.parent) and (not path.exists() or os.access(path, os.W_OK))


def move_files_aside(path: Path) -> Path:
    """Rename the database at `path`, with its write-ahead log and shared
    memory, to a dated name next to it (so it still opens as it was):
    `lmbridge.db` -> `lmbridge-broken-20260101-120000.db`. Returns that."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    kept = path
    for n in range(1000):
        extra = f"-{n}" if n else ""
        kept = path.with_name(f"{path.stem}-broken-{stamp}{extra}{path.suffix}")
        if not kept.exists():
            break
    for suffix in ("", "-wal", "-shm"):
        old = path.with_name(path.name + suffix)
        if old.exists():
            old.rename(kept.with_name(kept.name + suffix))
    return kept


# Free space below which a write would fail (a few pages and a log frame).
LOW_SPACE_BYTES = 256 * 1024


def cannot_write(path: Path) -> str | None:
    """Why the file system would refuse a write to the database at `path`
    (in the words `classify` knows), or None."""
    if not writable(path):
        return "attempt to write a readonly database"
    with contextlib.suppress(OSError, AttributeError):
        fs = os.statvfs(path.parent)
        if fs.f_bavail * fs.f_frsize < LOW_SPACE_BYTES:
            return "database or disk is full"
    return None
