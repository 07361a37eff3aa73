"""The app's event loop (`gui/loop.py`): asyncio's semantics on Qt, with a
ready queue drained in slices and one timer heap.

Every async test under tests/gui runs on it (conftest's `_TestLoop`), so
these check the properties the rest relies on: order, timers that are
never early, cancelled timers that do not pile up, Qt's turn between
slices, errors that do not stop the loop, and a burst of connections all
served.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import signal
import threading
import time
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from PySide6.QtCore import QEventLoop, QTimer

from lmbridge.gui import loop as app_loop
from lmbridge.gui.loop import AppLoop


def running() -> AppLoop:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, AppLoop)
    return loop


async def test_callbacks_run_in_order_and_those_they_schedule_run_later() -> None:
    loop = running()
    seen: list[str] = []
    done = loop.create_future()

    def first(name: str) -> None:
        seen.append(name)
        loop.call_soon(seen.append, f"{name}'s follow-up")

    for name in ("a", "b", "c"):
        loop.call_soon(first, name)
    loop.call_soon(lambda: loop.call_soon(done.set_result, None))
    await done
    # Each drain runs only what was queued before it started, as asyncio's
    # own loop does: the follow-ups come after all three firsts.
    assert seen == ["a", "b", "c", "a's follow-up", "b's follow-up", "c's follow-up"]


async def test_timers_fire_in_time_order_and_never_early() -> None:
    loop = running()
    fired: list[tuple[str, float]] = []
    start = loop.time()
    done = loop.create_future()
    for name, delay in (("late", 0.06), ("early", 0.02), ("middle", 0.04)):
        loop.call_later(delay, lambda n=name: fired.append((n, loop.time() - start)))
    loop.call_later(0.07, done.set_result, None)
    await done
    assert [name for name, _ in fired] == ["early", "middle", "late"]
    for (_, elapsed), wanted in zip(fired, (0.02, 0.04, 0.06), strict=True):
        assert elapsed >= wanted
    before = time.monotonic()
    await asyncio.sleep(0.015)
    assert time.monotonic() - before >= 0.015


async def test_a_timer_set_earlier_than_the_next_one_moves_the_wake_up() -> None:
    loop = running()
    done = loop.create_future()
    loop.call_later(30, lambda: None).cancel()
    far = loop.call_later(30, lambda: None)
    loop.call_later(0.01, done.set_result, "near")
    assert await asyncio.wait_for(done, 1) == "near"
    far.cancel()


async def test_cancelled_timers_leave_the_heap() -> None:
    """A stream's read timeout is set and cancelled once per chunk; qasync
    kept each one (and what it references) until its time came."""
    loop = running()
    _, before = loop.pending()
    for _ in range(5000):
        loop.call_later(600, lambda: None).cancel()
    _, after = loop.pending()
    assert after - before <= app_loop._COMPACT_AT + 1
    # A timer that was kept still fires after the compaction.
    done = loop.create_future()
    loop.call_later(0.01, done.set_result, True)
    for _ in range(500):
        loop.call_later(600, lambda: None).cancel()
    assert await asyncio.wait_for(done, 1)


async def test_qt_gets_its_turn_between_slices_of_a_long_queue() -> None:
    loop = running()
    qt_fired: list[int] = []
    ran: list[int] = []
    done = loop.create_future()

    def busy(i: int) -> None:
        if i == 0:  # Qt's timer starts once the hundred are queued
            QTimer.singleShot(0, lambda: qt_fired.append(len(ran)))
        until = time.perf_counter() + 0.002
        while time.perf_counter() < until:
            pass
        ran.append(i)
        if i == 99:
            done.set_result(None)

    for i in range(100):  # 200 ms of callbacks, queued at once
        loop.call_soon(busy, i)
    await done
    assert qt_fired, "Qt's timer never fired"
    # Qt's zero timer came after at most about one slice of callbacks,
    # not after all hundred.
    assert qt_fired[0] <= app_loop.SLICE / 0.002 + 2, qt_fired


async def test_an_error_in_a_callback_is_reported_and_the_rest_run() -> None:
    loop = running()
    reported: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        seen: list[int] = []
        done = loop.create_future()

        def fail() -> None:
            raise ValueError("broken callback")

        loop.call_soon(seen.append, 1)
        loop.call_soon(fail)
        loop.call_soon(seen.append, 2)
        loop.call_soon(done.set_result, None)
        await done
    finally:
        loop.set_exception_handler(previous)
    assert seen == [1, 2]
    assert isinstance(reported[0]["exception"], ValueError)


async def test_callbacks_from_other_threads_arrive() -> None:
    loop = running()
    done = loop.create_future()
    threading.Thread(
        target=lambda: loop.call_soon_threadsafe(done.set_result, "from a thread")
    ).start()
    assert await asyncio.wait_for(done, 2) == "from a thread"


async def test_a_burst_of_connections_is_served_in_full() -> None:
    """Connections are taken a few per turn; none is lost or refused."""
    count = 4 * app_loop.ACCEPTS_PER_TURN * 5

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text=request.query["n"])

    server = web.Application()
    server.router.add_get("/", hello)
    runner = web.AppRunner(server)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        connector = aiohttp.TCPConnector(limit=count, force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def one(n: int) -> str:
                async with session.get(f"http://127.0.0.1:{port}/?n={n}") as resp:
                    return await resp.text()

            answers = await asyncio.wait_for(
                asyncio.gather(*(one(n) for n in range(count))), 20
            )
        assert answers == [str(n) for n in range(count)]
    finally:
        await runner.cleanup()


async def test_callbacks_run_inside_a_nested_qt_event_loop() -> None:
    """A callback that runs a nested Qt event loop (a modal dialog's
    exec()) does not hold asyncio's callbacks up until it returns."""
    loop = running()
    nested = QEventLoop()
    seen: list[str] = []
    done = loop.create_future()

    def inner() -> None:
        seen.append("inner")
        nested.quit()

    def outer() -> None:
        loop.call_soon(inner)
        QTimer.singleShot(3000, nested.quit)  # the test fails, not hangs
        nested.exec()
        seen.append("outer returned")
        loop.call_soon(done.set_result, None)

    loop.call_soon(outer)
    await asyncio.wait_for(done, 10)
    assert seen == ["inner", "outer returned"]


