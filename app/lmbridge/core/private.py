"""Files only the user can read, written so no one else can get at them.

Two concerns, one module (every private file LM Bridge makes goes through it):

- LM Bridge's own data and log directories (`private_dir`, `private_file`,
  `append_fd`). The data directory holds every chat and the request
  history, the log directory what LM Bridge did; on a shared machine, other
  users must not read them. Directories are created 0700 and files 0600
  from the start (not chmod-ed after a window in which they were
  readable), whatever the umask; existing ones are narrowed to that, never
  widened.
- Files written for the user (its own config.toml, the config files of the
  tools it sets up, their backups) go through `atomic_write`: the new text
  goes to a temporary file beside the target, created with
  `O_CREAT | O_EXCL | O_NOFOLLOW` (an existing file or a link planted at
  that name is never opened, the next free name is taken instead); it is
  flushed to disk (`fsync`) and renamed over the target, so a reader sees
  the old file or the new one, never half of one; a new file is 0600 (it
  may hold a token), a rewritten file keeps the mode it had, so a rewrite
  never widens who can read it; when the target itself is a symbolic link
  (dotfiles kept in a repository), the file it points to is replaced, and
  the link stays.

On Windows the modes and `O_NOFOLLOW` mean little: a user's profile
directories are private by their default ACLs, which LM Bridge leaves as
they are (docs/security.md).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600
POSIX = sys.platform != "win32"
TEMP_MARK = ".lmbridge-tmp"
# Attempts at a free temporary (or backup) name before giving up.
_TRIES = 100


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


# ------------------------------------------------ files written for the user


def _flags() -> int:
    return (
        os.O_WRONLY
        | os.O_CREAT
        | os.O_EXCL
        | getattr(os, "O_NOFOLLOW", 0)
        | getattr(os, "O_CLOEXEC", 0)
        | getattr(os, "O_BINARY", 0)
    )


def real_target(path: Path) -> Path:
    """`path`, or the file it links to when it is a symbolic link."""
    return path.resolve() if path.is_symlink() else path


def current_mode(path: Path) -> int | None:
    """The permission bits of the file at `path`, or None if there is none."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return None


def create_exclusive(path: Path, data: bytes, mode: int) -> None:
    """Create `path` holding `data` with exactly `mode`; FileExistsError if
    anything (a file, a link) is there already. Flushed to disk."""
    fd = os.open(path, _flags(), mode)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)  # the umask may have narrowed it; keep it exact
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    os.close(fd)


def create_unique(candidates: list[Path], data: bytes, mode: int) -> Path:
    """Create the first free name of `candidates` (see `create_exclusive`)."""
    for candidate in candidates:
        try:
            create_exclusive(candidate, data, mode)
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"no free name for {candidates[0]}")


def _temp_names(target: Path) -> list[Path]:
    first = target.with_name(f".{target.name}{TEMP_MARK}")
    return [first] + [
        target.with_name(f".{target.name}{TEMP_MARK}-{n}") for n in range(1, _TRIES)
    ]


def _sync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        # Some file systems cannot sync a directory; the rename still holds.
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> Path:
    """Replace (or create) `path` with `data`, as the module docstring says.

    Returns the file written (the link's target when `path` is a link).
    Raises OSError when it cannot be written; the old file is then intact.
    """
    target = real_target(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = current_mode(target)
    temp = create_unique(_temp_names(target), data, FILE_MODE if mode is None else mode)
    try:
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _sync_dir(target.parent)
    return target


def copy_private(source: Path, candidates: list[Path]) -> Path:
    """Copy `source` to the first free name of `candidates`, created
    exclusively with the source's mode narrowed to the user (at most 0600)."""
    data = source.read_bytes()
    mode = (current_mode(source) or FILE_MODE) & FILE_MODE
    return create_unique(candidates, data, mode)


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on `folder` (flock on the directory
    itself, no lock file left behind), so two processes (the app and the
    CLI) do not interleave their read-change-write of a file in it. Where
    flock does not exist (Windows), only this process's own lock applies."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
