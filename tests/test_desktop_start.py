"""How `lmbridge` starts where the desktop app cannot: a system library
Qt's X11 plugin needs is missing (one line naming the packages, then
headless). Without a display: tests/test_cli.py."""

from __future__ import annotations

import sys

from lmbridge.cli.desktop import XCB_LIBRARIES, qt_platform_problem, uses_xcb


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
