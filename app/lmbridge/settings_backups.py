"""Dated backups of config.toml, and credentials taken out of base URLs.

A `base_url` with `user:password@` in it would keep a secret in a plain
file: a save takes the credentials out of the URL (`take_credentials`) and
keeps them in the OS keyring under `config.url_credentials_secret(name)`
(`keep_credentials`); without a secure keyring the save is refused, since
the credentials would otherwise be lost.

Before each write, the settings store copies the file as it was to
`backups/config-YYYYmmdd-HHMMSS.toml` beside it (`-2`, `-3`, ... when saves
come within one second), readable by the user alone, and keeps the last
`keep` of them. `list_backups` names them, newest first, for the UI.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime
import logging
import re
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import SplitResult, urlsplit, urlunsplit

from tomlkit.toml_document import TOMLDocument

from lmbridge import config
from lmbridge.auth.secrets import SecretStore
from lmbridge.core import private
from lmbridge.settings_checks import SettingsInvalid
from lmbridge.settings_edit import key_name

log = logging.getLogger(__name__)
T = TypeVar("T")

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
    folder = private.private_dir(backups_dir(target))
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
    copy = private.copy_private(target, names)
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


def take_credentials(document: TOMLDocument) -> dict[str, str]:
    """Take `user:pw@` out of every upstream's base_url in `document`;
    returns upstream name -> the credentials taken."""
    moved: dict[str, str] = {}
    entries: Any = document.get("upstream")
    for entry in entries if entries is not None else []:
        url = entry.get("base_url")
        if not isinstance(url, str):
            continue
        clean, userinfo = split_credentials(url)
        if userinfo:
            entry["base_url"] = clean
            moved[str(entry.get("name", ""))] = userinfo
    return moved


def _run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to the end from sync code, inside an event loop or not
    (keyring calls are short; a save waits for them)."""
    with concurrent.futures.ThreadPoolExecutor(1, "lmbridge-settings") as pool:
        return pool.submit(asyncio.run, coro).result()


def keep_credentials(
    moved: Mapping[str, str], secrets: SecretStore, source: str
) -> None:
    """Keep moved credentials in the OS keyring, or refuse the save
    (`SettingsInvalid`, one message per base_url)."""
    if not moved:
        return
    status = secrets.status()
    problems: dict[str, str] = {}
    for name, userinfo in moved.items():
        key = key_name(("upstream", name, "base_url"))
        secret = config.url_credentials_secret(name)
        if not status.secure:
            problems[key] = (
                "holds a user name and password, which LM Bridge keeps in "
                f"the OS keyring, but {status.reason}; remove them from the URL"
            )
            continue
        stored = _run_sync(secrets.set(secret, userinfo))
        if stored.where != "keyring":
            _run_sync(secrets.delete(secret))
            problems[key] = f"the keyring did not take its credentials: {stored.reason}"
    if problems:
        raise SettingsInvalid(source, problems)
    log.info("moved the credentials of %s into the keyring", ", ".join(moved))
