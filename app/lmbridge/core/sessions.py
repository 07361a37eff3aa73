"""Session records: shared by the chaining logic, the store and the GUI."""

from __future__ import annotations

import time
from typing import Protocol

import msgspec

from lmbridge.core.ir import AGENT_SEPARATOR, split_chain_key


class SessionState(msgspec.Struct, kw_only=True):
    """One chain of responses on one upstream and model, as persisted."""

    key: str
    upstream: str
    model: str
    client: str = ""
    last_response_id: str | None = None
    # Structure prints of the messages the chain covers (see upstreams/sessions).
    covered: list[str] = msgspec.field(default_factory=list)
    context: str = ""
    turns: int = 0
    bytes_sent: int = 0
    bytes_saved: int = 0
    first_seen: float = msgspec.field(default_factory=time.time)
    last_seen: float = msgspec.field(default_factory=time.time)

    @property
    def session(self) -> str:
        """The session this chain belongs to (its own key for a main agent)."""
        return split_chain_key(self.key)[0]

    @property
    def agent(self) -> str | None:
        """The subagent whose chain this is; None for the main agent."""
        return split_chain_key(self.key)[1]


class SessionSettings(msgspec.Struct, kw_only=True):
    """What the user set for one session key."""

    key: str
    # Send this model instead of the one the client asks for.
    model_override: str | None = None
    # Forward only these tools (None: all).
    allowed_tools: list[str] | None = None


class SessionStore(Protocol):
    """Where sessions persist: SQLite in the app, memory in unit tests."""

    async def load(
        self, key: str, upstream: str, model: str
    ) -> SessionState | None: ...

    async def save(self, state: SessionState) -> None: ...

    async def all(self) -> list[SessionState]: ...

    async def delete(self, key: str) -> None: ...

    async def settings(self) -> list[SessionSettings]: ...

    async def save_settings(self, settings: SessionSettings) -> None: ...


class MemorySessionStore:
    """A SessionStore that forgets on restart."""

    def __init__(self) -> None:
        self.states: dict[tuple[str, str, str], SessionState] = {}
        self.per_key: dict[str, SessionSettings] = {}

    async def load(self, key: str, upstream: str, model: str) -> SessionState | None:
        return self.states.get((key, upstream, model))

    async def save(self, state: SessionState) -> None:
        self.states[(state.key, state.upstream, state.model)] = state

    async def all(self) -> list[SessionState]:
        return list(self.states.values())

    async def delete(self, key: str) -> None:
        sub = key + AGENT_SEPARATOR
        for k in [k for k in self.states if k[0] == key or k[0].startswith(sub)]:
            del self.states[k]

    async def settings(self) -> list[SessionSettings]:
        return list(self.per_key.values())

    async def save_settings(self, settings: SessionSettings) -> None:
        self.per_key[settings.key] = settings
