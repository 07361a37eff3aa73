"""The one owner of config.toml: every writer changes only its keys.

Every writer of the settings (the Settings page, the setup wizard, the
Integrations page, the tray, the CLI) goes through one `SettingsStore` per
file. A save re-reads the file as it is on disk at that moment and changes
only the keys the writer changed; the user's comments, order and
formatting stay (tomlkit). So a page opened before another writer saved
never undoes that writer's work.

    store = SettingsStore(path)          # reads the file (if any)
    store.settings                       # the file's Settings, as last read
    store.apply({("server", "port"): 4681})          # change key paths
    store.save(wanted, base=snapshot)    # the diff of base -> wanted
    store.problems(changes)              # {key: message}; {} when valid
    store.preview(changes)               # (old text, new text) for a diff
    store.subscribe(callback)            # callback(SettingsChange); returns
                                         # a function that unsubscribes
    store.check_disk()                   # the file changed on disk? re-read
                                         # and announce it
    store.backups()                      # dated copies, newest first
    store.restore(backup)                # put one back (itself backed up)

A writer that shows a form keeps the Settings its form was filled from
(`snapshot = store.settings` when it loads) and saves with
`store.save(form_settings, base=snapshot)`: only what the user changed in
the form is written, whatever was saved meanwhile by anyone else.

What a save does, in order: apply the changes to the file's text; move
credentials written into a `base_url` (`http://user:pw@host`) into the OS
keyring and write the URL without them; check the result
(`settings_checks.problems`: one message per key, nothing written unless
all is valid, `SettingsInvalid` otherwise); copy the old file to
`backups/config-YYYYmmdd-HHMMSS.toml` (the last ten kept); write atomically
(`core/private.py` `atomic_write`: a new file is 0600, an existing file keeps
its mode); then call the subscribers with the new Settings and the key
paths that changed. Subscribers are plain callables, called on the writer's
thread; the GUI's managers redraw from them.

An edit made in a text editor is picked up by `check_disk()`, which
compares the file's modification time, size and content hash with the last
read or write, and announces a change (`origin="disk"`) like a save. The
GUI calls it from a QFileSystemWatcher on the file and its folder (editors
replace files, which ends a watch on the file itself). An invalid file
raises ConfigError, once per content, and the last valid settings stay.

Environment overrides (`LMBRIDGE_PORT`, ...) are not part of the file:
`store.settings` is what the file says, which is what writers edit.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import tomlkit
from tomlkit.exceptions import TOMLKitError
from tomlkit.toml_document import TOMLDocument

from lmbridge import config, settings_backups, settings_checks
from lmbridge.auth.secrets import SECRETS, SecretStore
from lmbridge.core import private
from lmbridge.settings_backups import Backup
from lmbridge.settings_checks import SettingsInvalid
from lmbridge.settings_edit import REMOVE, Changes, KeyPath, key_name
from lmbridge.settings_edit import apply as apply_changes
from lmbridge.settings_edit import diff as settings_diff

log = logging.getLogger(__name__)

NEW_FILE_HEADER = (
    "# LM Bridge settings (docs/configuration.md). Comments and order are\n"
    "# kept when the app saves; each save keeps a copy in backups/.\n"
)

__all__ = [
    "REMOVE",
    "Backup",
    "Changes",
    "KeyPath",
    "SavedSettings",
    "SettingsChange",
    "SettingsInvalid",
    "SettingsStore",
    "key_name",
]


@dataclass(frozen=True)
class SavedSettings:
    """What a save did: the Settings now in the file, the file, its backup."""

    settings: config.Settings
    path: Path
    backup: Path | None  # None: there was no file, or nothing changed
    changed: tuple[KeyPath, ...] = ()  # the key paths whose value changed
    skipped: tuple[KeyPath, ...] = ()  # changes to entries removed meanwhile
    secrets_moved: tuple[str, ...] = ()  # upstreams whose URL credentials moved


@dataclass(frozen=True)
class SettingsChange:
    """What subscribers are told: the new Settings, and which keys changed."""

    settings: config.Settings
    changed: tuple[KeyPath, ...]
    origin: Literal["save", "disk"]
    backup: Path | None = None

    def touches(self, *prefix: str) -> bool:
        """Whether a changed key path starts with `prefix` ("server", ...)."""
        return any(path[: len(prefix)] == prefix for path in self.changed)


@dataclass
class _Disk:
    """What the store last saw of the file (to tell an outside edit)."""

    stamp: tuple[int, int] | None = None  # (mtime_ns, size); None: no file
    digest: str = ""
    settings: config.Settings = field(default_factory=config.Settings)


def _text(document: TOMLDocument, old_text: str) -> str:
    """The file's new text; a new file starts with a line saying what it is."""
    new = document.as_string()
    if new.strip() and not old_text.endswith("\n\n"):
        new = new.rstrip("\n") + "\n"  # no blank lines added at the end
    if old_text.strip() or not new.strip():
        return new
    return NEW_FILE_HEADER + "\n" + new


