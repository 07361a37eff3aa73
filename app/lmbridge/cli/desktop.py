"""Desktop integration commands: install-desktop, autostart, logs.

- `lmbridge install-desktop` / `uninstall-desktop`: the application menu
  entry and icon for the current user (`$XDG_DATA_HOME`, Linux and BSDs).
- `lmbridge autostart on|off|status`: start at login (see `autostart`).
- `lmbridge logs`: the path of the log file.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
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
