"""Sessions in SQLite: chains, per-session settings and when a session was
reset on the Sessions page survive a restart."""

from __future__ import annotations

import sqlite3
from typing import Any

import msgspec

from lmbridge.core.ir import AGENT_SEPARATOR
from lmbridge.core.sessions import SessionSettings, SessionState
from lmbridge.store.db import Database

_COLUMNS = (
    "key, upstream, model, client, last_response_id, covered, context, turns,"
    " bytes_sent, bytes_saved, first_seen, last_seen"
)
_list = msgspec.json.Decoder(list[str])
_encode = msgspec.json.encode


def _state(row: tuple[Any, ...]) -> SessionState:
    return SessionState(
        key=row[0],
        upstream=row[1],
        model=row[2],
        client=row[3],
        last_response_id=row[4],
        covered=_list.decode(row[5]),
        context=row[6],
        turns=row[7],
        bytes_sent=row[8],
        bytes_saved=row[9],
        first_seen=row[10],
        last_seen=row[11],
    )


class SqliteSessionStore:
    """The SessionStore (core/sessions.py) on the shared database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def load(self, key: str, upstream: str, model: str) -> SessionState | None:
        row = await self.db.fetchone(
            f"SELECT {_COLUMNS} FROM sessions WHERE key = ? AND upstream = ?"
            " AND model = ?",
            (key, upstream, model),
        )
        return _state(row) if row else None

    async def save(self, state: SessionState) -> None:
        await self.db.execute(
            f"INSERT OR REPLACE INTO sessions ({_COLUMNS})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                state.key,
                state.upstream,
                state.model,
                state.client,
                state.last_response_id,
                _encode(state.covered).decode(),
                state.context,
                state.turns,
                state.bytes_sent,
                state.bytes_saved,
                state.first_seen,
                state.last_seen,
            ),
        )

    async def all(self) -> list[SessionState]:
        rows = await self.db.fetchall(f"SELECT {_COLUMNS} FROM sessions")
        return [_state(r) for r in rows]

    async def delete(self, key: str) -> None:
        # The session's subagents' chains go with it.
        await self.db.execute(
            "DELETE FROM sessions WHERE key = ? OR substr(key, 1, ?) = ?",
            (key, len(key) + len(AGENT_SEPARATOR), key + AGENT_SEPARATOR),
        )

    async def settings(self) -> list[SessionSettings]:
        rows = await self.db.fetchall(
            "SELECT key, model_override, allowed_tools FROM session_settings"
        )
        return [
            SessionSettings(
                key=r[0],
                model_override=r[1],
                allowed_tools=_list.decode(r[2]) if r[2] is not None else None,
            )
            for r in rows
        ]

    async def save_settings(self, settings: SessionSettings) -> None:
        tools = settings.allowed_tools

        def put(conn: sqlite3.Connection) -> None:
            if settings.model_override is None and tools is None:
                conn.execute(
                    "DELETE FROM session_settings WHERE key = ?", (settings.key,)
                )
                return
            conn.execute(
                "INSERT OR REPLACE INTO session_settings VALUES (?, ?, ?)",
                (
                    settings.key,
                    settings.model_override,
                    _encode(tools).decode() if tools is not None else None,
                ),
            )

        await self.db.transaction(put)


class SessionResets:
    """When sessions were last reset on the Sessions page (`session_resets`),
    so that after a restart a reset session's Turns still count from its
    reset, not from its first request in the history.

    Keyed by the key that was reset: a session's (which resets its
    subagents' chains too) or one subagent chain's.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    async def all(self) -> dict[str, float]:
        """Every reset kept: key -> when (epoch seconds)."""
        rows = await self.db.fetchall("SELECT key, reset_at FROM session_resets")
        return {str(r[0]): float(r[1]) for r in rows}

    async def mark(self, key: str, at: float) -> None:
        """Keep that `key` was reset at `at` (the latest reset wins)."""
        await self.db.execute(
            "INSERT INTO session_resets (key, reset_at) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE"
            " SET reset_at = max(reset_at, excluded.reset_at)",
            (key, at),
        )
