"""Sessions: chain a long conversation on LM Studio with `previous_response_id`.

LM Studio keeps the KV cache of a chain of responses, so a turn that sends
only what is new, naming the previous response, is answered without
re-processing the whole history. The rules:

- A request belongs to a session when it carries a key: the
  `X-Claude-Code-Session-Id` header, `session_id` inside Anthropic
  `metadata.user_id`, OpenAI `prompt_cache_key` or `user`, or an
  `X-Session-Id` header (first found). No key: no chaining.
- Chaining applies to upstreams whose API is `responses`. The chain is kept
  per (session, agent, upstream, target model): Claude Code's subagents send
  the main agent's session id with their own `X-Claude-Code-Agent-Id`, and
  each keeps a chain of its own (key `<session>/agent/<agent id>`), so
  alternating main-agent and subagent turns do not break each other's.
- After a completed turn the chain covers the messages sent plus the
  assistant's reply. The next request extends the chain when its first
  messages have the same structure as what the chain covers (per message:
  role, tool call ids, tool result ids; and the same number of messages),
  and the system prompt and tool names are unchanged. Then only the trailing
  new messages go upstream, with `previous_response_id`.
- Anything else (a rewritten, compacted or rewound history, a new system
  prompt) is a divergence: the full history goes upstream and a fresh chain
  starts from its answer.
- If the upstream no longer knows the previous response (LM Studio
  restarted), the turn is retried once with the full history.

State is written off the answer path: a completed turn updates the chain in
memory at once and hands its save to a `BackgroundWriter` (one owner task,
bounded retry), so an answer never waits on, or fails because of, the
database. A chain that cannot be read, or whose last save failed, costs
only speed: that turn sends the full history (noted on its record) and
starts a fresh chain.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict

import msgspec

from lmbridge.core import errors, ir
from lmbridge.core.events import RequestRecord
from lmbridge.core.ir import AGENT_SEPARATOR
from lmbridge.core.record import NoteKind
from lmbridge.core.sessions import (
    MemorySessionStore,
    SessionSettings,
    SessionState,
    SessionStore,
)
from lmbridge.core.writer import BackgroundWriter

log = logging.getLogger(__name__)

# Chains kept in memory (the most recent), so a turn rarely reads the store.
RECENT_CHAINS = 512
ChainId = tuple[str, str, str]  # (chain key, upstream, target model)


def message_print(message: ir.Message) -> str:
    """The structure of one message: role, tool call ids, tool result ids."""
    ids = []
    for part in message.parts:
        if isinstance(part, ir.ToolCall):
            ids.append("c:" + part.id)
        elif isinstance(part, ir.ToolResult):
            ids.append("r:" + part.call_id)
    return f"{message.role}|{','.join(ids)}"


def context_print(req: ir.Request) -> str:
    """What must not change within one chain: system prompt and tool names."""
    digest = hashlib.sha1(usedforsecurity=False)
    digest.update(req.system_text().encode())
    for tool in req.tools:
        digest.update(b"\0" + tool.name.encode())
    return digest.hexdigest()


class Turn:
    """One request's use of a chain: what to send, then what to remember."""

    def __init__(
        self,
        manager: SessionManager,
        state: SessionState,
        full: ir.Request,
        delta: ir.Request | None,
        record: RequestRecord | None = None,
    ) -> None:
        self.manager = manager
        self.record = record
        self.state = state
        self.full = full
        self.delta = delta
        self.response_id: str | None = None
        self._reply: list[str] = []

    @property
    def chained(self) -> bool:
        return self.delta is not None

    def request(self) -> ir.Request:
        """The request to send: the delta when the chain extends, else full."""
        return self.delta if self.delta is not None else self.full

    def fall_back_to_full(self) -> ir.Request:
        """The upstream lost the chain: forget it and send everything."""
        self.delta = None
        self.state.last_response_id = None
        return self.full

    def observe(self, event: ir.Event) -> None:
        if isinstance(event, ir.MessageStart) and event.id:
            self.response_id = event.id
        elif isinstance(event, ir.BlockStart) and event.kind is ir.BlockKind.TOOL_CALL:
            self._reply.append("c:" + event.call_id)

    def commit(self, bytes_sent: int, bytes_full: int) -> None:
        """The answer completed: the chain now covers request plus reply.

        Kept in memory at once; saved by the manager's writer, off the
        answer path."""
        if not self.response_id:
            return
        state = self.state
        state.covered = [message_print(m) for m in self.full.messages]
        state.covered.append(f"{ir.Role.ASSISTANT}|{','.join(self._reply)}")
        state.context = context_print(self.full)
        state.last_response_id = self.response_id
        state.turns += 1
        state.bytes_sent += bytes_sent
        state.bytes_saved += max(0, bytes_full - bytes_sent)
        state.last_seen = time.time()
        self.manager.keep(state, self.record)


