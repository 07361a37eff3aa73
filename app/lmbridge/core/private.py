"""Files only the user can read: LM Bridge's data and log directories.

The data directory holds every chat and the request history, the log
directory what LM Bridge did; on a shared machine, other users must not
read them. Directories are created 0700 and files 0600 from the start (not
chmod-ed after a window in which they were readable), whatever the umask;
existing ones are narrowed to that, never widened. On Windows the modes
mean little: a user's profile directories are private by their default
ACLs, which LM Bridge leaves as they are (docs/security.md).
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import sys
from pathlib import Path

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600
POSIX = sys.platform != "win32"


def _narrow(path: Path, mode: int) -> None:
    """Take group and other permissions off `path` (never add any)."""
    try:
        current = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return
    wanted = current & mode
    if wanted != current:
        try:
            os.chmod(path, wanted)
        except OSError as exc:
            log.warning("cannot make %s private: %s", path, exc.strerror or exc)


def private_dir(path: Path) -> Path:
    """`path` as a directory only its owner can enter: created 0700 (with
    any missing parents), or narrowed to 0700 if it exists. Raises OSError
    when it cannot be created."""
    missing: list[Path] = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue
        if POSIX:
            # mkdir's mode is masked by the umask; never wider than 0700.
            _narrow(directory, DIR_MODE)
    if not path.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(path))
    if POSIX and not missing:
        _narrow(path, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Make sure `path` exists as a file only its owner can read: created
    empty with mode 0600 (exclusively, never through a link), or narrowed to
    0600 if it exists."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, FILE_MODE)
    except FileExistsError:
        if POSIX and not path.is_symlink():  # never chmod through a link
            _narrow(path, FILE_MODE)
        return path
    os.close(fd)
    return path


def append_fd(path: Path) -> int:
    """A file descriptor appending to `path`, created 0600 if new and
    narrowed to 0600 if not (the log file is opened through this)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, FILE_MODE)
    if POSIX:
        current = stat.S_IMODE(os.fstat(fd).st_mode)
        if current & ~FILE_MODE:
            os.fchmod(fd, current & FILE_MODE)
    return fd
