"""Azure sign-in in a browser, for people without the Azure CLI.

azure-identity's `InteractiveBrowserCredential` opens the system browser
once (`sign_in`); the resulting `AuthenticationRecord` (account and tenant,
no secret) is saved in the data directory, and the refresh token lives in
azure-identity's persistent token cache, encrypted by the OS (Keychain,
DPAPI, libsecret). Later tokens come silently from that cache; a request
never opens a browser: when interaction is needed it gets a 401 that says
how to sign in.

Where the OS offers no encrypted cache (headless Linux), the cache is kept
in memory for this session only and a warning says so; it is never written
unencrypted. azure-identity calls block, so they run in a thread; their
exceptions become `core.errors` in `_call`.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from azure.core.exceptions import ClientAuthenticationError
from azure.identity import (
    AuthenticationRecord,
    AuthenticationRequiredError,
    InteractiveBrowserCredential,
    TokenCachePersistenceOptions,
)

from lmbridge.auth.tokens import AccessToken, AccountInfo, CachedTokens
from lmbridge.core import errors
from lmbridge.core.private import private_dir, private_file

log = logging.getLogger(__name__)

CACHE_NAME = "lmbridge"
# Seconds the browser sign-in waits for the user.
SIGN_IN_TIMEOUT = 300
SIGN_IN = (
    "sign in from the LM Bridge tray (Azure ▸ Sign in), or run "
    "`lmbridge azure login` in a terminal"
)

T = TypeVar("T")


class BrowserSignIn:
    """Browser sign-in and silent tokens for one upstream's (tenant, scope)."""

    def __init__(self, name: str, scope: str, tenant: str, state_dir: Path) -> None:
        self.name = name
        self.scope = scope
        self.tenant = tenant
        safe = re.sub(r"[^\w.-]", "_", name)
        self.record_path = state_dir / f"{safe}.auth-record.json"
        self.tokens = CachedTokens(self._fetch)
        self._credential: InteractiveBrowserCredential | None = None
        self._credential_record = ""
        self._persistent = True

    def record(self) -> AuthenticationRecord | None:
        """The saved sign-in, if any."""
        try:
            text = self.record_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            return AuthenticationRecord.deserialize(text)
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring an unreadable sign-in record %s", self.record_path)
            return None

    def account(self) -> AccountInfo | None:
        """Who signed in, from the saved record (no network)."""
        record = self.record()
        if record is None:
            return None
        return AccountInfo(account=record.username, tenant=record.tenant_id)

    async def sign_in(self) -> AccountInfo:
        """Open the browser, wait for the user, save the record."""
        record = await self._call(lambda c: c.authenticate(scopes=[self.scope]), None)
        # In the data directory, private like the rest of it.
        private_file(private_dir(self.record_path.parent) / self.record_path.name)
        self.record_path.write_text(record.serialize(), encoding="utf-8")
        # The credential that signed in holds the account in its cache.
        self._credential_record = record.serialize()
        self.tokens.forget()
        return AccountInfo(account=record.username, tenant=record.tenant_id)

    async def sign_out(self) -> None:
        """Forget the saved record and the token in memory."""
        self.record_path.unlink(missing_ok=True)
        self._credential = None
        self._credential_record = ""
        self.tokens.forget()

    async def _fetch(self) -> AccessToken:
        record = self.record()
        if record is None:
            raise errors.AuthenticationFailed(
                f"not signed in to Azure in a browser — {SIGN_IN}"
            )
        serialized = record.serialize()
        if self._credential_record != serialized:
            self._credential = None
            self._credential_record = serialized
        token = await self._call(lambda c: c.get_token(self.scope), record)
        return AccessToken(token.token, float(token.expires_on), record.tenant_id)

    def _make(
        self, record: AuthenticationRecord | None
    ) -> InteractiveBrowserCredential:
        kwargs: dict[str, Any] = {
            "authentication_record": record,
            # Only authenticate() (sign_in) may open a browser, never a request.
            "disable_automatic_authentication": True,
            "timeout": SIGN_IN_TIMEOUT,
        }
        if self.tenant:
            kwargs["tenant_id"] = self.tenant
        if self._persistent:
            kwargs["cache_persistence_options"] = TokenCachePersistenceOptions(
                name=CACHE_NAME
            )
        return InteractiveBrowserCredential(**kwargs)

    async def _call(
        self,
        fn: Callable[[InteractiveBrowserCredential], T],
        record: AuthenticationRecord | None,
    ) -> T:
        """Run a blocking azure-identity call in a thread, converting failures."""
        if self._credential is None:
            self._credential = self._make(record)
        credential = self._credential
        try:
            return await asyncio.to_thread(fn, credential)
        except (ValueError, NotImplementedError, ImportError) as exc:
            # Raised when the encrypted persistent cache cannot be opened.
            if not self._persistent:
                raise errors.AuthenticationFailed(
                    f"Azure sign-in failed: {_first_line(exc)}"
                ) from None
            log.warning(
                "this system has no encrypted store for Azure tokens (%s); the "
                "browser sign-in lasts for this session only",
                _first_line(exc),
            )
            self._persistent = False
            self._credential = None
            return await self._call(fn, record)
        except AuthenticationRequiredError:
            raise errors.AuthenticationFailed(
                f"the Azure browser sign-in needs renewing — {SIGN_IN}"
            ) from None
        except ClientAuthenticationError as exc:
            raise errors.AuthenticationFailed(
                f"Azure sign-in failed: {_first_line(exc)} — {SIGN_IN}"
            ) from None


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "message", "") or exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
