"""Start LM Bridge when the user logs in: XDG autostart, LaunchAgent, Run key.

The GUI's Settings and `lmbridge autostart on|off|status` call the same
three functions, `is_enabled()`, `enable()` and `disable()`, which act on
the current platform's mechanism:

- Linux and other XDG desktops: `$XDG_CONFIG_HOME/autostart/lmbridge.desktop`
- macOS: `~/Library/LaunchAgents/dev.lmbridge.LMBridge.plist` (RunAtLoad)
- Windows: the `LM Bridge` value of
  `HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run`

Each mechanism is a small class taking its location as an argument, so tests
run all three on any OS (Windows with an in-memory registry): `xdg.py`
(which also writes the application-menu entry), `macos.py`, `windows.py`,
all fulfilling `base.Mechanism`. Here are the API, the choice of the
platform's mechanism (`mechanism()`) and the command that starts this
installation (`launch_command()`).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lmbridge.autostart.base import Mechanism
from lmbridge.autostart.macos import LaunchAgent
from lmbridge.autostart.windows import RunKey, WinRegistry
from lmbridge.autostart.xdg import XdgAutostart, xdg_config_home
from lmbridge.core.errors import AutostartError as AutostartError  # re-exported


def launch_command() -> list[str]:
    """The command that starts this installation of LM Bridge (the tray app).

    A frozen bundle is its own executable (on Windows the windowed
    `lmbridge.exe`, not the console `lmbridge-cli.exe`); on Windows a Python
    install runs under `pythonw.exe`, so no console window opens at login;
    an install from a wheel or pipx has an `lmbridge` script beside its
    interpreter; otherwise the package runs with this interpreter.
    """
    exe = Path(sys.executable)
    if getattr(sys, "frozen", False):
        windowed = exe.with_name("lmbridge.exe")
        if sys.platform == "win32" and exe.stem == "lmbridge-cli" and windowed.exists():
            return [str(windowed)]
        return [str(exe)]
    if sys.platform == "win32":
        pythonw = exe.with_name("pythonw.exe")
        if pythonw.is_file():
            return [str(pythonw), "-m", "lmbridge"]
    for name in ("lmbridge", "lmbridge.exe"):
        script = exe.parent / name
        if script.is_file():
            return [str(script)]
    found = shutil.which("lmbridge")
    if found:
        return [found]
    return [sys.executable, "-m", "lmbridge"]


def mechanism(platform: str | None = None) -> Mechanism:
    """The mechanism of `platform` (default: this one's)."""
    platform = platform or sys.platform
    if platform == "win32":
        return RunKey(WinRegistry())
    if platform == "darwin":
        return LaunchAgent(Path.home() / "Library" / "LaunchAgents")
    return XdgAutostart(xdg_config_home() / "autostart")


# -- the API the GUI and the CLI use ----------------------------------------


@dataclass(frozen=True)
class AutostartStatus:
    """Whether LM Bridge starts at login, where that is set, and with what."""

    enabled: bool
    location: str
    command: list[str] | None


def is_enabled() -> bool:
    """Whether LM Bridge starts when the user logs in."""
    return mechanism().is_enabled()


def enable(command: Sequence[str] | None = None) -> str:
    """Start LM Bridge at login (`command`, default `launch_command()`).

    Returns where the setting was written. Raises AutostartError.
    """
    target = mechanism()
    try:
        target.enable(list(command) if command else launch_command())
    except OSError as exc:
        raise AutostartError(
            f"cannot write {target.location}: {exc.strerror or exc}"
        ) from exc
    return target.location


def disable() -> bool:
    """Stop starting LM Bridge at login; False if it was not set up.

    Raises AutostartError.
    """
    target = mechanism()
    try:
        return target.disable()
    except OSError as exc:
        raise AutostartError(
            f"cannot remove {target.location}: {exc.strerror or exc}"
        ) from exc


def status() -> AutostartStatus:
    """The current state, for `lmbridge autostart status` and the GUI."""
    target = mechanism()
    return AutostartStatus(target.is_enabled(), target.location, target.command())
