"""Protocols by name: a new protocol is one module plus one line here.

Every front door in `FRONT_DOORS` gets its routes (`FrontDoor.paths`) in the
app, its error shape on those paths, and a place in the GUI's Replay and
Test; every codec in `UPSTREAM_APIS` can be named by `api = ...` in an
upstream's settings. The tables are typed, so mypy checks each codec
against the protocol classes in `protocols/base.py`.
"""

from __future__ import annotations

from lmbridge.core.errors import InvalidRequest
from lmbridge.protocols.anthropic import ANTHROPIC
from lmbridge.protocols.base import AddressedDoor, FrontDoor, UpstreamCodec
from lmbridge.protocols.gemini import GEMINI
from lmbridge.protocols.openai_chat import OPENAI_CHAT
from lmbridge.protocols.openai_responses import RESPONSES

FRONT_DOORS: dict[str, FrontDoor] = {
    "openai": OPENAI_CHAT,
    "anthropic": ANTHROPIC,
    "responses": RESPONSES,
    "gemini": GEMINI,
}
"""Inbound protocols by name, as `RequestRecord.protocol` names them."""

UPSTREAM_APIS: dict[str, UpstreamCodec] = {
    "chat": OPENAI_CHAT,
    "messages": ANTHROPIC,
    "responses": RESPONSES,
}
"""Upstream APIs by the name `api = ...` gives them."""


def register(door: FrontDoor) -> None:
    """Add a front door (the app factory serves it from then on)."""
    FRONT_DOORS[door.name] = door


def upstream_codec(api: str) -> UpstreamCodec:
    """The codec for an upstream API: "chat", "messages" or "responses"."""
    return UPSTREAM_APIS[api]


def front_door(name: str) -> FrontDoor:
    """The codec for an inbound protocol: "openai", "anthropic", "responses"."""
    door = FRONT_DOORS.get(name)
    if door is None:
        raise InvalidRequest(f"unknown protocol {name!r}")
    return door


def door_for_path(path: str) -> FrontDoor | None:
    """The front door serving `path` (or a path below one of its routes)."""
    for door in FRONT_DOORS.values():
        if any(path == p or path.startswith(p + "/") for p in door.paths):
            return door
        if isinstance(door, AddressedDoor) and door.serves(path):
            return door
    return None


def addressed_doors() -> list[AddressedDoor]:
    """The front doors with endpoints of their own (`AddressedDoor`)."""
    return [d for d in FRONT_DOORS.values() if isinstance(d, AddressedDoor)]


def relayed_as(door: FrontDoor) -> str | None:
    """The upstream API that speaks `door`'s protocol unchanged, if any."""
    return door.passthrough.api if door.passthrough is not None else None
