"""UsageRecorder: finished requests reach the history in batches, off the path."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from lmbridge import config
from lmbridge.core.events import (
    REQUEST_FINISHED,
    REQUEST_STARTED,
    EventBus,
    RequestRecord,
)
from lmbridge.store.db import FILENAME, Database
from lmbridge.store.usage import INSERT_CHUNK, UsageStore
from lmbridge.store.usage_recorder import DAY, UsageRecorder
from support import RunningProxy, oai

RECORDER_LOG = "lmbridge.store.usage_recorder"


def finished(**fields: object) -> RequestRecord:
    record = RequestRecord(**fields)  # type: ignore[arg-type]
    record.mark_done()
    return record


async def eventually_count(store: UsageStore, n: int, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while (count := await store.count()) < n:
        if time.monotonic() > deadline:
            raise AssertionError(f"{count} of {n} requests stored")
        await asyncio.sleep(0.02)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(tmp_path / "data" / FILENAME)
    await database.open()
    yield database
    await database.close()


@pytest.fixture
def store(db: Database) -> UsageStore:
    return UsageStore(db)


async def test_the_callback_only_queues_and_the_task_writes(
    store: UsageStore,
) -> None:
    bus = EventBus()
    recorder = UsageRecorder(bus, store, config.UsageSettings(), flush_interval=0.05)
    recorder.start()
    try:
        bus.publish(REQUEST_STARTED, RequestRecord(path="/started-only"))
        bus.publish(REQUEST_FINISHED, finished(path="/v1/messages", status=200))
        bus.publish(REQUEST_FINISHED, "not a record")
        # Synchronously after publish: queued, nothing written yet.
        assert recorder.pending == 1
        await eventually_count(store, 1)
        assert recorder.pending == 0
        [stored] = await store.recent()
        assert stored.path == "/v1/messages" and stored.status == 200
    finally:
        await recorder.close()


async def test_close_writes_what_is_queued_and_unsubscribes(
    store: UsageStore,
) -> None:
    bus = EventBus()
    recorder = UsageRecorder(bus, store, config.UsageSettings(), flush_interval=60)
    recorder.start()
    await asyncio.sleep(0.05)  # the first prune has run
    for i in range(3):
        bus.publish(REQUEST_FINISHED, finished(path=f"/{i}"))
    await asyncio.sleep(0.05)
    assert await store.count() == 0
    await recorder.close()
    assert await store.count() == 3
    assert not bus.has_subscribers(REQUEST_FINISHED)
    bus.publish(REQUEST_FINISHED, finished())
    assert recorder.pending == 0
    await recorder.close()  # twice is fine


async def test_a_full_batch_is_written_before_the_interval(store: UsageStore) -> None:
    bus = EventBus()
    recorder = UsageRecorder(
        bus, store, config.UsageSettings(), flush_interval=60, batch_size=5
    )
    recorder.start()
    try:
        for _ in range(5):
            bus.publish(REQUEST_FINISHED, finished())
        await eventually_count(store, 5, timeout=1.0)
    finally:
        await recorder.close()


async def test_nothing_is_kept_while_recording_is_off(store: UsageStore) -> None:
    bus = EventBus()
    settings = config.UsageSettings(record=False)
    recorder = UsageRecorder(bus, store, settings, flush_interval=0.02)
    recorder.start()
    bus.publish(REQUEST_FINISHED, finished())
    settings.record = True  # read on every record
    bus.publish(REQUEST_FINISHED, finished(path="/kept"))
    await recorder.close()
    assert [r.path for r in await store.recent()] == ["/kept"]


async def test_history_past_the_retention_is_pruned_at_start(
    store: UsageStore,
) -> None:
    now = time.time()
    await store.add(
        [
            finished(received=now - 8 * DAY, path="/old"),
            finished(received=now - 6 * DAY, path="/kept"),
        ]
    )
    recorder = UsageRecorder(EventBus(), store, config.UsageSettings(retention_days=7))
    recorder.start()
    try:
        deadline = time.monotonic() + 3
        while await store.count() > 1:
            assert time.monotonic() < deadline, "not pruned"
            await asyncio.sleep(0.02)
        assert [r.path for r in await store.recent()] == ["/kept"]
    finally:
        await recorder.close()


async def test_prunes_again_after_the_interval(store: UsageStore) -> None:
    recorder = UsageRecorder(
        EventBus(),
        store,
        config.UsageSettings(retention_days=1),
        flush_interval=0.02,
        prune_interval=0.05,
    )
    recorder.start()
    try:
        await asyncio.sleep(0.05)
        await store.add([finished(received=time.time() - 2 * DAY)])
        deadline = time.monotonic() + 3
        while await store.count():
            assert time.monotonic() < deadline, "not pruned"
            await asyncio.sleep(0.02)
    finally:
        await recorder.close()


async def test_a_closed_database_costs_records_and_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(tmp_path / FILENAME)
    store = UsageStore(db)
    bus = EventBus()
    recorder = UsageRecorder(bus, store, config.UsageSettings(), flush_interval=0.02)
    with caplog.at_level(logging.DEBUG, logger=RECORDER_LOG):
        recorder.start()
        for _ in range(3):
            bus.publish(REQUEST_FINISHED, finished())
            await asyncio.sleep(0.05)
        # Dropped, not hoarded (waited for: a loaded machine runs the
        # flushes late, not fewer of them).
        deadline = time.monotonic() + 5
        while recorder.pending:
            assert time.monotonic() < deadline, "the records are hoarded"
            await asyncio.sleep(0.02)
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1
        assert "not open" in warnings[0].getMessage()

        await db.open()
        try:
            bus.publish(REQUEST_FINISHED, finished(path="/after"))
            await eventually_count(store, 1)
            assert any("writing again" in r.getMessage() for r in caplog.records)
            await recorder.close()
            assert [r.path for r in await store.recent()] == ["/after"]
        finally:
            await db.close()


async def test_a_batch_that_fails_part_way_is_kept_once(
    store: UsageStore, db: Database, expected_errors: Callable[[str], None]
) -> None:
    # More records than one transaction takes: the first chunk is written,
    # the second refused (a trigger of SQLite's own); the next flush writes
    # only what was not kept, so nothing is lost and nothing is doubled.
    await db.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON request_history"
        " WHEN NEW.path = '/refused' BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    expected_errors("failed: refused")  # the database's log of its fault
    bus = EventBus()
    recorder = UsageRecorder(bus, store, config.UsageSettings(), flush_interval=60)
    paths = [f"/{i}" for i in range(INSERT_CHUNK + 20)]
    paths[INSERT_CHUNK + 5] = "/refused"
    for path in paths:
        recorder._on_finished(REQUEST_FINISHED, finished(path=path))
    assert await recorder.flush() == INSERT_CHUNK
    assert await store.count() == INSERT_CHUNK
    assert recorder.pending == 20
    await db.execute("DROP TRIGGER refuse")
    assert await recorder.flush() == 20
    kept = [r.path for r in await store.recent(len(paths) + 10)]
    assert kept == paths[::-1]
    await recorder.close()


async def test_a_full_queue_drops_and_says_so(
    store: UsageStore, caplog: pytest.LogCaptureFixture
) -> None:
    bus = EventBus()
    recorder = UsageRecorder(
        bus, store, config.UsageSettings(), flush_interval=60, max_pending=2
    )
    for _ in range(5):
        recorder._on_finished(REQUEST_FINISHED, finished())
    assert recorder.pending == 2
    with caplog.at_level(logging.WARNING, logger=RECORDER_LOG):
        assert await recorder.flush() == 2
    assert "3 requests not kept" in caplog.text
    await recorder.close()


async def test_requests_through_the_proxy_are_kept(
    proxy: RunningProxy, store: UsageStore
) -> None:
    recorder = UsageRecorder(
        proxy.bus, store, config.UsageSettings(), flush_interval=0.02
    )
    recorder.start()
    try:
        client = oai(proxy)
        stream = await client.chat.completions.create(
            model="claude-haiku",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        async for _chunk in stream:
            pass
        await client.close()
        await proxy.record()
        await eventually_count(store, 1)
    finally:
        await recorder.close()
    [stored] = await store.recent()
    assert stored.path == "/v1/chat/completions" and stored.status == 200
    assert (stored.upstream, stored.target) == ("fake", "fake-model")
    assert stored.stream and stored.tokens_out == 7
    assert stored.first_token is not None and stored.done is not None
    [stats] = await store.stats(0.0, bucket="all", by="model")
    assert (stats.key, stats.requests, stats.errors) == ("fake-model", 1, 0)
    assert stats.ttft_p50 == stored.first_token
