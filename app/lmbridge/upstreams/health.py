"""What an upstream's health check found (the /health endpoint, the GUI)."""

from __future__ import annotations

import msgspec


class Health(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One upstream, checked: reachable or not, and why."""

    name: str
    kind: str
    url: str
    reachable: bool
    # The HTTP status it answered with (None: it did not answer).
    status: int | None = None
    error: str | None = None
    # Azure only: how it signs in, and whether a credential is at hand.
    auth: str | None = None
    signed_in: bool | None = None