async def test_a_timer_beyond_what_qt_can_wait_is_kept() -> None:
    """`asyncio.sleep(math.inf)` is an idiom, and a Qt timer's interval is
    at most 24 days; neither breaks the loop, and nearer timers still
    fire."""
    loop = running()
    forever = asyncio.ensure_future(asyncio.sleep(math.inf))
    far = loop.call_later(40 * 86400, lambda: None)
    await asyncio.sleep(0.01)
    assert not forever.done()
    forever.cancel()
    far.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await forever
    assert forever.cancelled()


async def test_callbacks_and_timers_scheduled_from_another_thread_run() -> None:
    """asyncio's call_soon is not thread-safe, but a Future cancelled on a
    worker thread schedules its callbacks with it; a Qt timer cannot be
    started there, and that must not leave the loop stuck."""
    loop = running()
    soon = loop.create_future()
    later = loop.create_future()

    def worker() -> None:
        loop.call_soon(soon.set_result, "soon")
        loop.call_later(0.01, later.set_result, "later")

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert await asyncio.wait_for(soon, 2) == "soon"
    assert await asyncio.wait_for(later, 2) == "later"
    # and the loop's own scheduling still works afterwards
    await asyncio.sleep(0.01)


async def test_a_timer_in_the_past_runs_and_later_ones_still_fire() -> None:
    loop = running()
    past = loop.create_future()
    loop.call_at(-math.inf, past.set_result, "past")
    assert await asyncio.wait_for(past, 2) == "past"
    before = time.monotonic()
    await asyncio.wait_for(asyncio.sleep(0.01), 2)
    assert time.monotonic() - before < 1


async def test_what_is_queued_behind_a_keyboard_interrupt_still_runs() -> None:
    loop = running()
    seen: list[str] = []
    done = loop.create_future()

    def interrupt() -> None:
        raise KeyboardInterrupt

    loop.call_soon(interrupt)
    loop.call_soon(seen.append, "after")
    loop.call_soon(done.set_result, None)
    with pytest.raises(KeyboardInterrupt):
        loop._drain()  # as the drainer's timer would
    await asyncio.wait_for(done, 2)
    assert seen == ["after"]


async def test_debug_mode_checks_callbacks_and_reports_slow_ones(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = running()
    loop.set_debug(True)
    loop.slow_callback_duration = 0.01
    try:

        async def coroutine_function() -> None:
            pass

        with pytest.raises(TypeError):
            loop.call_soon(coroutine_function)
        with pytest.raises(TypeError):
            loop.call_later(1, coroutine_function)
        done = loop.create_future()

        def slow() -> None:
            time.sleep(0.03)
            done.set_result(None)

        with caplog.at_level(logging.WARNING, logger="asyncio"):
            loop.call_soon(slow)
            await done
    finally:
        loop.set_debug(False)
        loop.slow_callback_duration = 0.1
    assert any(
        "slow" in r.getMessage() and "took" in r.getMessage() for r in caplog.records
    )


async def test_signal_handlers_run_on_the_loop() -> None:
    loop = running()
    caught = loop.create_future()
    loop.add_signal_handler(signal.SIGUSR1, caught.set_result, "SIGUSR1")
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        assert await asyncio.wait_for(caught, 2) == "SIGUSR1"
    finally:
        loop.remove_signal_handler(signal.SIGUSR1)
