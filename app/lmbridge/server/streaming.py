"""Stream helpers: keep-alive pings during upstream silence."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator

from lmbridge.core import ir


async def with_pings(
    events: AsyncIterator[ir.Event], interval: float
) -> AsyncGenerator[ir.Event, None]:
    """Yield `events`, inserting `ir.Ping` after each `interval` of silence.

    The pending read is never cancelled by a ping, so no event is lost.
    """
    it = aiter(events)
    pending: asyncio.Task[ir.Event] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(it))
            done, _ = await asyncio.wait({pending}, timeout=interval)
            if not done:
                yield ir.Ping()
                continue
            try:
                event = pending.result()
            except StopAsyncIteration:
                pending = None
                return
            pending = None
            yield event
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await pending
