"""API keys in the OS keyring: service `lmbridge`, user = the upstream name.

The keyring is the only place a key is written. Every value read or
written here is registered with the scrubber (`core/redact.py`), so it
never leaves LM Bridge in an answer, a record or a log line. When the system has no
secure keyring backend (headless Linux has none; keyrings.alt's plaintext
files do not count), a key given to LM Bridge is kept in this process's
memory for this session only, and `KeyringStatus.reason` says why in plain
words; it is never written to a file of ours. Keyring calls can block
(D-Bus, a Keychain prompt), so they run in a thread; keyring exceptions
become `core.errors` in `_keyring_call`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Literal, TypeVar

import keyring
import keyring.backends.chainer
import keyring.backends.fail
import keyring.backends.null
import keyring.errors
import msgspec

from lmbridge.config_tables import WEB_SEARCH_SECRET
from lmbridge.core import errors
from lmbridge.core.redact import SECRETS as SCRUBBED

log = logging.getLogger(__name__)

SERVICE = "lmbridge"
NO_KEYRING = (
    "this system has no keyring (no Secret Service, KWallet, Keychain or "
    "Windows Credential Manager is available, as on a headless Linux)"
)

T = TypeVar("T")


class KeyringStatus(msgspec.Struct, frozen=True):
    """Whether keys can be stored securely here, and if not, why."""

    secure: bool
    backend: str
    reason: str = ""


class Stored(msgspec.Struct, frozen=True):
    """Where `SecretStore.set` put a key: the keyring, or this session only."""

    where: Literal["keyring", "session"]
    reason: str = ""


def _name(backend: object) -> str:
    cls = type(backend)
    return f"{cls.__module__}.{cls.__name__}"


def _insecure(backend: object) -> str:
    """Why `backend` is not a secure store ("" if it is one)."""
    if isinstance(
        backend, keyring.backends.fail.Keyring | keyring.backends.null.Keyring
    ):
        return NO_KEYRING
    if isinstance(backend, keyring.backends.chainer.ChainerBackend):
        chained = list(backend.backends)
        reasons = [_insecure(b) for b in chained]
        if not chained or all(reasons):
            return reasons[0] if reasons else NO_KEYRING
        return ""
    name = _name(backend)
    if "plaintext" in name.lower() or name.startswith("keyrings.alt."):
        return f"the only keyring backend ({name}) stores keys unencrypted"
    try:
        priority = float(backend.priority)  # type: ignore[attr-defined]
    except Exception:
        return f"the keyring backend {name} is not usable here"
    if priority < 1:
        return f"the keyring backend {name} is not a recommended, secure store"
    return ""


def keyring_status() -> KeyringStatus:
    """The keyring backend in use and whether it is a secure store."""
    backend = keyring.get_keyring()
    reason = _insecure(backend)
    return KeyringStatus(secure=not reason, backend=_name(backend), reason=reason)


class SecretStore:
    """API keys by upstream name: the OS keyring, or this session's memory."""

    def __init__(self, service: str = SERVICE) -> None:
        self.service = service
        self._session: dict[str, str] = {}

    def status(self) -> KeyringStatus:
        """See `keyring_status`."""
        return keyring_status()

    async def get(self, name: str) -> str | None:
        """The key for upstream `name`, or None."""
        if name in self._session:
            return self._session[name]
        if not self.status().secure:
            return None
        value = await self._keyring_call(keyring.get_password, name)
        SCRUBBED.add(value)
        return value

    async def set(self, name: str, value: str) -> Stored:
        """Keep `value` as the key of upstream `name`; says where it went."""
        SCRUBBED.add(value)
        status = self.status()
        reason = status.reason
        if status.secure:
            try:
                await self._keyring_call(keyring.set_password, name, value)
            except errors.LMBridgeError as exc:
                reason = exc.message
            else:
                self._session.pop(name, None)
                return Stored("keyring")
        self._session[name] = value
        log.warning(
            "the key for %s is kept for this session only: %s", _owner(name), reason
        )
        return Stored("session", reason)

    async def delete(self, name: str) -> bool:
        """Forget the key of upstream `name`; False if there was none."""
        found = self._session.pop(name, None) is not None
        if not self.status().secure:
            return found
        if await self._keyring_call(keyring.get_password, name) is None:
            return found
        await self._keyring_call(keyring.delete_password, name)
        return True

    def forget_session(self) -> None:
        """Drop the keys held for this session only."""
        self._session.clear()

    async def _keyring_call(self, fn: Callable[..., T], *args: str) -> T:
        """Run a keyring function in a thread; the one place its errors convert."""

        def call() -> T:
            return fn(self.service, *args)

        try:
            return await asyncio.to_thread(call)
        except keyring.errors.KeyringError as exc:
            # Keyring messages name the backend, never the secret.
            raise errors.AuthenticationFailed(
                f"the keyring failed ({type(exc).__name__}: {str(exc)[:200]}) — "
                "unlock or repair the system keyring"
            ) from None


# The store of this process (its session-only keys are shared by everyone).
SECRETS = SecretStore()


def _owner(name: str) -> str:
    """Whose key the keyring entry `name` holds, in words for a log line."""
    if name == WEB_SEARCH_SECRET:
        return "the web search provider"
    return f"upstream {name}"
