"""Request records for the request-history tests (test_request_record.py,
test_usage_store.py, the GUI's sessions page): one builder of a finished
record, one record with every field set, and a fresh database for them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from lmbridge.core.events import Phase, RequestRecord
from lmbridge.core.record import NoteKind, PrefixChange
from lmbridge.store.db import FILENAME, Database


@contextlib.asynccontextmanager
async def fresh_database(folder: Path) -> AsyncIterator[Database]:
    """A new database (every migration applied) under `folder`, open for
    the `with` block."""
    database = Database(folder / "data" / FILENAME)
    await database.open()
    try:
        yield database
    finally:
        await database.close()


def finished(received: float, **fields: Any) -> RequestRecord:
    """A finished record received at `received` (epoch seconds), with `fields`."""
    record = RequestRecord(received=received, **fields)
    record.phase = Phase.FINISHED
    return record


def full_record(**fields: Any) -> RequestRecord:
    """A finished record with every field set to something not its default
    (`fields` overrides some), and two notes."""
    values: dict[str, Any] = {
        "received": 1_700_000_000.25,
        "client": "claude-cli/2.0.1 (external, cli)",
        "protocol": "anthropic",
        "path": "/v1/messages",
        "model": "claude-sonnet-4-6",
        "route": "claude-*",
        "upstream": "llama",
        "target": "smollm2",
        "upstream_api": "chat",
        "stream": True,
        "status": 200,
        "error": "broke off",
        "error_kind": "upstream_error",
        "client_gone": True,
        "upstream_connected": 0.01,
        "first_token": 0.5,
        "done": 1.5,
        "tokens_in": 1200,
        "tokens_out": 40,
        "cached_tokens": 1000,
        "bytes_in": 5000,
        "bytes_out": 800,
        "upstream_bytes": 4900,
        "session_key": "s1/agent/a7",
        "chain_turn": 4,
        "prefix_change": PrefixChange.TOOLS,
        "prefix_at": None,
        "prefix_detail": "a tool was added: grep",
        "kept_tokens": 10,
    }
    record = RequestRecord(**{**values, **fields})
    if "notes" not in fields:
        record.note(NoteKind.FALLBACK, "fallback a -> b (503)")
        record.note(NoteKind.CACHE, "the tools changed")
    record.mark_done()
    return record
