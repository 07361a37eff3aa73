"""Protocols by name: a new protocol is one package plus one line here.

Every front door in `FRONT_DOORS` gets its routes (`FrontDoor.paths`) in the
app, its error shape on those paths, and a place in the GUI's Replay and
Test; every codec in `UPSTREAM_APIS` can be named by `api = ...` in an
upstream's settings. A codec has one name (`codec.name`), in both tables;
`register(codec)` puts it in each table whose contract it fulfils. The
tables are typed, so mypy checks each codec against the protocol classes in
`protocols/base.py`.
"""

from __future__ import annotations

from lmbridge.core.errors import InvalidRequest
from lmbridge.protocols.anthropic import ANTHROPIC
from lmbridge.protocols.base import (
    AddressedDoor,
    FrontDoor,
    PlatformBlock,
    UpstreamCodec,
)
from lmbridge.protocols.gemini import GEMINI
from lmbridge.protocols.openai_chat import OPENAI_CHAT
from lmbridge.protocols.openai_responses import RESPONSES

FRONT_DOORS: dict[str, FrontDoor] = {}
"""Inbound protocols by name, as `RequestRecord.protocol` names them."""

UPSTREAM_APIS: dict[str, UpstreamCodec] = {}
"""Upstream APIs by name, as `api = ...` and `RequestRecord.upstream_api`
name them."""

SETTING_SPELLINGS: dict[str, str] = {"chat": "openai", "messages": "anthropic"}
"""The older names config.toml gives some APIs in `api = ...`, which stay
valid (a user wrote them): spelling -> the codec's name."""


def register(codec: FrontDoor | UpstreamCodec) -> None:
    """Add a codec: as a front door (the app factory serves its paths from
    then on) and as an upstream API (`api = "<name>"` reaches it), as far
    as it fulfils each contract (TypeError if neither)."""
    door, api = isinstance(codec, FrontDoor), isinstance(codec, UpstreamCodec)
    if not (door or api):
        raise TypeError(
            f"{codec!r} is neither a FrontDoor nor an UpstreamCodec (protocols/base.py)"
        )
    if isinstance(codec, FrontDoor):
        FRONT_DOORS[codec.name] = codec
    if isinstance(codec, UpstreamCodec):
        UPSTREAM_APIS[codec.name] = codec
    _index()


def unregister(name: str) -> None:
    """Take the codec `name` out of both tables (tests that add their own)."""
    FRONT_DOORS.pop(name, None)
    UPSTREAM_APIS.pop(name, None)
    _index()


_ADDRESSED: tuple[AddressedDoor, ...] = ()
"""The addressed doors, sorted out when the tables change: every request
asks for them (their keys), and `isinstance` against a runtime-checkable
Protocol checks each member every time (it was 17 % of a c50 profile)."""

_PLATFORM_BLOCKS: tuple[PlatformBlock, ...] = ()
"""Every registered protocol's `Wire.platform_block`, gathered when the
tables change (the pipeline asks on every translated request)."""


def _index() -> None:
    global _ADDRESSED, _PLATFORM_BLOCKS
    _ADDRESSED = tuple(d for d in FRONT_DOORS.values() if isinstance(d, AddressedDoor))
    wires = [d.wire for d in FRONT_DOORS.values()]
    wires += [c.wire for c in UPSTREAM_APIS.values()]
    blocks = [w.platform_block for w in wires if w.platform_block is not None]
    _PLATFORM_BLOCKS = tuple(dict.fromkeys(blocks))


def api_names() -> list[str]:
    """Every value `api = ...` accepts: the codecs' names and the older
    spellings."""
    older = [s for s, name in SETTING_SPELLINGS.items() if name in UPSTREAM_APIS]
    return [*UPSTREAM_APIS, *older]


def upstream_codec(api: str) -> UpstreamCodec:
    """The codec for an upstream API, by its name or by an older spelling
    of `api = ...` ("chat", "messages"). KeyError for an unknown one (the
    settings were checked against `api_names`)."""
    return UPSTREAM_APIS[SETTING_SPELLINGS.get(api, api)]


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
        if door in _ADDRESSED and door.serves(path):
            return door
    return None


def addressed_doors() -> tuple[AddressedDoor, ...]:
    """The front doors with endpoints of their own (`AddressedDoor`)."""
    return _ADDRESSED


def platform_blocks() -> tuple[PlatformBlock, ...]:
    """The blocks a request's system prompt may carry that only one
    platform reads (Claude Code's billing block): a translated request
    keeps them only to an upstream that keeps them (`keeps_billing_header`)."""
    return _PLATFORM_BLOCKS


register(OPENAI_CHAT)
register(ANTHROPIC)
register(RESPONSES)
register(GEMINI)
