"""Changing LM Bridge's settings: the desktop app's entry points to the store.

The settings file has one owner, `settings_store.SettingsStore`: it applies
each writer's change to the file as it is on disk, keeps the user's
comments, validates, keeps dated backups and announces the change.
`SettingsService` is the app's handle on it (`service.store`), with the
entry points the pages used before the store existed: `merged` builds the
Settings a form wants, `save(settings)` writes what differs from the
settings the store last read or wrote (new code passes its own starting
point: `service.store.save(wanted, base=snapshot)`).

The proxy's access token is a secret: the app keeps it in the OS keyring
(`SECRETS`, under `ACCESS_TOKEN_SECRET`), never in the TOML file, and
`with_access_token` puts it into the settings the proxy runs with. A token
set in the file (`server.access_token`) or named by `access_token_env`
still wins, as documented.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from lmbridge import config, logs
from lmbridge.auth.secrets import SECRETS, SecretStore, Stored
from lmbridge.settings_edit import diff as settings_diff
from lmbridge.settings_store import SavedSettings, SettingsStore

__all__ = [
    "ACCESS_TOKEN_SECRET",
    "SavedSettings",
    "SettingsService",
    "apply_log_level",
    "merged",
    "with_access_token",
]

log = logging.getLogger(__name__)

# The keyring entry of the proxy's access token (upstream keys are stored
# under upstream names; this one cannot be an upstream's, which has no "@").
ACCESS_TOKEN_SECRET = "@access-token"


def apply_log_level(level: str) -> None:
    """Use `level` for the log file the app writes now (if it writes one)."""
    root = logging.getLogger()
    handlers = [h for h in root.handlers if isinstance(h, logs.LogFileHandler)]
    for handler in handlers:
        handler.setLevel(level)
    if handlers and root.getEffectiveLevel() > handlers[0].level:
        root.setLevel(level)


def with_access_token(settings: config.Settings, token: str) -> config.Settings:
    """`settings` with the keyring's access token, unless the file sets one."""
    server = settings.server
    if not token or server.access_token or server.access_token_env:
        return settings
    return msgspec.structs.replace(
        settings, server=msgspec.structs.replace(server, access_token=token)
    )


def merged(
    base: config.Settings, changes: Mapping[str, Any], source: str
) -> config.Settings:
    """`base` with `changes` (table name -> dict to merge, or a new list).

    Raises ConfigError, naming the file and the key, when the result does
    not validate exactly as the proxy would read it from the file.
    """
    data: dict[str, Any] = msgspec.to_builtins(base)
    for table, value in changes.items():
        if isinstance(value, Mapping):
            data[table] = {**data.get(table, {}), **value}
        else:
            data[table] = value
    if not data.get("upstream"):
        raise config.ConfigError(f"{source}: add at least one upstream")
    try:
        settings = msgspec.convert(data, config.Settings)
    except msgspec.ValidationError as exc:
        raise config.ConfigError(f"{source}: {exc}") from None
    return config.parse(config.dump(settings), source)


class SettingsService:
    """The settings file of the desktop app, and the access token's secret."""

    def __init__(self, path: Path, secrets: SecretStore = SECRETS) -> None:
        self.path = path
        self.secrets = secrets
        self.store = SettingsStore(path, secrets)

    def merged(
        self, base: config.Settings, changes: Mapping[str, Any]
    ) -> config.Settings:
        """See `merged`; errors name this service's file."""
        return merged(base, changes, str(self.path))

    def preview(self, settings: config.Settings) -> tuple[str, str]:
        """(current file text, text `save` would write), for a diff."""
        return self.store.preview(settings_diff(self.store.settings, settings))

    def save(self, settings: config.Settings) -> SavedSettings:
        """Write what `settings` changes from the settings the store last read
        or wrote, onto the file as it is now; SettingsInvalid (a ConfigError
        naming each key) or OSError if not."""
        return self.store.save(settings, base=self.store.settings)

    # -- the access token ------------------------------------------------

    async def access_token(self) -> str:
        """The access token kept in the keyring ("" for none)."""
        return await self.secrets.get(ACCESS_TOKEN_SECRET) or ""

    async def set_access_token(self, token: str) -> Stored:
        """Keep `token` in the keyring (or for this session only)."""
        return await self.secrets.set(ACCESS_TOKEN_SECRET, token)

    async def delete_access_token(self) -> bool:
        """Forget the stored access token; False if there was none."""
        return await self.secrets.delete(ACCESS_TOKEN_SECRET)
