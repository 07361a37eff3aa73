"""Owned background work for the GUI: no fire-and-forget tasks.

A button's slot starts a coroutine with `tasks.start(coro, what="...")`.
The `Tasks` object owns it: it is cancelled when its owner closes, and a
failure becomes one user message that names the action and the fix (the
messages of `LMBridgeError`s are written that way). Cancellation is not a
failure.

That message is a condition keyed by the action (`failure_key(what)`): it
stays while the action keeps failing and disappears the next time the same
action succeeds, from whichever owner, so "Listing LM Studio's models
failed" goes away once LM Studio is listed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from lmbridge.core.errors import LMBridgeError
from lmbridge.gui import message

log = logging.getLogger(__name__)

T = TypeVar("T")


def describe_failure(exc: BaseException) -> str:
    """The user-facing sentence for an exception."""
    if isinstance(exc, LMBridgeError):
        return exc.message
    if isinstance(exc, OSError):
        return str(exc)
    return f"{type(exc).__name__}: {exc} (this is a bug in LM Bridge; see its log)"


def failure_key(what: str) -> str:
    """The message condition under which a failure of `what` is shown."""
    return f"task:{what}"


class Tasks:
    """The coroutines one panel (or the app) started and still owns."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._tasks: dict[asyncio.Task[Any], str] = {}

    def start(
        self,
        coro: Coroutine[Any, Any, T],
        *,
        what: str,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> asyncio.Task[T]:
        """Run `coro`; a failure is reported as "`what` failed: ..."."""
        task = asyncio.get_event_loop().create_task(coro, name=f"{self.owner}:{what}")
        self._tasks[task] = what

        def done(task: asyncio.Task[T]) -> None:
            self._tasks.pop(task, None)
            if task.cancelled():
                return
            exc = task.exception()
            if exc is None:
                message.clear(failure_key(what))
                return
            if not isinstance(exc, LMBridgeError | OSError):
                log.error("%s failed", what, exc_info=exc)
            if on_error is not None:
                on_error(exc)
            message.condition(
                failure_key(what),
                message.Level.ERROR,
                f"{what} failed: {describe_failure(exc)}",
            )

        task.add_done_callback(done)
        return task

    def running(self, what: str | None = None) -> bool:
        """Whether any task (or one described as `what`) is under way."""
        return any(what is None or w == what for w in self._tasks.values())

    def cancel(self, what: str | None = None) -> None:
        for task, w in list(self._tasks.items()):
            if what is None or w == what:
                task.cancel()

    async def aclose(self) -> None:
        """Cancel everything and wait for it to end."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