class SettingsStore:
    """config.toml's one owner; see the module docstring."""

    def __init__(
        self,
        path: Path,
        secrets: SecretStore = SECRETS,
        *,
        keep_backups: int = settings_backups.KEEP_BACKUPS,
    ) -> None:
        self.path = path
        self.secrets = secrets
        self.keep_backups = keep_backups
        self._lock = threading.RLock()
        self._subscribers: list[Callable[[SettingsChange], None]] = []
        self._disk = _Disk()
        try:
            self._read()
        except config.ConfigError as exc:
            log.warning("%s", exc.message)

    # -- reading ---------------------------------------------------------

    @property
    def settings(self) -> config.Settings:
        """The file's Settings as last read or written (no env overrides)."""
        return self._disk.settings

    @property
    def backups_dir(self) -> Path:
        """The folder of the dated backups."""
        return settings_backups.backups_dir(self.path)

    def backups(self) -> list[Backup]:
        """The dated backups of the file, newest first."""
        return settings_backups.list_backups(self.path)

    def _folder(self) -> Path:
        return private.real_target(self.path).parent

    def _stamp(self) -> tuple[int, int] | None:
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return None
        return info.st_mtime_ns, info.st_size

    def _read_text(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ""
        except UnicodeDecodeError as exc:
            raise config.ConfigError(f"{self.path}: not UTF-8 text") from exc
        except OSError as exc:
            raise config.ConfigError(f"cannot read {self.path}: {exc}") from exc

    def _read(self) -> config.Settings:
        stamp = self._stamp()
        text = self._read_text()
        digest = hashlib.sha256(text.encode()).hexdigest()
        self._disk.stamp, self._disk.digest = stamp, digest
        settings = config.parse(text, str(self.path))
        self._disk.settings = settings
        return settings

    def read(self) -> config.Settings:
        """Re-read the file now (ConfigError when it is invalid); silent."""
        with self._lock:
            return self._read()

    def check_disk(self) -> SettingsChange | None:
        """Re-read the file if it changed on disk since the store last saw it,
        and announce the change; None when it did not change.

        Raises ConfigError (once per content) when the new file is invalid;
        `settings` then stays the last valid ones.
        """
        with self._lock:
            if self._stamp() == self._disk.stamp:
                return None
            text = self._read_text()
            digest = hashlib.sha256(text.encode()).hexdigest()
            self._disk.stamp = self._stamp()
            if digest == self._disk.digest:
                return None
            self._disk.digest = digest
            settings = config.parse(text, str(self.path))
            old, self._disk.settings = self._disk.settings, settings
        change = SettingsChange(settings, tuple(settings_diff(old, settings)), "disk")
        if change.changed:
            log.info("%s changed on disk; settings re-read", self.path)
            self._announce(change)
        return change

    # -- listening -------------------------------------------------------

    def subscribe(
        self, callback: Callable[[SettingsChange], None]
    ) -> Callable[[], None]:
        """Call `callback` after each change; returns the unsubscribe function."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def _announce(self, change: SettingsChange) -> None:
        for callback in list(self._subscribers):
            try:
                callback(change)
            except Exception:
                log.exception("a settings subscriber failed on %s", change.changed)

    # -- writing ---------------------------------------------------------

    def _document(self, text: str) -> TOMLDocument:
        try:
            return tomlkit.parse(text)
        except TOMLKitError as exc:
            raise SettingsInvalid(
                str(self.path),
                {"": f"the file is not valid TOML ({exc}); fix it first"},
            ) from exc

    def _current(self, text: str) -> config.Settings:
        try:
            return config.parse(text, str(self.path))
        except config.ConfigError:
            return config.Settings()  # the save may fix it; checked below

    def _planned(
        self, changes: Changes
    ) -> tuple[str, str, TOMLDocument, config.Settings, list[KeyPath]]:
        text = self._read_text()
        document = self._document(text)
        current = self._current(text)
        skipped = apply_changes(document, changes, current)
        return text, _text(document, text), document, current, skipped

    def preview(self, changes: Changes) -> tuple[str, str]:
        """(the file's text now, the text a save of `changes` would write)."""
        with self._lock:
            old, new, *_ = self._planned(changes)
        return old, new

    def problems(self, changes: Changes) -> dict[str, str]:
        """What is wrong with the file after `changes`, by key ({} if valid)."""
        with self._lock:
            _, _, document, _, _ = self._planned(changes)
        return settings_checks.problems(document.unwrap(), str(self.path))

    def save(self, wanted: config.Settings, *, base: config.Settings) -> SavedSettings:
        """Write what changed from `base` (the Settings the writer started
        from) to `wanted`, onto the file as it is now. See `apply`."""
        return self.apply(settings_diff(base, wanted))

    def apply(self, changes: Changes) -> SavedSettings:
        """Apply `changes` (key path -> new value, or REMOVE) to the file.

        Raises SettingsInvalid (nothing written) with a message per key, or
        OSError when the file cannot be written (the old one stays).
        """
        with self._lock, private.folder_lock(self._folder()):
            old_text, _, document, current, skipped = self._planned(changes)
            moved = settings_backups.take_credentials(document)
            new_text = _text(document, old_text)
            problems = settings_checks.problems(document.unwrap(), str(self.path))
            if problems:
                raise SettingsInvalid(str(self.path), problems)
            settings = config.parse(new_text, str(self.path))
            changed = tuple(settings_diff(current, settings))
            if new_text == old_text:
                self._disk.settings = settings
                return SavedSettings(settings, self.path, None, (), tuple(skipped))
            settings_backups.keep_credentials(moved, self.secrets, str(self.path))
            backup = None
            if self.path.exists():
                backup = settings_backups.back_up(self.path, self.keep_backups)
            written = private.atomic_write(self.path, new_text.encode())
            self._disk.stamp = self._stamp()
            self._disk.digest = hashlib.sha256(new_text.encode()).hexdigest()
            self._disk.settings = settings
        log.info("saved the settings to %s (%d keys changed)", written, len(changed))
        self._announce(SettingsChange(settings, changed, "save", backup))
        return SavedSettings(
            settings, self.path, backup, changed, tuple(skipped), tuple(moved)
        )

    def restore(self, backup: Backup | Path) -> SavedSettings:
        """Put a backup's text back as the file (checked first; the file it
        replaces is backed up in turn, so a restore can be undone)."""
        source = backup.path if isinstance(backup, Backup) else backup
        text = source.read_text(encoding="utf-8")
        with self._lock, private.folder_lock(self._folder()):
            document = self._document(text)
            problems = settings_checks.problems(document.unwrap(), str(source))
            if problems:
                raise SettingsInvalid(str(source), problems)
            settings = config.parse(text, str(source))
            current = self._current(self._read_text())
            changed = tuple(settings_diff(current, settings))
            copy = None
            if self.path.exists():
                copy = settings_backups.back_up(self.path, self.keep_backups)
            private.atomic_write(self.path, text.encode())
            self._disk.stamp = self._stamp()
            self._disk.digest = hashlib.sha256(text.encode()).hexdigest()
            self._disk.settings = settings
        log.info("restored %s from %s", self.path, source)
        self._announce(SettingsChange(settings, changed, "save", copy))
        return SavedSettings(settings, self.path, copy, changed)
