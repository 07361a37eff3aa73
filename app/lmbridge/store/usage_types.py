"""The shapes of the request history's aggregates: the chart points.

A stored request is a `core.record.RequestSummary`.

Every aggregate is a list of points with a `bucket` (a local-time day
"2025-01-31", an hour "2025-01-31 14:00", or "" for the whole range), a
`key` (a model, a client, a status class, or "" for everything) and named
values. `series()` turns such a list into one line per key, the shape a
chart draws.

Definitions shared by the queries (and by the GUI that will show them):

- model: the target model that ran, or the model asked when the request
  failed before routing.
- client: the product of the user agent ("claude-cli/1.0.3 (external)" is
  "claude-cli"); see `client_name`.
- outcome: "ok", "4xx", "5xx", "broken" (an error after a success status:
  the stream broke off) or "gone" (the client went away). Errors are 4xx,
  5xx and broken; a client going away is counted apart.
- TTFT: seconds from receiving the request to the first token, and output
  tokens/s: output tokens over the time from the first token to the end.
  Both are taken from successful STREAMED requests only (a whole answer
  arrives at once, so its "first token" is its total time). Tokens/s needs
  more than one output token. Percentiles are nearest-rank.
"""

from __future__ import annotations

import datetime
import functools
import time
from collections.abc import Iterable
from typing import Literal, Protocol

import msgspec

Bucket = Literal["day", "hour", "all"]
"""Time bucket of an aggregate: a local day, a local hour, or the whole range."""

GroupBy = Literal["model", "client"]
"""What an aggregate's `key` is; None where accepted means one key, ""."""


class TokenPoint(msgspec.Struct, frozen=True, kw_only=True):
    """Requests and tokens in one bucket for one key."""

    bucket: str
    key: str
    requests: int
    tokens_in: int
    tokens_out: int


class RequestStats(msgspec.Struct, frozen=True, kw_only=True):
    """Counts, tokens and speed in one bucket for one key.

    `errors` counts 4xx, 5xx and broken streams; `gone` the requests whose
    client went away. The TTFT (seconds) and tokens/s figures are None when
    the bucket has no sample (see the module docstring for which requests
    are samples).
    """

    bucket: str
    key: str
    requests: int
    tokens_in: int
    tokens_out: int
    errors: int
    gone: int
    ttft_samples: int
    ttft_avg: float | None
    ttft_p50: float | None
    ttft_p90: float | None
    tps_samples: int
    tps_avg: float | None
    tps_p50: float | None
    tps_p90: float | None
    # Prompt tokens served from the upstreams' caches, and the prompt tokens
    # of the requests whose upstream said (None when none did).
    cached_tokens: int | None = None
    cache_reported_in: int | None = None
    # Prompt tokens unchanged since their chain's previous request
    # (server/prefix.py), and the prompt tokens of the requests in a chain.
    kept_tokens: int | None = None
    kept_reported_in: int | None = None

    @property
    def cache_share(self) -> float | None:
        """The share (0..1) of prompt tokens served from cache, where known."""
        if self.cached_tokens is None or not self.cache_reported_in:
            return None
        return self.cached_tokens / self.cache_reported_in

    @property
    def kept_share(self) -> float | None:
        """The share (0..1) of chained requests' prompts kept from the turn before."""
        if self.kept_tokens is None or not self.kept_reported_in:
            return None
        return self.kept_tokens / self.kept_reported_in


class CountPoint(msgspec.Struct, frozen=True, kw_only=True):
    """A count in one bucket for one key (for example an outcome class)."""

    bucket: str
    key: str
    value: int


class SavedPoint(msgspec.Struct, frozen=True, kw_only=True):
    """What sessions sent and saved, by the bucket they were last active in.

    Session counters are totals over each session's life, so a long session
    counts wholly in the bucket of its last request.
    """

    bucket: str
    key: str
    sessions: int
    bytes_sent: int
    bytes_saved: int


class Point(Protocol):
    """Anything with a bucket and a key: every aggregate point above."""

    @property
    def bucket(self) -> str: ...

    @property
    def key(self) -> str: ...


def series(
    points: Iterable[Point], field: str
) -> dict[str, list[tuple[str, float | None]]]:
    """One line per key: `{key: [(bucket, value of field), ...]}`.

    For example `series(await store.tokens(since), "tokens_out")`. Buckets
    keep the order of `points` (the queries sort them by time); a bucket
    without requests for a key is absent, not zero.
    """
    lines: dict[str, list[tuple[str, float | None]]] = {}
    for point in points:
        value = getattr(point, field)
        lines.setdefault(point.key, []).append((point.bucket, value))
    return lines


@functools.lru_cache(maxsize=256)  # a history row each: few distinct agents
def client_name(user_agent: str) -> str:
    """The product of a user agent: "claude-cli/1.0.3 (external)" is "claude-cli"."""
    first = user_agent.strip().split(" ", 1)[0]
    return first.split("/", 1)[0][:80]


def start_of_days(days: int, now: float | None = None) -> float:
    """The local midnight that begins the last `days` days, today included.

    `start_of_days(1)` is the start of today, `start_of_days(7)` that of the
    day six days ago: the `since` of a chart of `days` whole day buckets.
    """
    today = datetime.date.fromtimestamp(time.time() if now is None else now)
    first = today - datetime.timedelta(days=max(days, 1) - 1)
    return datetime.datetime.combine(first, datetime.time()).timestamp()
