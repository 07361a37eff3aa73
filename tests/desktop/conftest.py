"""Fixtures of the desktop tier (marker `desktop`); see README.md here.

- `x_session` (per test session): Xvfb, openbox and tint2's system tray;
  the whole tier is skipped, in one line, where a tool is missing.
- `fake_lmstudio`: tests/fakes' LM Studio on a free port, served from a
  thread so the tests are plain functions.
- `launch_app(config=...)`: starts the real `lmbridge` on that desktop
  (config.toml pointing at the fake LM Studio, a free proxy port) and, at
  the end of the test, stops it and fails the test on any ERROR line in
  its log or anything on its stderr (Qt warnings, tracebacks), but the
  substrings passed as `allowed`. `desktop_app` is one started that way.
- `screenshot(name)`: the screen from the X server, in the test's
  temporary directory, and in $LMBRIDGE_SCREENSHOTS when that is set
  (`make desktop-screenshots` sets it to docs/screenshots).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from desktop.xdesktop import (
    DesktopApp,
    XSession,
    free_port,
    lmstudio_config,
    missing_tools,
    running_fake_lmstudio,
)

HERE = Path(__file__).parent
DEFAULT = object()
# Known noise that is not the app's: the lmstudio SDK warns when LM Studio
# answers a call the SDK already gave up at shutdown (a race inside the SDK's
# websocket handler when the app closes its client while a call is pending).
KNOWN_NOISE = ("Received response to unknown call",)


def pytest_collection_modifyitems(config: Any, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.desktop)


@pytest.fixture(scope="session")
def x_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[XSession]:
    missing = missing_tools()
    if missing:
        pytest.skip(
            f"desktop tier: {', '.join(missing)} not installed "
            "(`make sysdeps` installs them on Debian/Ubuntu)"
        )
    session = XSession(tmp_path_factory.mktemp("xsession")).start()
    yield session
    session.stop()


@pytest.fixture
def fake_lmstudio() -> Iterator[Any]:
    with running_fake_lmstudio() as fake:
        yield fake


LaunchApp = Callable[..., DesktopApp]


@pytest.fixture
def launch_app(
    x_session: XSession, fake_lmstudio: Any, tmp_path: Path
) -> Iterator[LaunchApp]:
    started: list[tuple[DesktopApp, tuple[str, ...]]] = []

    def launch(config: Any = DEFAULT, allowed: tuple[str, ...] = ()) -> DesktopApp:
        """The app, started; `config`: config.toml's text (default: the fake
        LM Studio and a free port; None: no settings file, a first start)."""
        port = free_port()
        if config is DEFAULT:
            config = lmstudio_config(port, fake_lmstudio.base_url)
        workdir = tmp_path / f"app{len(started)}"
        app = DesktopApp(x_session, workdir, port, config)
        started.append((app, allowed))
        return app.start()

    yield launch
    problems: list[str] = []
    for app, allowed in started:
        app.stop()
        problems += app.problems(allowed + KNOWN_NOISE)
    if problems:
        pytest.fail("the app's log or stderr:\n" + "\n".join(problems))


@pytest.fixture
def desktop_app(launch_app: LaunchApp) -> DesktopApp:
    return launch_app()


@pytest.fixture
def screenshot(x_session: XSession, tmp_path: Path) -> Callable[[str], Path]:
    def take(name: str) -> Path:
        path = x_session.screenshot(tmp_path / f"{name}.png")
        if target := os.environ.get("LMBRIDGE_SCREENSHOTS"):
            x_session.screenshot(Path(target) / f"{name}.png")
        return path

    return take
