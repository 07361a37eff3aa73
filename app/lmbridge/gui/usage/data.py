"""What the Usage page draws, read from the request history in one go.

`load_usage(store, days)` asks `UsageStore` for the last `days` whole local
days and returns plain lists, one value per day (every day present, zero
or None where nothing happened): tokens by model and by client, time to
first token and output tokens/s (median and p90), errors by kind, and the
bytes that sessions saved. No Qt.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from lmbridge.store.usage import UsageStore
from lmbridge.store.usage_types import TokenPoint, start_of_days


def day_labels(days: int, now: float | None = None) -> list[str]:
    """The last `days` local days, oldest first, as "YYYY-MM-DD"."""
    today = datetime.date.fromtimestamp(time.time() if now is None else now)
    return [
        (today - datetime.timedelta(days=back)).isoformat()
        for back in range(max(days, 1) - 1, -1, -1)
    ]


@dataclass
class UsageData:
    """Per-day series for the charts, and the totals for the summary line."""

    days: list[str]
    tokens_by_model: dict[str, list[float]] = field(default_factory=dict)
    tokens_by_client: dict[str, list[float]] = field(default_factory=dict)
    ttft: dict[str, list[float | None]] = field(default_factory=dict)
    speed: dict[str, list[float | None]] = field(default_factory=dict)
    errors: dict[str, list[float]] = field(default_factory=dict)
    saved: dict[str, list[float]] = field(default_factory=dict)
    requests: int = 0
    tokens: int = 0
    error_count: int = 0
    bytes_saved: int = 0

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


async def load_usage(
    store: UsageStore, days: int, now: float | None = None
) -> UsageData:
    """The last `days` days of the history, ready to draw."""
    labels = day_labels(days, now)
    since = start_of_days(days, now)
    by_model = await store.tokens(since, by="model")
    by_client = await store.tokens(since, by="client")
    stats = await store.stats(since, bucket="day")
    outcomes = await store.outcomes(since, errors_only=True)
    saved = await store.bytes_saved(since)
    data = UsageData(days=labels)
    data.tokens_by_model = _tokens(labels, by_model)
    data.tokens_by_client = {
        key or "(unknown)": line for key, line in _tokens(labels, by_client).items()
    }
    index = {day: i for i, day in enumerate(labels)}
    ttft: dict[str, list[float | None]] = {
        "median": [None] * len(labels),
        "p90": [None] * len(labels),
    }
    speed: dict[str, list[float | None]] = {
        "median": [None] * len(labels),
        "p90": [None] * len(labels),
    }
    for point in stats:
        i = index.get(point.bucket)
        if i is None:
            continue
        ttft["median"][i] = point.ttft_p50
        ttft["p90"][i] = point.ttft_p90
        speed["median"][i] = point.tps_p50
        speed["p90"][i] = point.tps_p90
        data.requests += point.requests
        data.tokens += point.tokens_in + point.tokens_out
        data.error_count += point.errors
    data.ttft, data.speed = ttft, speed
    data.errors = _per_day(
        labels, ((p.bucket, p.key, float(p.value)) for p in outcomes)
    )
    data.saved = {
        "saved": [
            v / 1024
            for v in _per_day(
                labels, ((p.bucket, "", float(p.bytes_saved)) for p in saved)
            ).get("", [0.0] * len(labels))
        ]
    }
    data.bytes_saved = sum(p.bytes_saved for p in saved)
    return data
