"""Reading and writing tools' config files: backups, atomic replace.

A merge is computed first (`WritePlan`: the old and the new text) and only
written by `write`, which copies the old file to a timestamped backup beside
it and replaces the file atomically (`core/private.py` `atomic_write`): a file
we create is 0600 (these files can hold the proxy's token), an existing
file keeps its mode, the temporary file is created exclusively and never
through a link. Backups are created the same way, at most 0600.
"""

from __future__ import annotations

import time
from pathlib import Path

from lmbridge.core import private
from lmbridge.integrations.base import IntegrationError, WritePlan, WriteResult

BACKUP_MARK = ".lmbridge-backup-"


def read_text(path: Path) -> str | None:
    """The file's text, or None if it does not exist."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as exc:
        raise IntegrationError(f"{path} is not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise IntegrationError(f"cannot read {path}: {exc.strerror or exc}") from exc


def detect_newline(path: Path) -> str:
    """The file's line ending ("\r\n" or "\n"), so a rewrite keeps it."""
    try:
        with path.open("rb") as fp:
            head = fp.read(65536)
    except OSError:
        return "\n"
    return "\r\n" if b"\r\n" in head else "\n"


def backup_names(path: Path, now: float | None = None) -> list[Path]:
    """Free-name candidates beside `path`: for settings.json,
    settings.json.lmbridge-backup-20250101-120000, then -1, -2, ... when
    several writes come within one second."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    first = path.with_name(f"{path.name}{BACKUP_MARK}{stamp}")
    return [first] + [
        path.with_name(f"{path.name}{BACKUP_MARK}{stamp}-{n}") for n in range(1, 100)
    ]


def write(plan: WritePlan) -> WriteResult:
    """Write `plan` if it changes anything, keeping a backup of the old file.

    Raises IntegrationError if the file changed since the plan was made
    (plan again and show the new diff) or cannot be written.
    """
    current = read_text(plan.path)
    if current != plan.old_text:
        raise IntegrationError(
            f"{plan.path} changed since the preview was made; preview again"
        )
    if not plan.changed:
        return WriteResult(plan.path, None, changed=False)
    backup: Path | None = None
    data = plan.new_text.replace("\n", plan.newline).encode("utf-8")
    try:
        if plan.old_text is not None:
            source = private.real_target(plan.path)
            backup = private.copy_private(source, backup_names(plan.path))
        private.atomic_write(plan.path, data)
    except OSError as exc:
        raise IntegrationError(
            f"cannot write {plan.path}: {exc.strerror or exc}"
        ) from exc
    return WriteResult(plan.path, backup, changed=True)
