"""The schema of the shared database: its ordered list of migration steps.

`MIGRATIONS` is the ordered list of schema steps; a step's version is its
position in the list, counted from 1. `Database.open()` (`store/db.py`)
applies the steps a database has not had yet, each in its own transaction
together with its row in `schema_version`, so a crash leaves a step either
wholly applied or not at all. To add tables (for example the sessions
store), append a step at the END of the list in this file, with a name and
its statements::

    Migration(
        "sessions",
        (
            '''CREATE TABLE sessions (
                id INTEGER PRIMARY KEY,
                key TEXT NOT NULL UNIQUE,
                created_at TEXT NOT NULL
            )''',
            "CREATE INDEX sessions_created ON sessions(created_at)",
        ),
    ),

Never edit, reorder or remove a step that has been released: databases in
the field have already applied it. Then use the database from your own
module in `store/` (see `store/db.py`).
"""

from __future__ import annotations

import datetime
import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from lmbridge.core import errors

log = logging.getLogger(__name__)


class Migration(NamedTuple):
    """One schema step: a name for humans and the statements it runs."""

    name: str
    statements: tuple[str, ...]


# The kind (core.record.NoteKind) of a note stored as a plain string, from
# its words, for the "request record" step.
_OLD_NOTE_KIND = """CASE
    WHEN value LIKE 'session%' THEN 'session'
    WHEN value LIKE 'fallback%' THEN 'fallback'
    WHEN value LIKE 'dropped%' OR value LIKE '%signed by another upstream%'
        OR value LIKE '%made by another upstream%' THEN 'dropped'
    WHEN value LIKE 'max_tokens%' THEN 'limit'
    WHEN value LIKE 'load%' OR value LIKE 'reloaded%' THEN 'load'
    WHEN value LIKE 'queued%' THEN 'queue'
    WHEN value LIKE 'not kept in the request history%' THEN 'storage'
    ELSE 'other' END"""

MIGRATIONS: list[Migration] = [
    Migration(
        "conversations",
        (
            """CREATE TABLE chats (
                id INTEGER PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                model TEXT NOT NULL,
                temperature REAL,
                max_tokens INTEGER,
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL
            )""",
            """CREATE TABLE chat_messages (
                id INTEGER PRIMARY KEY,
                chat_id INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
                position INTEGER NOT NULL,
                role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
                content TEXT NOT NULL,
                incomplete INTEGER NOT NULL DEFAULT 0,
                error TEXT,
                created_at TEXT NOT NULL,
                UNIQUE (chat_id, position)
            )""",
        ),
    ),
    Migration(
        "sessions",
        (
            """CREATE TABLE sessions (
                key TEXT NOT NULL,
                upstream TEXT NOT NULL,
                model TEXT NOT NULL,
                client TEXT NOT NULL DEFAULT '',
                last_response_id TEXT,
                covered TEXT NOT NULL DEFAULT '[]',
                context TEXT NOT NULL DEFAULT '',
                turns INTEGER NOT NULL DEFAULT 0,
                bytes_sent INTEGER NOT NULL DEFAULT 0,
                bytes_saved INTEGER NOT NULL DEFAULT 0,
                first_seen REAL NOT NULL,
                last_seen REAL NOT NULL,
                PRIMARY KEY (key, upstream, model)
            )""",
            """CREATE TABLE session_settings (
                key TEXT PRIMARY KEY,
                model_override TEXT,
                allowed_tools TEXT
            )""",
        ),
    ),
    Migration(
        "request history",
        (
            # One row per finished request: metadata only, never bodies or
            # headers (store/usage.py). `received` is epoch seconds; the
            # timings are seconds after it.
            """CREATE TABLE request_history (
                id INTEGER PRIMARY KEY,
                received REAL NOT NULL,
                client TEXT NOT NULL DEFAULT '',
                client_name TEXT NOT NULL DEFAULT '',
                protocol TEXT NOT NULL DEFAULT '',
                path TEXT NOT NULL DEFAULT '',
                model TEXT NOT NULL DEFAULT '',
                route TEXT NOT NULL DEFAULT '',
                upstream TEXT NOT NULL DEFAULT '',
                target TEXT NOT NULL DEFAULT '',
                upstream_api TEXT NOT NULL DEFAULT '',
                stream INTEGER NOT NULL DEFAULT 0,
                status INTEGER NOT NULL DEFAULT 0,
                error TEXT,
                client_gone INTEGER NOT NULL DEFAULT 0,
                upstream_connected REAL,
                first_token REAL,
                done REAL,
                tokens_in INTEGER NOT NULL DEFAULT 0,
                tokens_out INTEGER NOT NULL DEFAULT 0,
                bytes_in INTEGER NOT NULL DEFAULT 0,
                bytes_out INTEGER NOT NULL DEFAULT 0,
                upstream_bytes INTEGER NOT NULL DEFAULT 0,
                session_key TEXT,
                notes TEXT NOT NULL DEFAULT '[]'
            )""",
            "CREATE INDEX request_history_received ON request_history(received)",
            "CREATE INDEX sessions_last_seen ON sessions(last_seen)",
        ),
    ),
    Migration(
        "request cache figures",
        (
            # Of tokens_in, the prompt tokens the upstream served from its
            # cache; NULL when it did not say.
            "ALTER TABLE request_history ADD COLUMN cached_tokens INTEGER",
        ),
    ),
    Migration(
        "request record",
        (
            # The columns of core.record.RequestSummary the history lacked:
            # the error's kind and prefix reuse within the chain.
            "ALTER TABLE request_history ADD COLUMN error_kind TEXT NOT NULL"
            " DEFAULT ''",
            "ALTER TABLE request_history ADD COLUMN chain_turn INTEGER",
            "ALTER TABLE request_history ADD COLUMN prefix_change TEXT",
            "ALTER TABLE request_history ADD COLUMN prefix_at INTEGER",
            "ALTER TABLE request_history ADD COLUMN prefix_detail TEXT NOT NULL"
            " DEFAULT ''",
            "ALTER TABLE request_history ADD COLUMN kept_tokens INTEGER",
            # Notes become typed ({"kind", "text"}); earlier ones, plain
            # strings, get the kind their words say.
            f"""UPDATE request_history SET notes = (
                SELECT json_group_array(json_object('kind', {_OLD_NOTE_KIND},
                    'text', value))
                FROM json_each(request_history.notes)
            ) WHERE notes != '[]'""",
        ),
    ),
    Migration(
        "session turns",
        (
            # The Sessions page counts each session's requests (store/usage.py
            # `session_counts`), since its reset, every time it relists:
            # without this index that is a scan of the whole history (90 ms
            # on 150k rows). Partial: requests without a session key, often
            # most of the history, are not in it. Built once, in this step's
            # transaction; a few hundred ms on a large history.
            "CREATE INDEX IF NOT EXISTS request_history_session"
            " ON request_history(session_key, received)"
            " WHERE session_key IS NOT NULL",
            # When a session was last reset on the Sessions page (epoch s):
            # its Turns count from then on, after a restart too. Keyed by
            # the key reset: a session's, or one subagent chain's.
            """CREATE TABLE IF NOT EXISTS session_resets (
                key TEXT PRIMARY KEY,
                reset_at REAL NOT NULL
            )""",
        ),
    ),
]


