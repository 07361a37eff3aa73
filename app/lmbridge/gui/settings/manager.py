"""Settings: the Settings page's one way to the settings file (the
settings store, through the controller), the proxy that uses them, and the
secrets kept beside them in the keyring (upstream API keys, the access
token)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lmbridge import config
from lmbridge.auth.secrets import SECRETS, KeyringStatus, Stored
from lmbridge.gui.controller import ProxyController
from lmbridge.settings_edit import Changes
from lmbridge.settings_service import SavedSettings, apply_log_level


class SettingsManager:
    """Reads, validates and saves the settings; keeps the secrets."""

    def __init__(self, controller: ProxyController) -> None:
        self.controller = controller

    @property
    def settings(self) -> config.Settings:
        """The settings the app uses now."""
        return self.controller.settings

    @property
    def path(self) -> Path:
        return self.controller.settings_service.path

    def merged(self, changes: Mapping[str, Any]) -> config.Settings:
        """The current settings with `changes`; ConfigError names what is
        wrong."""
        return self.controller.settings_service.merged(self.settings, changes)

    def problems(self, changes: Changes) -> dict[str, str]:
        """What would be wrong with the file after `changes`, by key name
        (`server.port`, `upstream[local].base_url`); {} when valid."""
        return self.controller.store.problems(self.controller.file_changes(changes))

    def save_changes(self, changes: Changes) -> SavedSettings:
        """Write only `changes` (the key paths the user changed) over the file
        as it is now (SettingsInvalid, ConfigError or OSError if not) and use
        them: the app at once, the running proxy when it restarts."""
        saved = self.controller.save_changes(changes)
        apply_log_level(saved.settings.logging.level)
        return saved

    # -- upstream API keys ---------------------------------------------------

    def keyring_status(self) -> KeyringStatus:
        return SECRETS.status()

    async def api_key(self, name: str) -> str | None:
        return await SECRETS.get(name)

    async def set_api_key(self, name: str, key: str) -> Stored:
        return await SECRETS.set(name, key)

    async def delete_api_key(self, name: str) -> bool:
        return await SECRETS.delete(name)

    # -- the proxy's access token ------------------------------------------------

    @property
    def access_token(self) -> str:
        """The token kept in the keyring ("" for none)."""
        return self.controller.access_token

    async def set_access_token(self, token: str) -> Stored:
        stored = await self.controller.settings_service.set_access_token(token)
        self.controller.access_token = token
        return stored

    async def delete_access_token(self) -> None:
        await self.controller.settings_service.delete_access_token()
        self.controller.access_token = ""
