"""Writing files that may hold secrets: atomically, privately, never through a link.

Every file LM Bridge writes for the user (its own config.toml, the config
files of the tools it sets up, their backups) goes through `atomic_write`:

- the new text goes to a temporary file beside the target, created with
  `O_CREAT | O_EXCL | O_NOFOLLOW`: an existing file or a link planted at that
  name is never opened, the next free name is taken instead;
- the temporary file is flushed to disk (`fsync`) and renamed over the
  target, so a reader sees the old file or the new one, never half of one;
- a new file is 0600 (it may hold a token); a rewritten file keeps the mode
  it had, so a rewrite never widens who can read it;
- when the target itself is a symbolic link (dotfiles kept in a repository),
  the file it points to is replaced, and the link stays.

On Windows, modes and `O_NOFOLLOW` do not apply; new files get the
directory's default ACL (the user's profile is private by default).
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

PRIVATE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700
TEMP_MARK = ".lmbridge-tmp"
# Attempts at a free temporary (or backup) name before giving up.
_TRIES = 100


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
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a directory; the rename still holds
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
    temp = create_unique(
        _temp_names(target), data, PRIVATE_MODE if mode is None else mode
    )
    try:
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _sync_dir(target.parent)
    return target


def private_dir(folder: Path) -> Path:
    """Create `folder` (0700) if it is missing; an existing one is left as is."""
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            folder.chmod(PRIVATE_DIR_MODE)
    return folder


def copy_private(source: Path, candidates: list[Path]) -> Path:
    """Copy `source` to the first free name of `candidates`, created
    exclusively with the source's mode narrowed to the user (at most 0600)."""
    data = source.read_bytes()
    mode = (current_mode(source) or PRIVATE_MODE) & PRIVATE_MODE
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
