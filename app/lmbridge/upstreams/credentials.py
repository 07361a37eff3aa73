"""The key an upstream is sent: from its environment variable, else from
the OS keyring (a key saved in the app's Settings). Never logged: every
key read here is registered with the scrubber (`core/redact.py`)."""

from __future__ import annotations

import logging
import os

from lmbridge.config import UpstreamApi, UpstreamSettings
from lmbridge.core import errors
from lmbridge.core.redact import SECRETS

log = logging.getLogger(__name__)


async def stored_key(name: str) -> str:
    """The key stored for upstream `name` in the OS keyring ("" if none)."""
    from lmbridge.auth.secrets import SECRETS

    try:
        return await SECRETS.get(name) or ""
    except errors.LMBridgeError as exc:
        log.warning("cannot read the key of upstream %s: %s", name, exc.message)
        return ""


class KeyCredentials:
    """An API key, sent the way the upstream's API expects it."""

    def __init__(self, settings: UpstreamSettings) -> None:
        self.settings = settings
        self._stored = ""

    async def load(self) -> None:
        """Read the keyring, unless the key comes from the environment."""
        if not self.settings.api_key_env:
            self._stored = await stored_key(self.settings.name)

    def key(self) -> str:
        env = self.settings.api_key_env
        key = os.environ.get(env, "") if env else self._stored
        SECRETS.add(key)
        return key

    def headers(self, api: UpstreamApi) -> dict[str, str]:
        key = self.key()
        if not key:
            return {}
        if api == "messages":
            return {"x-api-key": key}
        return {"Authorization": f"Bearer {key}"}
