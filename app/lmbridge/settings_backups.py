"""Dated backups of config.toml, and credentials taken out of base URLs.

Before each write, the settings store copies the file as it was to
`backups/config-YYYYmmdd-HHMMSS.toml` beside it (`-2`, `-3`, ... when saves
come within one second), readable by the user alone, and keeps the last
`keep` of them. `list_backups` names them, newest first, for the UI.
"""

from __future__ import annotations

import datetime
import re
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import SplitResult, urlsplit, urlunsplit

from lmbridge import private_files

BACKUP_DIR = "backups"
KEEP_BACKUPS = 10


@dataclass(frozen=True)
class Backup:
    """One saved copy of the settings file."""

    path: Path
    created: datetime.datetime  # local time, to the second
    sequence: int  # 1 for the first copy of that second, then 2, 3, ...

    @property
    def label(self) -> str:
        """How the UI names it: "2026-12-07 05:15:00" (and "#2" when needed)."""
        text = self.created.strftime("%Y-%m-%d %H:%M:%S")
        return text if self.sequence == 1 else f"{text} #{self.sequence}"


def _pattern(target: Path) -> re.Pattern[str]:
    return re.compile(
        rf"^{re.escape(target.stem)}-(\d{{8}}-\d{{6}})(?:-(\d+))?"
        rf"{re.escape(target.suffix)}$"
    )


def backups_dir(target: Path) -> Path:
    """Where the backups of `target` go: a `backups` folder beside it."""
    return target.parent / BACKUP_DIR


def list_backups(target: Path) -> list[Backup]:
    """The backups of `target`, newest first."""
    folder = backups_dir(target)
    pattern = _pattern(target)
    found: list[Backup] = []
    try:
        names = [p.name for p in folder.iterdir()]
    except OSError:
        return []
    for name in names:
        match = pattern.match(name)
        if not match:
            continue
        created = datetime.datetime.strptime(match.group(1), "%Y%m%d-%H%M%S")
        found.append(Backup(folder / name, created, int(match.group(2) or 1)))
    found.sort(key=lambda b: (b.created, b.sequence), reverse=True)
    return found


def back_up(target: Path, keep: int = KEEP_BACKUPS, now: float | None = None) -> Path:
    """Copy `target` into its backups folder; keep the newest `keep` copies."""
    folder = private_files.private_dir(backups_dir(target))
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    # After the last copy of this second, even if older ones were rotated out.
    taken = [
        b.sequence
        for b in list_backups(target)
        if b.created.strftime("%Y%m%d-%H%M%S") == stamp
    ]
    first = max(taken, default=0) + 1
    names = [
        folder / f"{target.stem}-{stamp}{'' if n == 1 else f'-{n}'}{target.suffix}"
        for n in range(first, first + 100)
    ]
    copy = private_files.copy_private(target, names)
    for old in list_backups(target)[keep:]:
        old.path.unlink(missing_ok=True)
    return copy


def split_credentials(url: str) -> tuple[str, str]:
    """(url without `user:password@`, the `user:password` part or "")."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url, ""
    if "@" not in parts.netloc:
        return url, ""
    userinfo, _, hostport = parts.netloc.rpartition("@")
    clean = SplitResult(parts.scheme, hostport, parts.path, parts.query, parts.fragment)
    return urlunsplit(clean), userinfo
