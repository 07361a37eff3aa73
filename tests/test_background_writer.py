"""The background writer: state writes off the answer path, in order, with
a bounded retry, coalesced per key, reported once when they fail."""

from __future__ import annotations

import asyncio
import logging

import pytest

from lmbridge.core import errors
from lmbridge.core.writer import BackgroundWriter


class Target:
    """Where writes land; fails the first `failures` tries."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.tries = 0
        self.written: list[str] = []

    def write(self, value: str) -> object:
        async def run() -> None:
            self.tries += 1
            if self.failures:
                self.failures -= 1
                raise errors.StorageUnavailable("the database x is locked")
            self.written.append(value)

        return run


async def test_writes_run_in_order_and_newer_ones_replace_queued_ones() -> None:
    writer = BackgroundWriter("test", backoff=0.001)
    target = Target()
    for value in ("a1", "b1", "a2"):
        writer.submit(value[0], target.write(value))  # type: ignore[arg-type]
    # Queued before the task ran: "a2" replaced "a1" and went to the end.
    await writer.drain()
    assert target.written == ["b1", "a2"]
    await writer.close()


async def test_a_failing_write_is_retried_a_bounded_number_of_times() -> None:
    writer = BackgroundWriter("test", attempts=3, backoff=0.001)
    target = Target(failures=2)
    failed: list[str] = []
    writer.submit("k", target.write("v"), failed.append)  # type: ignore[arg-type]
    await writer.drain()
    assert target.written == ["v"] and target.tries == 3 and not failed

    target = Target(failures=10)
    writer.submit("k", target.write("v"), failed.append)  # type: ignore[arg-type]
    await writer.drain()
    assert target.tries == 3 and failed == ["the database x is locked"]
    await writer.close()


async def test_failures_are_logged_once_and_recovery_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "lmbridge.core.writer")
    writer = BackgroundWriter("chains", attempts=2, backoff=0.001)
    failed: list[str] = []
    for n in range(5):
        writer.submit(n, Target(failures=99).write("v"), failed.append)  # type: ignore[arg-type]
        await writer.drain()
    # While failing, each new write gets one try: the queue never piles up.
    assert len(failed) == 5
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "chains: not saved" in warnings[0].getMessage()
    writer.submit("ok", Target().write("v"))  # type: ignore[arg-type]
    await writer.drain()
    assert any("writing again" in r.getMessage() for r in caplog.records)
    assert not writer.failing
    await writer.close()


async def test_close_writes_what_is_queued_and_gives_up_after_its_timeout() -> None:
    writer = BackgroundWriter("test", close_timeout=0.2)
    target = Target()
    stuck = asyncio.Event()

    async def never() -> None:
        await stuck.wait()

    failed: list[str] = []
    writer.submit("a", target.write("a"))  # type: ignore[arg-type]
    writer.submit("stuck", never)
    writer.submit("b", target.write("b"), failed.append)  # type: ignore[arg-type]
    await writer.close()
    assert target.written == ["a"]
    assert failed == ["LM Bridge stopped before it was written"]
    writer.submit("late", target.write("late"), failed.append)  # type: ignore[arg-type]
    assert failed[-1] == "LM Bridge is stopping"


async def test_discard_drops_queued_writes_of_a_key() -> None:
    writer = BackgroundWriter("test")
    target = Target()
    writer.submit(("s", 1), target.write("s1"))  # type: ignore[arg-type]
    writer.submit(("t", 1), target.write("t1"))  # type: ignore[arg-type]
    writer.discard(lambda key: isinstance(key, tuple) and key[0] == "s")
    await writer.drain()
    assert target.written == ["t1"]
    await writer.close()
