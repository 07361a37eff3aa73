"""The request history in SQLite: what was asked, of which model, how fast.

`UsageStore` keeps one row per finished request (`request_history`): the
request's `core.record.RequestSummary`, one column per field
(store/record_columns.py), metadata only, never a body or a header other
than the user agent. It answers the Requests page (`recent`),
and the Usage page and `lmbridge usage` with aggregates computed in SQL.
The points it returns and the definitions they share (model, client,
outcome, TTFT, tokens/s) are in store/usage_types.py.

Time: `received` is epoch seconds; every aggregate takes a range
`since <= received < until` in epoch seconds and buckets by LOCAL day or
hour, as the user reads a chart. `start_of_days(n)` gives the `since` of the
last n whole days.
"""

from __future__ import annotations

import functools
import math
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from lmbridge.core.record import RequestSummary
from lmbridge.store.db import Database
from lmbridge.store.record_columns import HISTORY
from lmbridge.store.usage_types import (
    Bucket,
    CountPoint,
    GroupBy,
    RequestStats,
    SavedPoint,
    TokenPoint,
)

# Rows per write transaction, so that other database work interleaves.
INSERT_CHUNK = 500

# Rows per INSERT statement, their parameters under SQLite's oldest limit
# of 999. One statement for many rows, not executemany: sqlite3 lets go of
# the GIL around each statement's step and takes it back after, and while
# the event loop is busy taking it back waits for the loop to let go. Row
# by row, a batch of 200 cost 400 such hand-overs, and the writer thread
# fell behind a busy proxy (3 batches in 2 s, against 22 this way, in
# a test loop); each hand-over costs the loop too.
_ROWS_PER_INSERT = max(1, 999 // len(HISTORY.names))
# Session keys counted per statement: 3 parameters each, under SQLite's
# oldest limit of 999.
_KEYS_PER_QUERY = 300

_OUTCOME = """CASE
    WHEN client_gone THEN 'gone'
    WHEN status >= 500 THEN '5xx'
    WHEN status >= 400 THEN '4xx'
    WHEN error IS NOT NULL THEN 'broken'
    ELSE 'ok' END"""
_ERRORS = "('4xx', '5xx', 'broken')"
_BUCKETS: dict[Bucket, str] = {
    "day": "date({t}, 'unixepoch', 'localtime')",
    "hour": "strftime('%Y-%m-%d %H:00', {t}, 'unixepoch', 'localtime')",
    "all": "''",
}
_KEYS: dict[GroupBy | None, str] = {
    "model": "COALESCE(NULLIF(target, ''), model)",
    "client": "client_name",
    None: "''",
}


@functools.cache
def _insert_sql(rows: int) -> str:
    return HISTORY.insert_sql("request_history", rows)


def _insert(conn: sqlite3.Connection, chunk: list[tuple[Any, ...]]) -> None:
    for start in range(0, len(chunk), _ROWS_PER_INSERT):
        rows = chunk[start : start + _ROWS_PER_INSERT]
        conn.execute(_insert_sql(len(rows)), [value for row in rows for value in row])


def _range(since: float, until: float | None) -> tuple[float, float]:
    return since, math.inf if until is None else until


def _stats_sql(bucket: Bucket, by: GroupBy | None) -> str:
    b, k = _BUCKETS[bucket].format(t="received"), _KEYS[by]
    windows = "PARTITION BY b, k"
    return f"""
WITH s AS (
    SELECT {b} AS b, {k} AS k, tokens_in, tokens_out, stream, first_token,
           done, {_OUTCOME} AS outcome, cached_tokens, kept_tokens
    FROM request_history WHERE received >= ? AND received < ?
), v AS (
    SELECT b, k, tokens_in, tokens_out, outcome, cached_tokens, kept_tokens,
        CASE WHEN stream AND outcome = 'ok' THEN first_token END AS ttft,
        CASE WHEN stream AND outcome = 'ok' AND tokens_out > 1
                  AND done > first_token
             THEN tokens_out / (done - first_token) END AS tps
    FROM s
), r AS (
    SELECT *,
        ROW_NUMBER() OVER ({windows} ORDER BY ttft IS NULL, ttft) AS ttft_rank,
        COUNT(ttft) OVER ({windows}) AS ttft_n,
        ROW_NUMBER() OVER ({windows} ORDER BY tps IS NULL, tps) AS tps_rank,
        COUNT(tps) OVER ({windows}) AS tps_n
    FROM v
)
SELECT b, k, COUNT(*), SUM(tokens_in), SUM(tokens_out),
    SUM(outcome IN {_ERRORS}), SUM(outcome = 'gone'),
    MAX(ttft_n), AVG(ttft),
    MIN(CASE WHEN ttft_rank >= 0.5 * ttft_n THEN ttft END),
    MIN(CASE WHEN ttft_rank >= 0.9 * ttft_n THEN ttft END),
    MAX(tps_n), AVG(tps),
    MIN(CASE WHEN tps_rank >= 0.5 * tps_n THEN tps END),
    MIN(CASE WHEN tps_rank >= 0.9 * tps_n THEN tps END),
    SUM(cached_tokens),
    SUM(CASE WHEN cached_tokens IS NOT NULL THEN tokens_in END),
    SUM(kept_tokens),
    SUM(CASE WHEN kept_tokens IS NOT NULL THEN tokens_in END)
FROM r GROUP BY b, k ORDER BY b, COUNT(*) DESC, k"""


def _stats(row: tuple[Any, ...]) -> RequestStats:
    return RequestStats(
        bucket=row[0],
        key=row[1],
        requests=row[2],
        tokens_in=row[3],
        tokens_out=row[4],
        errors=row[5],
        gone=row[6],
        ttft_samples=row[7],
        ttft_avg=row[8],
        ttft_p50=row[9],
        ttft_p90=row[10],
        tps_samples=row[11],
        tps_avg=row[12],
        tps_p50=row[13],
        tps_p90=row[14],
        cached_tokens=row[15],
        cache_reported_in=row[16],
        kept_tokens=row[17],
        kept_reported_in=row[18],
    )


class UsageStore:
    """The request history on the shared database: write, prune, query.

    Every method needs the database open and raises `LMBridgeError`
    otherwise (or when SQLite fails).
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    # ------------------------------------------------------------ writes

    async def add(self, records: Sequence[RequestSummary]) -> int:
        """Keep the metadata of finished `records`; the number of rows added."""
        rows = [HISTORY.row(r) for r in records]

        for start in range(0, len(rows), INSERT_CHUNK):
            chunk = rows[start : start + INSERT_CHUNK]
            await self.db.transaction(functools.partial(_insert, chunk=chunk))
        return len(rows)

    async def prune(self, older_than: float) -> int:
        """Delete requests received before `older_than` (epoch s); how many."""
        return await self.db.execute(
            "DELETE FROM request_history WHERE received < ?", (older_than,)
        )

    # ------------------------------------------------------------ history

    async def recent(
        self,
        limit: int = 100,
        before: int | None = None,
        *,
        received_before: float | None = None,
    ) -> list[RequestSummary]:
        """The last `limit` requests stored, newest first.

        Page back with `before=` the `id` of the oldest one shown. With
        `received_before`, only requests received before that time: the GUI
        passes its start time, so history and its live log do not overlap.
        """
        where: list[str] = []
        params: list[Any] = []
        if before is not None:
            where.append("id < ?")
            params.append(before)
        if received_before is not None:
            where.append("received < ?")
            params.append(received_before)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = await self.db.fetchall(
            f"SELECT {HISTORY.select} FROM request_history{clause}"
            " ORDER BY id DESC LIMIT ?",
            (*params, max(limit, 0)),
        )
        return [HISTORY.read(r) for r in rows]

    async def count(self, since: float = 0.0, until: float | None = None) -> int:
        """How many requests were received in the range."""
        row = await self.db.fetchone(
            "SELECT COUNT(*) FROM request_history WHERE received >= ? AND received < ?",
            _range(since, until),
        )
        return int(row[0]) if row else 0

    async def session_counts(
        self, since: Mapping[str, float], until: float | None = None
    ) -> dict[str, int]:
        """How many requests the history holds of each session key in
        `since`, received at or after the time it maps the key to (0.0: all
        of them) and before `until`; 0 for a key with none.

        The Sessions page's Turns of sessions without a chain. Keys are
        matched exactly (a subagent's chain key is a key of its own). One
        indexed range count per key (`request_history_session`), however
        long the history; all in one read transaction.
        """
        keys = list(since)
        end = math.inf if until is None else until

        def counts(conn: sqlite3.Connection) -> dict[str, int]:
            found: dict[str, int] = {}
            for first in range(0, len(keys), _KEYS_PER_QUERY):
                chunk = keys[first : first + _KEYS_PER_QUERY]
                values = ", ".join("(?, ?, ?)" for _ in chunk)
                params: list[Any] = []
                for n, key in enumerate(chunk):
                    params += (n, key, float(since[key]))
                rows = conn.execute(
                    f"""WITH k(n, key, since) AS (VALUES {values})
                    SELECT k.n, (
                        SELECT COUNT(*) FROM request_history AS h
                        WHERE h.session_key = k.key AND h.received >= k.since
                            AND h.received < ?
                    ) FROM k""",
                    (*params, end),
                ).fetchall()
                found.update((chunk[n], int(count)) for n, count in rows)
            return found

        return await self.db.read(counts) if keys else {}

    # ------------------------------------------------------------ aggregates

    async def tokens(
        self,
        since: float,
        until: float | None = None,
        *,
        by: GroupBy | None = "model",
        bucket: Bucket = "day",
    ) -> list[TokenPoint]:
        """Requests and tokens in/out per bucket and key.

        Sorted by bucket, then by tokens (most first) within a bucket.
        """
        b, k = _BUCKETS[bucket].format(t="received"), _KEYS[by]
        rows = await self.db.fetchall(
            f"SELECT {b} AS b, {k} AS k, COUNT(*), SUM(tokens_in), SUM(tokens_out)"
            " FROM request_history WHERE received >= ? AND received < ?"
            " GROUP BY b, k ORDER BY b, SUM(tokens_in) + SUM(tokens_out) DESC, k",
            _range(since, until),
        )
        return [
            TokenPoint(
                bucket=r[0], key=r[1], requests=r[2], tokens_in=r[3], tokens_out=r[4]
            )
            for r in rows
        ]

    async def stats(
        self,
        since: float,
        until: float | None = None,
        *,
        by: GroupBy | None = None,
        bucket: Bucket = "day",
    ) -> list[RequestStats]:
        """Counts, tokens, errors, TTFT and tokens/s per bucket and key.

        The chart of speed over time is `stats(since, bucket="day")` (or
        "hour") drawn from `ttft_p50`/`tps_p50`, with p90 as a band; the
        table of `lmbridge usage` is `stats(since, by="model", bucket="all")`.
        Sorted by bucket, then by requests (most first).
        """
        rows = await self.db.fetchall(_stats_sql(bucket, by), _range(since, until))
        return [_stats(r) for r in rows]

    async def outcomes(
        self,
        since: float,
        until: float | None = None,
        *,
        bucket: Bucket = "day",
        errors_only: bool = False,
    ) -> list[CountPoint]:
        """Requests per bucket and outcome ("ok", "4xx", "5xx", "broken", "gone").

        With `errors_only`, just 4xx, 5xx and broken: the errors-per-day
        chart. Sorted by bucket, then outcome.
        """
        b = _BUCKETS[bucket].format(t="received")
        having = f" HAVING o IN {_ERRORS}" if errors_only else ""
        rows = await self.db.fetchall(
            f"SELECT {b} AS b, {_OUTCOME} AS o, COUNT(*) FROM request_history"
            f" WHERE received >= ? AND received < ? GROUP BY b, o{having}"
            " ORDER BY b, o",
            _range(since, until),
        )
        return [CountPoint(bucket=r[0], key=r[1], value=r[2]) for r in rows]

    async def bytes_saved(
        self,
        since: float,
        until: float | None = None,
        *,
        by: GroupBy | None = None,
        bucket: Bucket = "day",
    ) -> list[SavedPoint]:
        """Bytes that sessions sent and saved, by when they were last active.

        Read from the sessions table (store/sessions.py); a session counts
        in the bucket of its last request (see `SavedPoint`). The key is the
        session's model or client product, or "" with `by=None`.
        """
        b = _BUCKETS[bucket].format(t="last_seen")
        keys: dict[GroupBy | None, str] = {
            "model": "model",
            "client": "substr(w, 1, instr(w || '/', '/') - 1)",
            None: "''",
        }
        rows = await self.db.fetchall(
            f"""WITH s AS (
                SELECT last_seen, model, bytes_sent, bytes_saved,
                    substr(trim(client), 1, instr(trim(client) || ' ', ' ') - 1)
                        AS w
                FROM sessions WHERE last_seen >= ? AND last_seen < ?
            )
            SELECT {b} AS b, {keys[by]} AS k, COUNT(*), SUM(bytes_sent),
                SUM(bytes_saved)
            FROM s GROUP BY b, k ORDER BY b, SUM(bytes_saved) DESC, k""",
            _range(since, until),
        )
        return [
            SavedPoint(
                bucket=r[0], key=r[1], sessions=r[2], bytes_sent=r[3], bytes_saved=r[4]
            )
            for r in rows
        ]
