"""The desktop app started with its database in each bad state, on a real X
server: it starts, its window says what is wrong with the file (and the
fix), model calls are answered all the same, and nothing stored before is
lost — a damaged file is kept beside the fresh one it starts."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from desktop.conftest import LaunchApp
from desktop.test_live_pages import curl_chat
from desktop.xdesktop import DesktopApp, until
from faults.dbfaults import _LOCKER, corrupt, fill, read_only, small_disk


def _database(app_home: Path) -> Path:
    return app_home / "data" / "lmbridge.db"


def _stored_row(db: Path) -> None:
    """A row a user had before the fault (read back at the end)."""
    db.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS kept_by_the_user (note TEXT)")
        conn.execute("INSERT INTO kept_by_the_user VALUES ('stored before')")


@contextmanager
def _locked(db: Path) -> Iterator[None]:
    """Another process holds SQLite's write lock, the whole run."""
    locker = subprocess.Popen(
        [sys.executable, "-c", _LOCKER, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert locker.stdout is not None and locker.stdin is not None
    try:
        assert locker.stdout.readline() == b"held\n"
        yield
    finally:
        locker.stdin.close()
        locker.wait(timeout=10)
        locker.stdout.close()


def _start(launch_app: LaunchApp, allowed: tuple[str, ...]) -> DesktopApp:
    """The app on the fake LM Studio (its home: the test's tmp dir / app0)."""
    return launch_app(allowed=allowed)


def _shows(app: DesktopApp, words: str) -> None:
    until(app.main_window, what="the app's window")
    until(
        lambda: app.visible(text=f"Running on http://127.0.0.1:{app.port}"),
        what="the proxy running",
    )
    until(lambda: app.visible(contains=words), what=f"the Overview saying {words!r}")
    # Model calls are answered all the same.
    assert "choices" in curl_chat(app.port)


def test_a_damaged_database_is_said_and_a_fresh_one_started_keeping_the_old(
    launch_app: LaunchApp,
    fake_lmstudio: object,
    tmp_path: Path,
    screenshot: Callable[[str], Path],
) -> None:
    # launch_app makes the app's home here; the file is damaged before it opens.
    home = tmp_path / "app0" / "lmbridge-home"
    damaged = corrupt(_database(home))
    app = _start(launch_app, ("is damaged", "not a database", "was moved aside"))
    _shows(app, "is damaged")
    screenshot("desktop-database-damaged")
    app.click(text="Start a fresh database")
    until(
        lambda: app.visible(contains=f"Database: {_database(home)}"),
        what="the fresh database in use",
    )
    kept = [
        p
        for p in _database(home).parent.iterdir()
        if p.name.startswith("lmbridge-broken-")
    ]
    assert [p.read_bytes() for p in kept if p.read_bytes() == damaged], (
        "the old file is kept"
    )
    assert "choices" in curl_chat(app.port)


def test_a_database_another_process_locks_is_said_and_calls_go_on(
    launch_app: LaunchApp, tmp_path: Path
) -> None:
    db = _database(tmp_path / "app0" / "lmbridge-home")
    _stored_row(db)
    with _locked(db):
        app = _start(launch_app, ("locked",))
        _shows(app, "locked")
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT note FROM kept_by_the_user").fetchall() == [
            ("stored before",)
        ]


@pytest.mark.parametrize("fault", ["read-only", "full"])
def test_a_database_on_a_read_only_or_full_disk_is_said_and_calls_go_on(
    launch_app: LaunchApp, tmp_path: Path, fault: str
) -> None:
    data = tmp_path / "app0" / "lmbridge-home" / "data"
    _stored_row(data / "lmbridge.db")
    allowed: tuple[str, ...]
    with small_disk(data):
        if fault == "read-only":
            read_only(data)
            words, allowed = "cannot be written", ("cannot be written", "Read-only")
        else:
            fill(data)
            words, allowed = "full", ("full",)
        app = _start(launch_app, allowed)
        _shows(app, words)
        app.stop()
        with sqlite3.connect(f"file:{data / 'lmbridge.db'}?mode=ro", uri=True) as conn:
            rows = conn.execute("SELECT note FROM kept_by_the_user").fetchall()
        assert rows == [("stored before",)]
