"""The request's record: one struct, its notes, and the history derived from it."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from lmbridge.core.events import Phase, RequestRecord
from lmbridge.core.record import Note, NoteKind, PrefixChange, RequestSummary
from lmbridge.server.requestlog import format_record
from lmbridge.store.db import FILENAME, Database
from lmbridge.store.migrations import MIGRATIONS, apply_pending
from lmbridge.store.record_columns import HISTORY, RecordColumns
from lmbridge.store.usage import UsageStore
from records import fresh_database, full_record


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with fresh_database(tmp_path) as database:
        yield database


def test_a_note_is_kept_once() -> None:
    record = RequestRecord()
    for _ in range(3):
        record.note(NoteKind.DROPPED, "dropped: tool web_search")
    record.note(NoteKind.SESSION, "dropped: tool web_search")  # another kind
    assert record.notes == (
        Note(NoteKind.DROPPED, "dropped: tool web_search"),
        Note(NoteKind.SESSION, "dropped: tool web_search"),
    )


def test_the_summary_is_frozen_and_the_live_record_is_not() -> None:
    record = full_record()
    summary = record.summary()
    assert type(summary) is RequestSummary
    with pytest.raises(AttributeError):
        summary.status = 500
    record.status = 500
    assert summary.status == 200
    again = RequestRecord.from_summary(summary)
    assert again.phase is Phase.FINISHED and again.id != summary.id
    assert again.summary() == msgspec.structs.replace(summary, id=again.id)


async def test_history_columns_are_the_record_fields(db: Database) -> None:
    # A field added to RequestSummary without its migration step fails here.
    rows = await db.fetchall("PRAGMA table_info(request_history)")
    columns = {row[1] for row in rows}
    fields = set(RequestSummary.__struct_fields__)
    assert columns == fields | {"client_name"}
    assert set(HISTORY.names) == columns - {"id"}


def test_a_new_field_is_a_new_column_without_other_edits() -> None:
    class WithMood(RequestSummary, kw_only=True):
        mood: str = ""
        moods: tuple[Note, ...] = ()

    columns = RecordColumns(WithMood)
    assert "mood" in columns.names and "mood" in columns.insert_sql("t")
    assert "moods" in columns.json
    conn = sqlite3.connect(":memory:")
    conn.execute(f"CREATE TABLE t (id INTEGER PRIMARY KEY, {', '.join(columns.names)})")
    record = WithMood(
        mood="cheerful",
        moods=(Note(NoteKind.OTHER, "sunny"),),
        prefix_change=PrefixChange.APPENDED,
    )
    conn.execute(columns.insert_sql("t"), columns.row(record))
    [row] = conn.execute(f"SELECT {columns.select} FROM t").fetchall()
    read = columns.read(row)
    assert isinstance(read, WithMood)
    assert read.mood == "cheerful" and read.moods == record.moods
    assert read.prefix_change is PrefixChange.APPENDED


async def test_every_field_round_trips_through_the_history(db: Database) -> None:
    store = UsageStore(db)
    record = full_record()
    await store.add([record])
    [stored] = await store.recent()
    assert stored == msgspec.structs.replace(record.summary(), id=stored.id)
    assert stored.kept_share == pytest.approx(10 / 1200)
    assert stored.new_tokens == 200


async def test_the_migration_keeps_every_row_of_the_previous_schema(
    tmp_path: Path,
) -> None:
    path = tmp_path / FILENAME
    before = [m.name for m in MIGRATIONS].index("request cache figures") + 1
    conn = sqlite3.connect(path, isolation_level=None)
    apply_pending(conn, path, MIGRATIONS[:before])
    old_columns = (
        "received, client, client_name, protocol, path, model, route, upstream,"
        " target, upstream_api, stream, status, error, client_gone,"
        " upstream_connected, first_token, done, tokens_in, tokens_out, bytes_in,"
        " bytes_out, upstream_bytes, session_key, notes, cached_tokens"
    )
    rows = [
        (1.0, "curl/8", "curl", "openai", "/v1/chat/completions", "m", "*",
         "lms", "qwen", "chat", 0, 200, None, 0, 0.1, 0.2, 0.3, 10, 5, 100,
         50, 90, None, "[]", None),
        (2.0, "claude-cli/1", "claude-cli", "anthropic", "/v1/messages", "c",
         "c*", "lms", "qwen", "responses", 1, 502, "boom", 0, 0.1, None, 0.4,
         300, 0, 200, 10, 150, "sess",
         '["session: chained, 4 earlier messages not resent",'
         ' "fallback a -> b (503)", "loading qwen", "something else"]', 120),
    ]  # fmt: skip
    marks = ", ".join("?" * 25)
    conn.executemany(
        f"INSERT INTO request_history ({old_columns}) VALUES ({marks})", rows
    )
    conn.close()

    database = Database(path)
    await database.open()
    try:
        stored = await UsageStore(database).recent()
    finally:
        await database.close()
    assert [s.received for s in stored] == [2.0, 1.0]
    chained, plain = stored
    assert (plain.client, plain.target, plain.tokens_in, plain.notes) == (
        "curl/8",
        "qwen",
        10,
        (),
    )
    assert plain.cached_tokens is None and plain.chain_turn is None
    assert plain.prefix_change is None and plain.error_kind == ""
    assert chained.stream and chained.status == 502 and chained.error == "boom"
    assert chained.session_key == "sess" and chained.cached_tokens == 120
    assert chained.notes == (
        Note(NoteKind.SESSION, "session: chained, 4 earlier messages not resent"),
        Note(NoteKind.FALLBACK, "fallback a -> b (503)"),
        Note(NoteKind.LOAD, "loading qwen"),
        Note(NoteKind.OTHER, "something else"),
    )


def test_the_request_log_line_shows_notes_and_prefix_reuse() -> None:
    line = format_record(full_record())
    assert "[fallback a -> b (503); the tools changed]" in line
    assert "cache=83%" in line
    assert "turn=4 kept=1% tools" in line
