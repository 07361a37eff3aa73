"""Reading and writing tools' config files: backups, atomic replace.

A merge is computed first (`WritePlan`: the old and the new text) and only
written by `write`, which copies the old file to a timestamped backup beside
it, writes the new text to a temporary file and renames it over the old one,
keeping the old file's permissions (these files can hold keys).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

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


def backup_path(path: Path, now: float | None = None) -> Path:
    """A free name beside `path`: settings.json.lmbridge-backup-20250101-120000."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    candidate = path.with_name(f"{path.name}{BACKUP_MARK}{stamp}")
    n = 1
    while candidate.exists():
        candidate = path.with_name(f"{path.name}{BACKUP_MARK}{stamp}-{n}")
        n += 1
    return candidate


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
    try:
        plan.path.parent.mkdir(parents=True, exist_ok=True)
        if plan.old_text is not None:
            backup = backup_path(plan.path)
            shutil.copy2(plan.path, backup)
        tmp = plan.path.with_name(f".{plan.path.name}.lmbridge-tmp")
        with tmp.open("w", encoding="utf-8", newline=plan.newline) as fp:
            fp.write(plan.new_text)
        if plan.old_text is not None:
            shutil.copymode(plan.path, tmp)
        os.replace(tmp, plan.path)
    except OSError as exc:
        raise IntegrationError(
            f"cannot write {plan.path}: {exc.strerror or exc}"
        ) from exc
    return WriteResult(plan.path, backup, changed=True)
