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

from typing import NamedTuple


class Migration(NamedTuple):
    """One schema step: a name for humans and the statements it runs."""

    name: str
    statements: tuple[str, ...]


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
]