class SessionManager:
    """Decides per request whether to chain, and remembers chains.

    Per-session settings (model override, allowed tools) are kept in memory
    and written through to the store.
    """

    def __init__(
        self, store: SessionStore | None = None, writer: BackgroundWriter | None = None
    ) -> None:
        self.store: SessionStore = store or MemorySessionStore()
        # Saves chains off the answer path; its owner closes it (`close()`).
        self.writer = writer or BackgroundWriter("session chains")
        self._settings: dict[str, SessionSettings] = {}
        self._recent: OrderedDict[ChainId, SessionState] = OrderedDict()
        # Chains whose last save failed: their next turn sends everything.
        self._unsaved: set[ChainId] = set()

    async def start(self) -> None:
        """Load the per-session settings from the store (none, with a
        warning, when it cannot be read: chaining still works)."""
        try:
            self._settings = {s.key: s for s in await self.store.settings()}
        except errors.LMBridgeError as err:
            log.warning("session settings not loaded: %s", err.message)

    async def close(self) -> None:
        """Save the chains still queued (briefly) and end the writer."""
        await self.writer.close()

    def keep(self, state: SessionState, record: RequestRecord | None) -> None:
        """Remember `state` now and save it off the answer path."""
        chain: ChainId = (state.key, state.upstream, state.model)
        self._recent[chain] = state
        self._recent.move_to_end(chain)
        while len(self._recent) > RECENT_CHAINS:
            self._recent.popitem(last=False)
        saved = msgspec.structs.replace(state, covered=list(state.covered))

        async def write() -> None:
            await self.store.save(saved)
            if self._recent.get(chain) is state:
                self._unsaved.discard(chain)

        def failed(reason: str) -> None:
            if self._recent.get(chain) is state:
                del self._recent[chain]
                self._unsaved.add(chain)
            if record is not None:
                record.note(
                    NoteKind.SESSION,
                    f"session: chain not saved ({reason}); its next turn sends"
                    " the full history",
                )

        self.writer.submit(chain, write, failed)

    def settings_for(self, key: str | None) -> SessionSettings | None:
        return self._settings.get(key) if key else None

    async def configure(self, settings: SessionSettings) -> None:
        """Set a session's model override and allowed tools."""
        self._settings[settings.key] = settings
        await self.store.save_settings(settings)

    async def reset(self, key: str) -> None:
        """Forget a session's chains: its next turn sends the full history."""

        def of_session(chain: object) -> bool:
            name = chain[0] if isinstance(chain, tuple) else ""
            return bool(name == key or str(name).startswith(key + AGENT_SEPARATOR))

        self.writer.discard(of_session)
        for chain in [c for c in self._recent if of_session(c)]:
            del self._recent[chain]
        self._unsaved = {c for c in self._unsaved if not of_session(c)}
        await self.store.delete(key)

    async def sessions(self) -> list[SessionState]:
        """Every chain, most recent first (those still being saved as they
        are in memory, newer than the store's)."""
        chains = {(s.key, s.upstream, s.model): s for s in await self.store.all()}
        chains.update(self._recent)
        return sorted(chains.values(), key=lambda s: -s.last_seen)

    def apply_settings(self, req: ir.Request) -> ir.Request:
        """`req` with its session's model override and tool filter applied."""
        settings = self.settings_for(req.client.session_key)
        if settings is None:
            return req
        changes: dict[str, object] = {}
        if settings.model_override:
            changes["model"] = settings.model_override
        if settings.allowed_tools is not None:
            allowed = set(settings.allowed_tools)
            changes["tools"] = tuple(t for t in req.tools if t.name in allowed)
        return msgspec.structs.replace(req, **changes) if changes else req

    async def begin(
        self, req: ir.Request, upstream: str, record: RequestRecord | None = None
    ) -> Turn | None:
        """A Turn for `req` (already renamed to its target), or None.

        A chain that cannot be read, or whose last save failed, gives a
        Turn that sends the full history (noted on `record`)."""
        key = req.client.chain_key
        if not key:
            return None
        chain: ChainId = (key, upstream, req.model)
        fresh = SessionState(
            key=key, upstream=upstream, model=req.model, client=req.client.user_agent
        )
        if chain in self._unsaved:
            _note(
                record,
                "session: the chain's last turn was not saved, full history sent",
            )
            return Turn(self, fresh, req, None, record)
        state = self._recent.get(chain)
        if state is None:
            try:
                state = await self.store.load(key, upstream, req.model)
            except errors.LMBridgeError as err:
                _note(
                    record,
                    f"session: chain not read ({err.message}), full history sent",
                )
                return Turn(self, fresh, req, None, record)
        if state is None:
            return Turn(self, fresh, req, None, record)
        # A copy: a turn changes its state, and another may run meanwhile.
        state = msgspec.structs.replace(state, covered=list(state.covered))
        return Turn(self, state, req, self._delta(state, req), record)

    @staticmethod
    def _delta(state: SessionState, req: ir.Request) -> ir.Request | None:
        if not state.last_response_id or state.context != context_print(req):
            return None
        n = len(state.covered)
        messages = req.messages
        if len(messages) <= n or messages[n].role is not ir.Role.USER:
            return None
        if [message_print(m) for m in messages[:n]] != state.covered:
            return None
        extras = dict(req.extras)
        extras["previous_response_id"] = state.last_response_id
        return msgspec.structs.replace(req, messages=messages[n:], extras=extras)


def _note(record: RequestRecord | None, note: str) -> None:
    if record is not None:
        record.note(NoteKind.SESSION, note)
