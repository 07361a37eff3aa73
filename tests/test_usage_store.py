"""The request history: rows, retention and the aggregates the charts draw."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from lmbridge.core import errors
from lmbridge.core.events import Phase, RequestRecord
from lmbridge.core.record import Note, NoteKind
from lmbridge.core.sessions import SessionState
from lmbridge.store.db import Database
from lmbridge.store.migrations import MIGRATIONS
from lmbridge.store.record_columns import ERROR_CAP
from lmbridge.store.sessions import SqliteSessionStore
from lmbridge.store.usage import UsageStore
from lmbridge.store.usage_types import (
    RequestStats,
    client_name,
    series,
    start_of_days,
)
from records import finished, fresh_database, full_record


def at(day: int, hour: int = 12, minute: int = 0) -> float:
    """Epoch seconds of a LOCAL time in January 2025 (buckets are local)."""
    return datetime.datetime(2025, 1, day, hour, minute).timestamp()


def streamed(
    received: float,
    target: str,
    *,
    ttft: float,
    tokens_out: int,
    gen: float = 1.0,
    **fields: object,
) -> RequestRecord:
    """A successful streamed request: first token after `ttft`, `gen` s of output."""
    defaults: dict[str, object] = {
        "client": "claude-cli/1.0.3 (external, cli)",
        "protocol": "anthropic",
        "model": "claude-sonnet-4-6",
        "upstream": "local",
        "status": 200,
        "tokens_in": 100,
    }
    return finished(
        received,
        **{
            **defaults,
            **fields,
            "target": target,
            "stream": True,
            "first_token": ttft,
            "done": ttft + gen,
            "tokens_out": tokens_out,
        },
    )


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with fresh_database(tmp_path) as database:
        yield database


@pytest.fixture
def store(db: Database) -> UsageStore:
    return UsageStore(db)


async def test_the_migration_adds_the_table_and_time_indexes(db: Database) -> None:
    assert "request history" in [m.name for m in MIGRATIONS]
    assert await db.schema_version() == len(MIGRATIONS)
    indexes = {
        r[0]
        for r in await db.fetchall("SELECT name FROM sqlite_master WHERE type='index'")
    }
    assert {"request_history_received", "sessions_last_seen"} <= indexes
    plan = await db.fetchall(
        "EXPLAIN QUERY PLAN SELECT COUNT(*) FROM request_history WHERE received >= ?",
        (0.0,),
    )
    assert any("request_history_received" in str(row) for row in plan)


async def test_records_round_trip_without_bodies_or_headers(
    store: UsageStore, db: Database
) -> None:
    """Every field comes back (test_request_record checks each one); long
    notes and errors are capped, bodies and headers are never stored."""
    notes = (
        Note(NoteKind.FALLBACK, "fell back to azure"),
        Note(NoteKind.OTHER, "x" * 1000),
    )
    record = full_record(
        notes=notes,
        error="E" * 2000,
        capture=True,
        request_headers={"Authorization": "Bearer SECRET-HEADER"},
        request_body="SECRET-REQUEST-BODY",
        response_body="SECRET-RESPONSE-BODY",
    )
    assert await store.add([record]) == 1
    [stored] = await store.recent()
    assert stored.notes[0] == notes[0]
    assert len(stored.notes[1].text) == 200
    assert stored.error is not None and len(stored.error) == ERROR_CAP
    capped = {"notes": stored.notes, "error": stored.error, "id": stored.id}
    assert stored == msgspec.structs.replace(record.summary(), **capped)

    rows = await db.fetchall("SELECT * FROM request_history")
    assert "SECRET" not in repr(rows)

    again = RequestRecord.from_summary(stored)
    assert again.phase is Phase.FINISHED
    assert again.target == record.target and again.notes == stored.notes
    assert again.request_body == "" and again.request_headers == {}
    assert again.id != record.id


async def test_a_batch_of_many_statements_keeps_every_row_and_its_order(
    store: UsageStore,
) -> None:
    # 75 rows: several multi-row INSERTs (under 999 parameters each) and a
    # shorter last one; full records beside default ones (None, booleans).
    records = [
        full_record(path=f"/{i}", received=at(1) + i)
        if i % 2
        else finished(at(1) + i, path=f"/{i}")
        for i in range(75)
    ]
    assert await store.add(records) == 75
    stored = await store.recent(100)
    assert [r.path for r in stored] == [f"/{i}" for i in reversed(range(75))]
    ids = [r.id for r in stored]
    assert ids == sorted(ids, reverse=True)
    for kept, record in zip(reversed(stored), records, strict=True):
        assert kept == msgspec.structs.replace(record.summary(), id=kept.id)


async def test_recent_pages_back_newest_first(store: UsageStore) -> None:
    await store.add([finished(at(1, minute=i), path=f"/{i}") for i in range(5)])
    first = await store.recent(2)
    assert [r.path for r in first] == ["/4", "/3"]
    second = await store.recent(2, before=first[-1].id)
    assert [r.path for r in second] == ["/2", "/1"]
    older = await store.recent(10, received_before=at(1, minute=2))
    assert [r.path for r in older] == ["/1", "/0"]
    assert await store.recent(0) == []


async def test_prune_deletes_what_is_older(store: UsageStore) -> None:
    await store.add([finished(at(1)), finished(at(2)), finished(at(3))])
    assert await store.prune(at(2)) == 1
    assert await store.count() == 2
    assert await store.count(at(3)) == 1
    assert await store.prune(at(1)) == 0


async def test_tokens_per_day_by_model_and_by_client(store: UsageStore) -> None:
    await store.add(
        [
            streamed(at(1), "qwen3-8b", ttft=0.2, tokens_out=10),
            streamed(at(1), "qwen3-8b", ttft=0.2, tokens_out=20, client="Codex/0.1"),
            streamed(at(1), "gpt-4o", ttft=0.2, tokens_out=500),
            streamed(at(2), "qwen3-8b", ttft=0.2, tokens_out=5),
            # failed before routing: counted under the model asked
            finished(at(2), model="no-such-model", status=404, error="no route"),
            finished(at(9), target="later", tokens_out=1),
        ]
    )
    points = await store.tokens(at(1, 0), at(3, 0))
    assert [
        (p.bucket, p.key, p.requests, p.tokens_in, p.tokens_out) for p in points
    ] == [
        ("2025-01-01", "gpt-4o", 1, 100, 500),
        ("2025-01-01", "qwen3-8b", 2, 200, 30),
        ("2025-01-02", "qwen3-8b", 1, 100, 5),
        ("2025-01-02", "no-such-model", 1, 0, 0),
    ]
    by_client = await store.tokens(at(1, 0), at(2, 0), by="client")
    assert [(p.key, p.requests, p.tokens_out) for p in by_client] == [
        ("claude-cli", 2, 510),
        ("Codex", 1, 20),
    ]
    assert series(points, "tokens_out") == {
        "gpt-4o": [("2025-01-01", 500)],
        "qwen3-8b": [("2025-01-01", 30), ("2025-01-02", 5)],
        "no-such-model": [("2025-01-02", 0)],
    }
    hourly = await store.tokens(at(1, 0), at(2, 0), by=None, bucket="hour")
    assert [(p.bucket, p.key, p.requests) for p in hourly] == [
        ("2025-01-01 12:00", "", 3)
    ]


async def test_speed_percentiles_come_from_good_streamed_requests(
    store: UsageStore,
) -> None:
    # TTFT 0.1 .. 1.0 s; 50 tokens over 1 s, 2 s, ... : 50, 25, 16.7, ...
    good = [
        streamed(at(5, 10), "m", ttft=0.1 * i, tokens_out=50, gen=float(i))
        for i in range(1, 11)
    ]
    ignored = [
        # a whole (unstreamed) answer: its first token is its total time
        finished(at(5, 10), target="m", status=200, first_token=9.0, done=9.0),
        # a failed stream and a client gone away
        streamed(at(5, 10), "m", ttft=9.0, tokens_out=50, status=500),
        streamed(at(5, 10), "m", ttft=9.0, tokens_out=50, client_gone=True),
        # one token says nothing about a rate (but has a TTFT)
        streamed(at(5, 10), "m", ttft=0.05, tokens_out=1),
    ]
    await store.add(good + ignored)
    [day] = await store.stats(at(5, 0), by="model")
    assert (day.bucket, day.key, day.requests) == ("2025-01-05", "m", 14)
    assert (day.errors, day.gone) == (1, 1)
    assert day.ttft_samples == 11
    # nearest rank over 0.05, 0.1 .. 1.0: the 6th and the 10th of 11
    assert day.ttft_p50 == pytest.approx(0.5)
    assert day.ttft_p90 == pytest.approx(0.9)
    assert day.ttft_avg == pytest.approx((5.5 + 0.05) / 11)
    assert day.tps_samples == 10
    # 50/10 .. 50/1 tokens/s, ascending: the 5th and the 9th of 10
    assert day.tps_p50 == pytest.approx(50 / 6)
    assert day.tps_p90 == pytest.approx(25.0)
    assert day.tps_avg == pytest.approx(sum(50 / i for i in range(1, 11)) / 10)
    [whole] = await store.stats(at(5, 0), bucket="all")
    assert (whole.bucket, whole.key, whole.requests) == ("", "", 14)
    assert whole.ttft_p50 == day.ttft_p50


async def test_stats_without_samples_are_none(store: UsageStore) -> None:
    await store.add([finished(at(6), target="m", status=200, tokens_out=3)])
    assert await store.stats(at(6, 0), bucket="all") == [
        RequestStats(
            bucket="",
            key="",
            requests=1,
            tokens_in=0,
            tokens_out=3,
            errors=0,
            gone=0,
            ttft_samples=0,
            ttft_avg=None,
            ttft_p50=None,
            ttft_p90=None,
            tps_samples=0,
            tps_avg=None,
            tps_p50=None,
            tps_p90=None,
        )
    ]
    assert await store.stats(at(7, 0)) == []


async def test_outcomes_per_day(store: UsageStore) -> None:
    await store.add(
        [
            finished(at(1), status=200),
            finished(at(1), status=200),
            finished(at(1), status=429, error="rate limited"),
            finished(at(2), status=200, error="the upstream closed the stream"),
            finished(at(2), status=503, error="down"),
            finished(at(2), status=200, client_gone=True, error="the client went away"),
        ]
    )
    points = await store.outcomes(at(1, 0))
    assert [(p.bucket, p.key, p.value) for p in points] == [
        ("2025-01-01", "4xx", 1),
        ("2025-01-01", "ok", 2),
        ("2025-01-02", "5xx", 1),
        ("2025-01-02", "broken", 1),
        ("2025-01-02", "gone", 1),
    ]
    errors_only = await store.outcomes(at(1, 0), errors_only=True)
    assert [(p.bucket, p.key) for p in errors_only] == [
        ("2025-01-01", "4xx"),
        ("2025-01-02", "5xx"),
        ("2025-01-02", "broken"),
    ]


async def test_bytes_saved_by_sessions_per_day(store: UsageStore, db: Database) -> None:
    sessions = SqliteSessionStore(db)
    for key, model, client, saved, day in [
        ("a", "qwen3-8b", "claude-cli/1.0 (cli)", 1000, 1),
        ("b", "qwen3-8b", "Codex/0.1", 500, 1),
        ("c", "gpt-4o", "claude-cli/1.1", 70, 2),
    ]:
        await sessions.save(
            SessionState(
                key=key,
                upstream="local",
                model=model,
                client=client,
                bytes_sent=10,
                bytes_saved=saved,
                first_seen=at(1, 8),
                last_seen=at(day),
            )
        )
    total = await store.bytes_saved(at(1, 0))
    assert [(p.bucket, p.sessions, p.bytes_sent, p.bytes_saved) for p in total] == [
        ("2025-01-01", 2, 20, 1500),
        ("2025-01-02", 1, 10, 70),
    ]
    by_client = await store.bytes_saved(at(1, 0), by="client", bucket="all")
    assert [(p.key, p.bytes_saved) for p in by_client] == [
        ("claude-cli", 1070),
        ("Codex", 500),
    ]
    by_model = await store.bytes_saved(at(2, 0), by="model")
    assert [(p.key, p.bytes_saved) for p in by_model] == [("gpt-4o", 70)]


async def test_a_closed_database_refuses(tmp_path: Path) -> None:
    store = UsageStore(Database(tmp_path / "x.db"))
    with pytest.raises(errors.LMBridgeError, match="not open"):
        await store.add([finished(at(1))])
    with pytest.raises(errors.LMBridgeError, match="not open"):
        await store.stats(0.0)


def test_client_names_and_day_starts() -> None:
    assert client_name("claude-cli/1.0.3 (external, cli)") == "claude-cli"
    assert client_name("OpenAI/Python 1.50.0") == "OpenAI"
    assert client_name("curl") == "curl"
    assert client_name("") == ""
    noon = at(10)
    assert start_of_days(1, noon) == at(10, 0)
    assert start_of_days(7, noon) == at(4, 0)
    assert start_of_days(0, noon) == at(10, 0)