def now_iso() -> str:
    """The current UTC time as ISO 8601 with milliseconds, e.g. ...T12:00:00.000Z."""
    now = datetime.datetime.now(datetime.UTC)
    return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def schema_version(conn: sqlite3.Connection) -> int:
    """The highest schema step applied to the database of `conn`."""
    row = conn.execute(
        "SELECT COALESCE(MAX(version), 0) FROM schema_version"
    ).fetchone()
    return int(row[0])


def rollback(conn: sqlite3.Connection) -> None:
    """Roll back the open transaction, if any."""
    # SQLite rolls some failures back by itself; a second ROLLBACK would
    # raise and hide the original error.
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def apply_pending(
    conn: sqlite3.Connection, path: Path, migrations: Sequence[Migration]
) -> None:
    """Apply the steps of `migrations` that the database at `path` lacks,
    each in its own transaction with its row in `schema_version`."""
    conn.execute(
        """CREATE TABLE IF NOT EXISTS schema_version (
            version INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            applied_at TEXT NOT NULL
        )"""
    )
    known = len(migrations)
    if schema_version(conn) > known:
        raise errors.LMBridgeError(
            f"the database {path} has schema version {schema_version(conn)},"
            f" newer than this LM Bridge knows ({known}) — update LM Bridge"
        )
    for version, step in enumerate(migrations, start=1):
        # Checked without a lock first: an up-to-date database opens (and is
        # read) while another process holds the write lock.
        if schema_version(conn) >= version:
            continue
        # Re-checked inside the write lock: another process (a CLI command
        # next to the running server) may have applied the step meanwhile.
        conn.execute("BEGIN IMMEDIATE")
        try:
            if schema_version(conn) < version:
                for statement in step.statements:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version (version, name, applied_at)"
                    " VALUES (?, ?, ?)",
                    (version, step.name, now_iso()),
                )
                log.debug("%s: applied schema step %d (%s)", path, version, step.name)
            conn.execute("COMMIT")
        except BaseException:
            rollback(conn)
            raise
