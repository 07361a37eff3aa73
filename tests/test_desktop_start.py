"""How `lmbridge` starts where the desktop app cannot: no display, or a
system library Qt's X11 plugin needs is missing (one line, then headless)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from lmbridge.cli.desktop import XCB_LIBRARIES, qt_platform_problem, uses_xcb

LMBRIDGE = Path(sys.executable).with_name("lmbridge")


def test_xcb_is_checked_only_where_qt_will_use_it() -> None:
    assert uses_xcb({"DISPLAY": ":0"}) == (sys.platform not in ("darwin", "win32"))
    assert not uses_xcb({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"})
    assert not uses_xcb({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"})
    assert not uses_xcb({})
    assert (
        qt_platform_problem({"QT_QPA_PLATFORM": "offscreen"}, {"nope.so": "x"}) is None
    )


def test_a_missing_library_is_named_by_its_package_in_one_line() -> None:
    if sys.platform in ("darwin", "win32"):
        return
    libraries = {
        "libc.so.6": "libc6",  # loads
        "liblmbridge-missing.so.7": "liblmbridge-missing7",
        "liblmbridge-missing-too.so.1": "liblmbridge-missing7",  # same package
        "liblmbridge-other.so.2": "liblmbridge-other2",
    }
    problem = qt_platform_problem({"DISPLAY": ":0"}, libraries)
    assert problem is not None
    assert "\n" not in problem
    assert "liblmbridge-missing7 liblmbridge-other2" in problem
    assert "libc6" not in problem
    assert "sudo apt-get install liblmbridge-missing7 liblmbridge-other2" in problem


def test_every_xcb_library_has_a_debian_package() -> None:
    assert all(name.startswith("lib") and ".so." in name for name in XCB_LIBRARIES)
    assert "libxcb-cursor.so.0" in XCB_LIBRARIES  # what Qt 6.5+ asks for first


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_without_a_display_lmbridge_says_so_and_serves(tmp_path: Path) -> None:
    """`make run` on a server: one line, then the headless proxy."""
    if sys.platform in ("darwin", "win32"):
        return  # there is always a display
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path / "home"),
        "LMBRIDGE_HOME": str(tmp_path / "lmbridge-home"),
        "LMBRIDGE_PORT": str(port),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
    }
    proc = subprocess.Popen(
        [str(LMBRIDGE)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"listening on http://127.0.0.1:{port}" in line
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0
    assert err.splitlines() == [
        "lmbridge: no display (neither DISPLAY nor WAYLAND_DISPLAY is set); "
        "running the proxy headless (as `lmbridge serve`)"
    ]
