"""GUI test harness: Qt and asyncio on one qasync loop, strict about noise.

- Every async test under tests/gui runs on a qasync `QEventLoop` (the
  `pytest_asyncio_loop_factories` hook), so awaiting lets Qt process events
  and the fakes, the proxy and the widgets share one loop as in the app.
- A Qt warning fails the test (`qt_log_level_fail`), and so does any ERROR
  log line the test did not declare with `expected_errors`.
- `gui_app` builds the whole desktop app against the fakes (fake LM Studio,
  fake OpenAI upstream) without a system tray; `tray_app` with one.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytestqt.plugin
from PySide6.QtWidgets import QApplication

from fakes.lmstudio_server import FakeLMStudio
from fakes.openai_upstream import FakeOpenAIUpstream
from gui.helpers import app_settings, close_app, make_app
from lmbridge.gui import message
from lmbridge.gui.app import LMBridgeApp
from lmbridge.gui.loop import AppLoop

HERE = Path(__file__).parent


_current_loop: list[asyncio.AbstractEventLoop] = []


class _TestLoop(AppLoop):
    """The app's loop (qasync's, with a sliced ready queue), with one fix for running it many times in a row.

    `run_until_complete` processes pending Qt events once more after the
    loop stopped, when no asyncio loop is marked running; the app's
    background tasks (LM Studio supervisor, health checks) then fail with
    "no running event loop". pytest-asyncio runs every fixture and test
    phase with its own `run_until_complete`, so keep the loop marked
    running until that last pass is over.
    """

    def run_forever(self) -> Any:
        try:
            return super().run_forever()
        finally:
            asyncio.events._set_running_loop(self)

    def run_until_complete(self, future: Any) -> Any:
        try:
            return super().run_until_complete(future)
        finally:
            asyncio.events._set_running_loop(None)


def _qasync_loop() -> asyncio.AbstractEventLoop:
    app = QApplication.instance() or QApplication(sys.argv)
    assert isinstance(app, QApplication)
    loop = _TestLoop(app)
    _current_loop[:] = [loop]
    return loop


def _process_events() -> None:
    """pytest-qt processes Qt events between test phases, outside the
    asyncio loop; qasync's callbacks then find no running loop. Process them
    with our loop marked as running, as it is while a test runs."""
    app = QApplication.instance()
    if app is None:
        return
    loop = _current_loop[0] if _current_loop else None
    if loop is None or loop.is_closed() or loop.is_running():
        app.processEvents()
        return
    asyncio.events._set_running_loop(loop)
    try:
        app.processEvents()
    finally:
        asyncio.events._set_running_loop(None)


pytestqt.plugin._process_events = _process_events  # type: ignore[attr-defined]


def pytest_asyncio_loop_factories(config: Any, item: Any) -> dict[str, Any]:
    return {"qasync": _qasync_loop}


def pytest_collection_modifyitems(config: Any, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.gui)
            item.add_marker(pytest.mark.qt_log_level_fail("WARNING"))
            # The offscreen platform cannot do these (no window manager, no
            # tray); they are not the app's warnings.
            item.add_marker(
                pytest.mark.qt_log_ignore(
                    "This plugin does not support",
                    "No such signal QPlatformNativeInterface::systemTrayWindowChanged",
                )
            )


@pytest.fixture(autouse=True)
def main_thread_gc() -> Iterator[None]:
    """Collect garbage on the GUI thread only, as the app does
    (`gui.app.MainThreadGC`): a cycle holding Qt objects collected on the
    database's worker thread crashes."""
    gc.disable()
    yield
    gc.collect()
    gc.enable()


@pytest.fixture(autouse=True)
def autostart_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Start-at-login entries go to a temporary XDG config dir."""
    xdg = tmp_path / "xdg-config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    return xdg


@pytest.fixture(autouse=True)
def messages() -> list[tuple[message.Level, str]]:
    """Every user message shown during the test, as (level, text); the
    test starts with no condition set."""
    message.global_bridge.history.clear()
    message.global_bridge.conditions.clear()
    return message.global_bridge.history


@pytest.fixture
async def fake_lm() -> AsyncIterator[FakeLMStudio]:
    fake = FakeLMStudio()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def gui_app(
    qtbot: Any,
    fake_lm: FakeLMStudio,
    fake_upstream: FakeOpenAIUpstream,
    tmp_path: Path,
) -> AsyncIterator[LMBridgeApp]:
    app = await make_app(app_settings(fake_lm, fake_upstream), tmp_path)
    yield app
    await close_app(app)
