"""The key an upstream is sent: from its environment variable, else from
the OS keyring (a key saved in the app's Settings). Never logged: every
key read here is registered with the scrubber (`core/redact.py`).

A `user:password` that a save took out of the upstream's base_url (the
settings store keeps it in the keyring, `config.url_credentials_secret`)
is sent as HTTP Basic credentials, as the URL itself would have been,
unless the upstream also has a key, which wins (aiohttp cannot send both).
"""

from __future__ import annotations

import base64
import logging
import os

from lmbridge.config import UpstreamSettings, url_credentials_secret
from lmbridge.core import errors
from lmbridge.core.redact import SECRETS
from lmbridge.protocols.base import Wire

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
        self._basic = ""

    async def load(self) -> None:
        """Read the keyring: the key, unless it comes from the environment,
        and the base URL's credentials a save moved there."""
        if not self.settings.api_key_env:
            self._stored = await stored_key(self.settings.name)
        pair = await stored_key(url_credentials_secret(self.settings.name))
        if pair:
            self._basic = base64.b64encode(pair.encode()).decode()
            SECRETS.add(pair.partition(":")[2])
            SECRETS.add(self._basic)

    def key(self) -> str:
        env = self.settings.api_key_env
        key = os.environ.get(env, "") if env else self._stored
        SECRETS.add(key)
        return key

    def headers(self, wire: Wire) -> dict[str, str]:
        """The key in the header `wire`'s protocol reads it from, else the
        base URL's credentials as Basic auth, else nothing."""
        key = self.key()
        if not key:
            return {"Authorization": f"Basic {self._basic}"} if self._basic else {}
        return wire.key_headers(key)
