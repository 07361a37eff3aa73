"""What an upstream's health check found (the /health endpoint, the GUI),
and the cache that keeps `/health` from probing every upstream per call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

import msgspec

from lmbridge.core.redact import SECRETS


class Health(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One upstream, checked: reachable or not, and why."""

    name: str
    kind: str
    # Shown without credentials (`core/urls.py`).
    url: str
    reachable: bool
    # The HTTP status it answered with (None: it did not answer).
    status: int | None = None
    error: str | None = None
    # Azure only: how it signs in, and whether a credential is at hand.
    auth: str | None = None
    signed_in: bool | None = None


Check = Callable[[], Awaitable[Health]]


class HealthProbes:
    """The upstreams' checks, run at most once per `max_age` seconds: calls
    in between (and calls while a round runs) share the last round."""

    def __init__(self, max_age: float = 5.0) -> None:
        self.max_age = max_age
        self._lock = asyncio.Lock()
        self._at = float("-inf")
        self._found: list[Health] = []
        self.rounds = 0

    async def checks(self, probes: Sequence[Check]) -> list[Health]:
        """Each upstream's health, from the cache when it is fresh."""
        async with self._lock:
            if time.monotonic() - self._at < self.max_age:
                return self._found
            found = list(await asyncio.gather(*(probe() for probe in probes)))
            for health in found:
                if health.error:
                    health.error = SECRETS.scrub(health.error)
            self._found, self._at = found, time.monotonic()
            self.rounds += 1
            return found
