"""Today's numbers for the overview and the tray: requests, tokens, errors,
median time to first token. Fed with finished `RequestRecord`s; no Qt."""

from __future__ import annotations

import datetime
import statistics
import time
from collections import deque
from collections.abc import Callable

from lmbridge.core.events import RequestRecord

# Time-to-first-token samples kept for the median (the most recent ones).
TTFT_SAMPLES = 5000


def is_error(record: RequestRecord) -> bool:
    """A request that failed on our side or upstream (not a client leaving)."""
    if record.client_gone:
        return False
    return record.status >= 400 or (record.error is not None and record.status == 0)


class TodayStats:
    """Counters for the current local day; they reset at midnight."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._ttfts: deque[float] = deque(maxlen=TTFT_SAMPLES)
        self._reset()

    def _reset(self) -> None:
        self.day = self._today()
        self.requests = 0
        self.errors = 0
        self.tokens_in = 0
        self.tokens_out = 0
        self._ttfts.clear()

    def _today(self) -> datetime.date:
        return datetime.date.fromtimestamp(self._clock())

    def _roll(self) -> None:
        if self._today() != self.day:
            self._reset()

    def add(self, record: RequestRecord) -> None:
        """Count one finished request."""
        self._roll()
        if datetime.date.fromtimestamp(record.received) != self.day:
            return
        self.requests += 1
        self.errors += is_error(record)
        self.tokens_in += record.tokens_in
        self.tokens_out += record.tokens_out
        if record.first_token is not None:
            self._ttfts.append(record.first_token)

    @property
    def median_ttft(self) -> float | None:
        """Median seconds to the first token, None before any streamed answer."""
        self._roll()
        return statistics.median(self._ttfts) if self._ttfts else None
