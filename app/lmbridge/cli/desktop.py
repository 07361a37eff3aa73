"""Desktop integration commands: install-desktop, autostart, logs.

- `lmbridge install-desktop` / `uninstall-desktop`: the application menu
  entry and icon for the current user (`$XDG_DATA_HOME`, Linux and BSDs).
- `lmbridge autostart on|off|status`: start at login (see `autostart`).
- `lmbridge logs`: the path of the log file.

And the check `lmbridge` makes before it starts Qt (`qt_platform_problem`):
Qt's xcb platform plugin (PySide6 6.x: `plugins/platforms/libqxcb.so` and
`lib/libQt6XcbQpa.so.6`, with `libQt6Gui`) links against the system
libraries in `XCB_LIBRARIES`; where one is missing Qt would abort with a
long message about platform plugins, so the app says in one line which
Debian/Ubuntu packages to install (`make sysdeps` installs them;
docs/install.md names them for Fedora and Arch). The list is what
`readelf -d` shows for those libraries.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmbridge import autostart, config, logs
from lmbridge.autostart import xdg
from lmbridge.resources import resource

APP_ICON = "icons/app.svg"


@dataclass(frozen=True)
class DesktopFiles:
    """Where the menu entry and the icon of LM Bridge go."""

    entry: Path
    icon: Path


@dataclass(frozen=True)
class DesktopInstall:
    """What `install_desktop` wrote; `icon` is None when no icon was found."""

    entry: Path
    icon: Path | None


def desktop_files(data_home: Path | None = None) -> DesktopFiles:
    """The paths under `data_home` (default `$XDG_DATA_HOME`)."""
    data = data_home or xdg.xdg_data_home()
    return DesktopFiles(
        entry=data / "applications" / f"{xdg.APP_ID}.desktop",
        icon=data / "icons" / "hicolor" / "scalable" / "apps" / "lmbridge.svg",
    )


def install_desktop(
    command: Sequence[str] | None = None, data_home: Path | None = None
) -> DesktopInstall:
    """Install the menu entry (and the icon, if shipped) for this user.

    Running it again rewrites both, so it also repairs a moved install.
    """
    files = desktop_files(data_home)
    text = xdg.desktop_entry(list(command or autostart.launch_command()))
    files.entry.parent.mkdir(parents=True, exist_ok=True)
    files.entry.write_text(text, encoding="utf-8")
    try:
        source = resource(APP_ICON)
    except FileNotFoundError:
        return DesktopInstall(files.entry, None)
    files.icon.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, files.icon)
    return DesktopInstall(files.entry, files.icon)


def uninstall_desktop(data_home: Path | None = None) -> list[Path]:
    """Remove what `install_desktop` installed; returns the removed files."""
    files = desktop_files(data_home)
    removed = []
    for path in (files.entry, files.icon):
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        removed.append(path)
    return removed


def _xdg_platform() -> bool:
    return sys.platform not in ("win32", "darwin")


def run_install_desktop(args: argparse.Namespace, settings: config.Settings) -> int:
    if not _xdg_platform():
        print(
            "lmbridge: install-desktop is for Linux desktops; on macOS use the "
            "LM Bridge.app bundle, on Windows the lmbridge.exe bundle",
            file=sys.stderr,
        )
        return 1
    try:
        done = install_desktop()
    except (OSError, FileNotFoundError) as exc:
        print(f"lmbridge: cannot install the desktop entry: {exc}", file=sys.stderr)
        return 1
    print(f"installed {done.entry}")
    if done.icon:
        print(f"installed {done.icon}")
    else:
        print("no icon shipped with this install; the entry has none")
    return 0


def run_uninstall_desktop(args: argparse.Namespace, settings: config.Settings) -> int:
    try:
        removed = uninstall_desktop()
    except OSError as exc:
        print(f"lmbridge: cannot remove the desktop entry: {exc}", file=sys.stderr)
        return 1
    for path in removed:
        print(f"removed {path}")
    if not removed:
        print("no desktop entry was installed")
    return 0


def run_autostart(args: argparse.Namespace, settings: config.Settings) -> int:
    try:
        if args.state == "on":
            where = autostart.enable()
            print(f"LM Bridge starts at login ({where})")
        elif args.state == "off":
            removed = autostart.disable()
            print(
                "LM Bridge no longer starts at login"
                if removed
                else "LM Bridge was not set to start at login"
            )
        else:
            state = autostart.status()
            if state.enabled:
                print(f"on: {state.location}")
                if state.command:
                    print(f"command: {' '.join(state.command)}")
            else:
                print("off")
    except autostart.AutostartError as exc:
        print(f"lmbridge: {exc}", file=sys.stderr)
        return 1
    return 0


def run_logs(args: argparse.Namespace, settings: config.Settings) -> int:
    print(logs.log_dir() if args.dir else logs.log_file())
    return 0


# soname -> the Debian/Ubuntu package that ships it.
XCB_LIBRARIES: dict[str, str] = {
    "libxcb.so.1": "libxcb1",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libGL.so.1": "libgl1",
    "libEGL.so.1": "libegl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libdbus-1.so.3": "libdbus-1-3",
}


def uses_xcb(environ: Mapping[str, str] | None = None) -> bool:
    """Whether Qt will use its xcb (X11) plugin: on Linux and the BSDs,
    with QT_QPA_PLATFORM=xcb, or unset with an X display and no Wayland."""
    env = os.environ if environ is None else environ
    if sys.platform in ("darwin", "win32"):
        return False
    platform = env.get("QT_QPA_PLATFORM", "")
    if platform:
        return platform.split(":")[0] == "xcb"
    return bool(env.get("DISPLAY")) and not env.get("WAYLAND_DISPLAY")


def missing_packages(libraries: Mapping[str, str] | None = None) -> list[str]:
    """The packages of the libraries in `libraries` that cannot be loaded."""
    missing: list[str] = []
    for soname, package in (XCB_LIBRARIES if libraries is None else libraries).items():
        try:
            ctypes.CDLL(soname)
        except OSError:
            if package not in missing:
                missing.append(package)
    return missing


def qt_platform_problem(
    environ: Mapping[str, str] | None = None,
    libraries: Mapping[str, str] | None = None,
) -> str | None:
    """One line naming the missing packages, or None if Qt can start."""
    if not uses_xcb(environ):
        return None
    missing = missing_packages(libraries)
    if not missing:
        return None
    names = " ".join(missing)
    return (
        f"Qt's X11 support needs system libraries that are missing: {names} "
        f"(Debian/Ubuntu: `make sysdeps` or `sudo apt-get install {names}`; "
        "other systems: see docs/install.md)"
    )


def register(sub: Any) -> None:
    """Add install-desktop, uninstall-desktop, autostart and logs."""
    install = sub.add_parser(
        "install-desktop",
        help="add LM Bridge to the application menu (Linux, this user)",
    )
    install.set_defaults(run=run_install_desktop)
    uninstall = sub.add_parser(
        "uninstall-desktop", help="remove LM Bridge from the application menu"
    )
    uninstall.set_defaults(run=run_uninstall_desktop)
    start = sub.add_parser(
        "autostart", help="start LM Bridge at login: on, off, status"
    )
    start.add_argument("state", choices=("on", "off", "status"))
    start.set_defaults(run=run_autostart)
    log = sub.add_parser("logs", help="print the path of the log file")
    log.add_argument("--dir", action="store_true", help="print the log directory")
    log.set_defaults(run=run_logs)
