"""The desktop app's event loop: qasync's, with asyncio's ready queue and
timer heap.

qasync runs every callback through a Qt timer of its own (`startTimer`, a
timer event, a Python `timerEvent`, `killTimer`, and an
`iscoroutinefunction` check on the way in), and keeps a cancelled timer's
callback, with everything it references, until its time comes. Measured
with 50 streams through the proxy on the 2-core VM:

- Qt fires every timer that is due in one pass, so one pass ran up to 600
  callbacks and held the window up for 60-115 ms of CPU, over the 100 ms
  the UI is allowed.
- Each streamed chunk's read timeout (`asyncio.timeout`, cancelled when the
  chunk comes) stayed a live Qt timer for the whole idle timeout.

Here, as in asyncio's own loop, ready callbacks go to one deque and timers
to one heap (cancelled ones leave it once they are half of it), and two Qt
timers drive them:

- `_drainer` (zero interval) runs the deque in slices of at most `SLICE`
  seconds. A drain runs only the callbacks queued before it started (those
  they schedule wait for the next drain, as in asyncio's `_run_once`);
  between two drains Qt paints, takes input, runs its own timers and reads
  the sockets that are ready.
- `_waker` (precise, single shot) is set for the earliest timer and moves
  the due ones to the deque.

Sockets stay with qasync's `QSocketNotifier`s; they call `call_soon`.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import qasync
from PySide6.QtCore import Qt, QTimer

log = logging.getLogger("asyncio")  # where asyncio's debug mode reports

# The longest one drain runs before Qt gets its turn: half a frame at
# 60 Hz, and long enough that the drainer's own cost (one Qt timer event
# per drain) stays small against the callbacks it runs.
SLICE = 0.008

# Connections taken from a listening socket per turn. asyncio takes up to
# the listen backlog (aiohttp's is 128) at once, so 50 clients connecting
# together queue 50 requests' first steps (about 1 ms each on the 2-core
# VM) in one block, ahead of every other callback. A few per turn lets
# other work in between; the rest wait in the kernel's accept queue, whose
# length (the listen backlog) is unchanged.
ACCEPTS_PER_TURN = 4

# The longest the timer waker sleeps before it looks at the heap again.
_LONGEST_WAIT = 3600.0

# Cancelled timers are dropped from the heap when there are more than this
# many and they are at least half of it (asyncio's own rule).
_COMPACT_AT = 100


class AppLoop(qasync.QEventLoop):  # type: ignore[misc]
    """qasync's loop with a sliced ready queue and one timer heap (see the
    module's note)."""

    # asyncio's BaseEventLoop sets these; qasync leaves them unused.
    _scheduled: list[asyncio.TimerHandle]
    _timer_cancelled_count: int
    _closed: bool
    _current_handle: asyncio.Handle | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ready_q: deque[asyncio.Handle] = deque()
        self._armed = False
        self._drainer = QTimer()
        self._drainer.setSingleShot(True)
        self._drainer.setInterval(0)
        self._drainer.timeout.connect(self._drain)
        self._waker = QTimer()
        self._waker.setSingleShot(True)
        self._waker.setTimerType(Qt.TimerType.PreciseTimer)
        self._waker.timeout.connect(self._wake)
        self._waker_when = math.inf
        self._thread = threading.get_ident()

    # ------------------------------------------------------------ ready

    def call_soon(
        self,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle:
        if self._debug:
            self._check_callback(callback, "call_soon")
        handle = asyncio.Handle(callback, args, self, context)
        if threading.get_ident() != self._thread:
            # A Qt timer cannot be started from another thread (asyncio's
            # own loop is not thread-safe here either; a Future cancelled
            # on a worker thread still schedules its callbacks this way).
            self.call_soon_threadsafe(self._add_callback, handle)
            return handle
        self._add_callback(handle)
        return handle

    def _add_callback(self, handle: asyncio.Handle, delay: float = 0) -> None:
        """Queue a handle (asyncio's signal handlers come this way too)."""
        if not self._armed:
            if self._closed:
                return  # as qasync: nothing runs on a closed loop
            self._arm()
        self._ready_q.append(handle)

    def _arm(self) -> None:
        """Start the drainer unless it is already started."""
        if not self._armed:
            self._armed = True
            self._drainer.start()

    def _drain(self) -> None:
        ready = self._ready_q
        # Disarmed while it runs: the first callback queued meanwhile starts
        # the drainer again, so a callback that runs a nested Qt event loop
        # (a modal dialog's exec()) still has asyncio's callbacks run inside
        # it, by a nested drain, as with qasync.
        self._armed = False
        clock = time.perf_counter
        deadline = clock() + SLICE
        todo = len(ready)
        try:
            if self._debug:
                self._drain_debug(todo, deadline)
                return
            while todo and ready:
                todo -= 1
                handle = ready.popleft()
                if not handle._cancelled:
                    handle._run()
                if clock() > deadline:
                    break
        finally:
            # Also after KeyboardInterrupt or SystemExit, which Handle._run
            # lets through: what is left still runs.
            if ready:
                self._arm()

    def _drain_debug(self, todo: int, deadline: float) -> None:
        """`_drain` in asyncio's debug mode: the current handle is known and
        a slow callback is reported, as asyncio's own loop does."""
        ready = self._ready_q
        while todo and ready:
            todo -= 1
            handle = ready.popleft()
            if handle._cancelled:
                continue
            self._current_handle = handle
            started = self.time()
            try:
                handle._run()
            finally:
                self._current_handle = None
            took = self.time() - started
            if took >= self.slow_callback_duration:
                log.warning("Executing %r took %.3f seconds", handle, took)
            if time.perf_counter() > deadline:
                break

    # ----------------------------------------------------------- timers

    def call_later(
        self,
        delay: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        return self.call_at(self.time() + delay, callback, *args, context=context)

    def call_at(
        self,
        when: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        if self._debug:
            self._check_callback(callback, "call_at")
        timer = asyncio.TimerHandle(when, callback, args, self, context)
        if threading.get_ident() != self._thread:
            self.call_soon_threadsafe(self._schedule, timer)
            return timer
        self._schedule(timer)
        return timer

    def _schedule(self, timer: asyncio.TimerHandle) -> None:
        if self._closed or timer._cancelled:
            return  # as qasync: nothing runs on a closed loop
        when = timer.when()
        heapq.heappush(self._scheduled, timer)
        timer._scheduled = True  # type: ignore[attr-defined]
        if when < self._waker_when:
            self._set_waker(when)

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        if not handle._scheduled:  # type: ignore[attr-defined]
            return
        self._timer_cancelled_count += 1
        scheduled = self._scheduled
        size = len(scheduled)
        if size > _COMPACT_AT and self._timer_cancelled_count * 2 > size:
            kept = []
            for timer in scheduled:
                if timer._cancelled:
                    timer._scheduled = False  # type: ignore[attr-defined]
                else:
                    kept.append(timer)
            heapq.heapify(kept)
            scheduled[:] = kept
            self._timer_cancelled_count = 0

    def _set_waker(self, when: float) -> None:
        self._waker_when = when
        # Qt's timers never fire early; rounding up keeps a timer from
        # running before its time. A Qt interval is an int of milliseconds
        # (24 days at most) and `asyncio.sleep(math.inf)` is an idiom: a
        # far timer wakes the loop once an hour to look again.
        wait = max(0.0, min(when - self.time(), _LONGEST_WAIT))
        self._waker.start(math.ceil(wait * 1000))

    def _wake(self) -> None:
        scheduled = self._scheduled
        now = self.time()
        due = []
        while scheduled:
            head = scheduled[0]
            if head._cancelled:
                heapq.heappop(scheduled)
                head._scheduled = False  # type: ignore[attr-defined]
                self._timer_cancelled_count -= 1
            elif head.when() <= now:
                heapq.heappop(scheduled)
                head._scheduled = False  # type: ignore[attr-defined]
                due.append(head)
            else:
                break
        if due:
            self._ready_q.extend(due)
            self._arm()
        if scheduled:
            self._set_waker(scheduled[0].when())
        else:
            self._waker_when = math.inf

    # ----------------------------------------------------------- sockets

    def _accept_connection(
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        sock: Any,
        sslcontext: Any = None,
        server: Any = None,
        backlog: int = 100,
        *rest: Any,
    ) -> None:
        super()._accept_connection(
            protocol_factory,
            sock,
            sslcontext,
            server,
            min(backlog, ACCEPTS_PER_TURN),
            *rest,
        )

    # -------------------------------------------------------------- life

    def pending(self) -> tuple[int, int]:
        """Callbacks waiting for a drain, and timers in the heap."""
        return len(self._ready_q), len(self._scheduled)

    def close(self) -> None:
        super().close()
        self._drainer.stop()
        self._waker.stop()
        self._waker_when = math.inf
        self._ready_q.clear()
        self._armed = False
