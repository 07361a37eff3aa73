"""What the Usage page draws, read from the request history.

`load_usage(store, days)` asks `UsageStore` for the last `days` whole local
days and returns plain lists, one value per day (every day present, zero
or None where nothing happened): tokens by model and by client, time to
first token in milliseconds and output tokens/s (median and p90), errors
by kind, the kilobytes that sessions saved, and per model the share of
prompt tokens served from the upstream's cache. `update_today(store, data)`
re-reads only today (finished requests change nothing before it) and puts
it in place of the last day: what the page does as requests finish. No Qt.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from lmbridge.store.usage import UsageStore
from lmbridge.store.usage_types import RequestStats, TokenPoint, start_of_days


def day_labels(days: int, now: float | None = None) -> list[str]:
    """The last `days` local days, oldest first, as "YYYY-MM-DD"."""
    today = datetime.date.fromtimestamp(time.time() if now is None else now)
    return [
        (today - datetime.timedelta(days=back)).isoformat()
        for back in range(max(days, 1) - 1, -1, -1)
    ]


Series = dict[str, list[float]]
Gaps = dict[str, list[float | None]]


@dataclass
class UsageData:
    """Per-day series for the charts, and per-day totals for the summary."""

    days: list[str]
    tokens_by_model: Series = field(default_factory=dict)
    tokens_by_client: Series = field(default_factory=dict)
    ttft_ms: Gaps = field(default_factory=dict)
    speed: Gaps = field(default_factory=dict)
    errors: Series = field(default_factory=dict)
    saved: Series = field(default_factory=dict)
    # Per model, the percentage of prompt tokens served from the upstream's
    # cache each day (None: no request whose upstream said).
    cache_share: Gaps = field(default_factory=dict)
    requests_per_day: list[int] = field(default_factory=list)
    tokens_per_day: list[int] = field(default_factory=list)
    errors_per_day: list[int] = field(default_factory=list)
    bytes_saved: int = 0

    @property
    def requests(self) -> int:
        return sum(self.requests_per_day)

    @property
    def tokens(self) -> int:
        return sum(self.tokens_per_day)

    @property
    def error_count(self) -> int:
        return sum(self.errors_per_day)

    @property
    def empty(self) -> bool:
        return self.requests == 0 and self.bytes_saved == 0


def _per_day(
    days: list[str], points: Iterable[tuple[str, str, float]]
) -> dict[str, list[float]]:
    index = {day: i for i, day in enumerate(days)}
    lines: dict[str, list[float]] = {}
    for day, key, value in points:
        if day in index:
            line = lines.setdefault(key, [0.0] * len(days))
            line[index[day]] += value
    return lines


def _tokens(days: list[str], points: list[TokenPoint]) -> dict[str, list[float]]:
    return _per_day(
        days, ((p.bucket, p.key, float(p.tokens_in + p.tokens_out)) for p in points)
    )


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


async def _requests(store: UsageStore, labels: list[str], since: float) -> UsageData:
    """Everything but what sessions saved, for the days of `labels`."""
    by_model = await store.tokens(since, by="model")
    by_client = await store.tokens(since, by="client")
    stats = await store.stats(since, bucket="day")
    outcomes = await store.outcomes(since, errors_only=True)
    n = len(labels)
    data = UsageData(
        days=labels,
        requests_per_day=[0] * n,
        tokens_per_day=[0] * n,
        errors_per_day=[0] * n,
    )
    data.tokens_by_model = _tokens(labels, by_model)
    data.tokens_by_client = {
        key or "(unknown)": line for key, line in _tokens(labels, by_client).items()
    }
    index = {day: i for i, day in enumerate(labels)}
    data.ttft_ms = {"median": [None] * n, "p90": [None] * n}
    data.speed = {"median": [None] * n, "p90": [None] * n}
    for point in stats:
        i = index.get(point.bucket)
        if i is None:
            continue
        data.ttft_ms["median"][i] = _ms(point.ttft_p50)
        data.ttft_ms["p90"][i] = _ms(point.ttft_p90)
        data.speed["median"][i] = point.tps_p50
        data.speed["p90"][i] = point.tps_p90
        data.requests_per_day[i] = point.requests
        data.tokens_per_day[i] = point.tokens_in + point.tokens_out
        data.errors_per_day[i] = point.errors
    data.errors = _per_day(
        labels, ((p.bucket, p.key, float(p.value)) for p in outcomes)
    )
    data.cache_share = _cache_share(
        labels, await store.stats(since, by="model", bucket="day")
    )
    return data


def _cache_share(days: list[str], points: list[RequestStats]) -> Gaps:
    """Per model, the share (%) of prompt tokens served from cache each day."""
    index = {day: i for i, day in enumerate(days)}
    lines: Gaps = {}
    for point in points:
        share, i = point.cache_share, index.get(point.bucket)
        if share is None or i is None:
            continue
        lines.setdefault(point.key, [None] * len(days))[i] = share * 100
    return lines


async def _saved(store: UsageStore, data: UsageData) -> None:
    """What sessions saved over all of `data`'s days (a session counts on
    the day it was last active, so a session going on today moves)."""
    points = await store.bytes_saved(start_of_days(len(data.days)))
    line = _per_day(
        data.days, ((p.bucket, "", float(p.bytes_saved)) for p in points)
    ).get("", [0.0] * len(data.days))
    data.saved = {"saved": [v / 1024 for v in line]}
    data.bytes_saved = sum(p.bytes_saved for p in points if p.bucket in data.days)


async def load_usage(
    store: UsageStore, days: int, now: float | None = None
) -> UsageData:
    """The last `days` days of the history, ready to draw."""
    data = await _requests(store, day_labels(days, now), start_of_days(days, now))
    await _saved(store, data)
    return data


def _put_last(series: Series, today: Series, days: int) -> None:
    """`today`'s one value per key as the last value of `series`."""
    for key, line in series.items():
        line[-1] = today.get(key, [0.0])[0]
    for key, (value,) in today.items():
        if key not in series:
            series[key] = [0.0] * (days - 1) + [value]


async def update_today(
    store: UsageStore, data: UsageData, now: float | None = None
) -> UsageData:
    """`data` with today read again; the whole range once the day changed."""
    labels = day_labels(1, now)
    if data.days[-1] != labels[0]:
        return await load_usage(store, len(data.days), now)
    today = await _requests(store, labels, start_of_days(1, now))
    n = len(data.days)
    for series, new in (
        (data.tokens_by_model, today.tokens_by_model),
        (data.tokens_by_client, today.tokens_by_client),
        (data.errors, today.errors),
    ):
        _put_last(series, new, n)
    for gaps, new_gaps in ((data.ttft_ms, today.ttft_ms), (data.speed, today.speed)):
        for key, line in gaps.items():
            line[-1] = new_gaps[key][0]
    for key, line in data.cache_share.items():
        line[-1] = today.cache_share.get(key, [None])[0]
    for key, (value,) in today.cache_share.items():
        if key not in data.cache_share:
            before: list[float | None] = [None] * (n - 1)
            data.cache_share[key] = [*before, value]
    data.requests_per_day[-1] = today.requests_per_day[0]
    data.tokens_per_day[-1] = today.tokens_per_day[0]
    data.errors_per_day[-1] = today.errors_per_day[0]
    await _saved(store, data)
    return data
