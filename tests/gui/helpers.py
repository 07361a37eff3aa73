"""Helpers for the GUI tests (import as `from gui.helpers import ...`)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QTableWidget, QWidget

from fakes.lmstudio_server import FakeLMStudio
from fakes.openai_upstream import FakeOpenAIUpstream
from lmbridge import config
from lmbridge.gui.app import LMBridgeApp
from lmbridge.gui.prefs import Prefs

T = TypeVar("T")
W = TypeVar("W", bound=QWidget)


def settings_field(panel: Any, name: str, kind: type[W]) -> W:
    """The Settings page's widget for setting `name` ("chat.max_image_bytes"),
    which the page builds from the setting's declaration."""
    widget = panel.form.widget(name)
    assert isinstance(widget, kind), (name, widget)
    return widget


async def eventually(
    condition: Callable[[], object], timeout: float = 15.0, what: str = "condition"
) -> None:
    """Await until `condition()` is truthy (Qt keeps processing events)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


def app_settings(
    lm: FakeLMStudio | None,
    upstream: FakeOpenAIUpstream | None,
    *,
    cloud_api: str = "",
    extra: str = "",
) -> config.Settings:
    """A local LM Studio upstream and an OpenAI-compatible one, with routes."""
    parts = ["[server]\nport = 0\n"]
    if lm is not None:
        parts.append(f"""
[[upstream]]
name = "local"
kind = "lmstudio"
base_url = "{lm.base_url}"
""")
    if upstream is not None:
        parts.append(f"""
[[upstream]]
name = "cloud"
kind = "openai"
base_url = "{upstream.url}"
{f'api = "{cloud_api}"' if cloud_api else ""}

[[route]]
model = "claude-*"
upstream = "cloud"
target = "fake-model"

[[route]]
model = "gpt-*"
upstream = "cloud"
target = "fake-model"
""")
    parts.append(extra)
    parts.append("""
[lmstudio]
min_context = 8192
load_context_length = 8192
""")
    return config.parse("".join(parts))


async def make_app(
    settings: config.Settings,
    tmp_path: Path,
    *,
    tray: bool = False,
    setup: bool | None = False,
    on_screen: bool = True,
) -> LMBridgeApp:
    """The whole app against `settings`. `on_screen`: the test stands in for
    a person looking at the screen, so notices count as seen (offscreen, the
    app itself would not record them)."""
    app = LMBridgeApp(
        settings,
        tmp_path / "config.toml",
        tray_available=tray,
        prefs=Prefs(tmp_path / "gui.ini"),
        setup=setup,
        on_screen=on_screen,
    )
    await app.startup()
    return app


def table_text(table: QTableWidget, row: int, column: int) -> str:
    """The text of a table widget's cell, which must have an item."""
    item = table.item(row, column)
    assert item is not None, f"no item at ({row}, {column})"
    return item.text()


async def close_app(app: LMBridgeApp) -> None:
    await app.shutdown()
    app.window.deleteLater()
    if app.tray is not None:
        app.tray.menu.deleteLater()


class StallMeter:
    """Measures how long the event loop goes without getting back to Qt,
    and how late asyncio callbacks run.

    - **Stalls** (what freezes a UI): a 5 ms Qt timer, restarted each time
      it fires. For each firing it records the lateness in wall-clock time
      and the CPU time the loop's thread used meanwhile. Painting, input
      and Qt's timers wait exactly this long. The CPU figure is what the
      loop's own work held it up; on a busy shared machine the wall figure
      also counts time the OS gave to other processes.
    - **Lag**: a 5 ms `asyncio.sleep`, repeated: how long a callback that
      becomes ready waits for its turn behind the ones ready before it
      (a GUI task resuming after an await). Under a burst of work this is
      a queue, not a freeze: the loop returns to Qt between slices of it.
    """

    def __init__(self, tick: float = 0.005) -> None:
        self.tick = tick
        self.stalls: list[float] = []
        self.busy: list[float] = []
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None
        self._timer = QTimer()
        self._timer.setSingleShot(True)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._fired)
        self._mark = (0.0, 0.0)

    def _fired(self) -> None:
        before, cpu = self._mark
        self.stalls.append(time.perf_counter() - before - self.tick)
        self.busy.append(time.thread_time() - cpu)
        self._start()

    def _start(self) -> None:
        self._mark = (time.perf_counter(), time.thread_time())
        self._timer.start(round(self.tick * 1000))

    async def _lag(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.tick)
            self.lags.append(time.perf_counter() - before - self.tick)

    def __enter__(self) -> StallMeter:
        self._start()
        self._task = asyncio.get_running_loop().create_task(self._lag())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        self._timer.stop()

    @property
    def worst(self) -> float:
        """The longest the loop's own work kept it from Qt (CPU time)."""
        return max(self.busy, default=0.0)

    @property
    def worst_wall(self) -> float:
        return max(self.stalls, default=0.0)

    @property
    def worst_lag(self) -> float:
        return max(self.lags, default=0.0)

    def summary(self) -> str:
        def p99(values: list[float]) -> float:
            ordered = sorted(values)
            return ordered[int(len(ordered) * 0.99)] if ordered else 0.0

        return (
            f"{len(self.stalls)} Qt wake-ups; loop work between them: worst "
            f"{self.worst * 1000:.1f} ms, p99 {p99(self.busy) * 1000:.1f} ms; "
            f"wall-clock lateness: worst {self.worst_wall * 1000:.1f} ms, "
            f"p99 {p99(self.stalls) * 1000:.1f} ms; asyncio lag: worst "
            f"{self.worst_lag * 1000:.1f} ms, p99 {p99(self.lags) * 1000:.1f} ms"
        )


class BackgroundLoop:
    """An asyncio loop in its own thread, for what is another process in
    real life (the upstream server, the clients): the app's loop then
    carries only the proxy and the GUI, as it does on a user's machine."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="background-loop", daemon=True
        )

    def __enter__(self) -> BackgroundLoop:
        self._thread.start()
        return self

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the background loop; await its result here."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return await asyncio.wrap_future(future)

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()
