"""Access tokens, the `TokenProvider` contract and the token cache.

A token is refreshed `REFRESH_MARGIN` seconds before it expires. However
many requests need a token at once, one fetch runs and all of them share
its result (or its failure). A request whose token the upstream rejected
asks for a refresh naming that token, so two such requests cause one fetch.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import msgspec

from lmbridge.core.redact import SECRETS

# Seconds before expiry at which a cached token is replaced.
REFRESH_MARGIN = 300.0


class AccessToken(msgspec.Struct, frozen=True):
    """A bearer token and its expiry (POSIX seconds). Its repr hides the
    token, and the scrubber knows it from its creation on."""

    token: str
    expires_on: float
    tenant: str = ""

    def __post_init__(self) -> None:
        SECRETS.add(self.token)  # never shown anywhere once it exists

    def __repr__(self) -> str:
        return f"AccessToken(expires_on={self.expires_on:.0f}, tenant={self.tenant!r})"

    def fresh(self, now: float | None = None) -> bool:
        """Whether the token is good for more than `REFRESH_MARGIN` seconds."""
        now = time.time() if now is None else now
        return self.expires_on - REFRESH_MARGIN > now


class AccountInfo(msgspec.Struct, frozen=True, omit_defaults=True):
    """Who is signed in: shown after sign-in and by `lmbridge azure status`."""

    account: str = ""
    tenant: str = ""
    subscription: str = ""
    subscription_id: str = ""

    def describe(self) -> str:
        """One line for people: account, tenant and subscription."""
        parts = [f"signed in as {self.account or 'an unknown account'}"]
        if self.tenant:
            parts.append(f"tenant {self.tenant}")
        if self.subscription or self.subscription_id:
            name = self.subscription or self.subscription_id
            sub_id = self.subscription_id
            parts.append(
                f"subscription {name}"
                + (f" ({sub_id})" if sub_id and sub_id != name else "")
            )
        return ", ".join(parts)


class TokenProvider(Protocol):
    """Bearer tokens for one (tenant, scope); raises `AuthenticationFailed`
    with the way to sign in when there is no signed-in account."""

    async def token(self) -> AccessToken:
        """A token good for at least a few more minutes."""
        ...

    async def refresh(self, rejected: AccessToken) -> AccessToken:
        """A new token after the upstream rejected `rejected` (unless another
        request already replaced it)."""
        ...

    def cached(self) -> AccessToken | None:
        """The token in memory, if any, without fetching."""
        ...

    async def aclose(self) -> None:
        """Stop any fetch in progress."""
        ...


Fetch = Callable[[], Awaitable[AccessToken]]


class CachedTokens:
    """A `TokenProvider` around a fetch function: cache, early refresh and a
    single fetch in flight that every waiter shares."""

    def __init__(self, fetch: Fetch, *, clock: Callable[[], float] = time.time):
        self._fetch = fetch
        self._clock = clock
        self._token: AccessToken | None = None
        self._inflight: asyncio.Task[AccessToken] | None = None

    def cached(self) -> AccessToken | None:
        return self._token

    async def token(self) -> AccessToken:
        current = self._token
        if current is not None and current.fresh(self._clock()):
            return current
        return await self._renew(current)

    async def refresh(self, rejected: AccessToken) -> AccessToken:
        return await self._renew(rejected)

    def forget(self) -> None:
        """Drop the cached token (after sign-out)."""
        self._token = None

    async def _renew(self, stale: AccessToken | None) -> AccessToken:
        current = self._token
        fresh = current is not None and current.fresh(self._clock())
        if current is not None and current is not stale and fresh:
            return current
        if self._inflight is None:
            self._inflight = asyncio.create_task(self._fetch_and_keep())
            self._inflight.add_done_callback(_retrieve)
        # A waiter that is cancelled (its client left) must not cancel the
        # fetch the others are waiting for.
        return await asyncio.shield(self._inflight)

    async def _fetch_and_keep(self) -> AccessToken:
        try:
            self._token = await self._fetch()
            return self._token
        finally:
            self._inflight = None

    async def aclose(self) -> None:
        task, self._inflight = self._inflight, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await task


def _retrieve(task: asyncio.Task[AccessToken]) -> None:
    # Mark a failure as seen when every waiter has gone (no "never retrieved").
    if not task.cancelled():
        task.exception()
