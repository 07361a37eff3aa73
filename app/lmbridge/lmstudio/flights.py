"""Single-flight tasks: one load (or download) per key, shared by its callers.

The task belongs to `Flights`, not to whoever asked first: a caller that goes
away (a client disconnects) does not cancel the work others wait for. Only
`cancel(key)` and `cancel_all()` do, and then every waiter gets the error
`cancelled(key)` builds.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

from lmbridge.core.errors import LMBridgeError

T = TypeVar("T")


class Flights(Generic[T]):
    """Tasks by key; `join` starts one or waits for the one under way."""

    def __init__(self, what: str, cancelled: Callable[[str], LMBridgeError]) -> None:
        self._what = what
        self._cancelled = cancelled
        self._tasks: dict[str, asyncio.Task[T]] = {}

    def keys(self) -> tuple[str, ...]:
        """The keys with a task under way."""
        return tuple(k for k, t in self._tasks.items() if not t.done())

    async def join(self, key: str, factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """The result of the task for `key`, started with `factory` if none runs."""
        task = self._tasks.get(key)
        if task is None:
            task = asyncio.create_task(factory(), name=f"lmstudio-{self._what}:{key}")
            self._tasks[key] = task
            task.add_done_callback(functools.partial(self._done, key))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            me = asyncio.current_task()
            if task.cancelled() and (me is None or me.cancelling() == 0):
                raise self._cancelled(key) from None
            raise

    def cancel(self, key: str) -> bool:
        """Cancel the task for `key`; False if none is under way."""
        task = self._tasks.get(key)
        if task is None or task.done():
            return False
        task.cancel()
        return True

    async def cancel_all(self) -> None:
        """Cancel every task and wait until they have finished."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _done(self, key: str, task: asyncio.Task[T]) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]
        if not task.cancelled():
            task.exception()  # retrieved here; every waiter gets it via shield
