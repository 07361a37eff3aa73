"""Start LM Bridge when the user logs in: XDG autostart, LaunchAgent, Run key.

The GUI's Settings and `lmbridge autostart on|off|status` call the same
three functions, `is_enabled()`, `enable()` and `disable()`, which act on
the current platform's mechanism:

- Linux and other XDG desktops: `$XDG_CONFIG_HOME/autostart/lmbridge.desktop`
- macOS: `~/Library/LaunchAgents/dev.lmbridge.LMBridge.plist` (RunAtLoad)
- Windows: the `LM Bridge` value of
  `HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run`

Each mechanism is a small class taking its location as an argument, so tests
run all three on any OS (Windows with an in-memory registry).
"""

from __future__ import annotations

import os
import plistlib
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lmbridge.core.errors import AutostartError as AutostartError  # re-exported
from lmbridge.resources import resource

APP_ID = "lmbridge"
LAUNCH_AGENT_LABEL = "dev.lmbridge.LMBridge"
RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
RUN_VALUE_NAME = "LM Bridge"
DESKTOP_TEMPLATE = "lmbridge.desktop"


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


def _xdg_dir(variable: str, default: str, env: Mapping[str, str] | None) -> Path:
    env = os.environ if env is None else env
    value = env.get(variable, "")
    # The spec: a relative path in the variable is invalid and ignored.
    if value and os.path.isabs(value):
        return Path(value)
    return Path.home() / default


def xdg_config_home(env: Mapping[str, str] | None = None) -> Path:
    """`$XDG_CONFIG_HOME`, else `~/.config`."""
    return _xdg_dir("XDG_CONFIG_HOME", ".config", env)


def xdg_data_home(env: Mapping[str, str] | None = None) -> Path:
    """`$XDG_DATA_HOME`, else `~/.local/share`."""
    return _xdg_dir("XDG_DATA_HOME", ".local/share", env)


# -- desktop entries -------------------------------------------------------


def _exec_quote(arg: str) -> str:
    """One argument of a desktop entry's Exec key, quoted where the spec asks."""
    arg = arg.replace("%", "%%")
    if arg and not any(c in arg for c in " \t\n\"'\\><~|&;$*?#()`"):
        return arg
    escaped = "".join("\\" + c if c in '"`$\\' else c for c in arg)
    return f'"{escaped}"'


def exec_line(command: Sequence[str]) -> str:
    """`command` as the value of a desktop entry's Exec key."""
    # Exec values are also read as desktop-entry strings, where a backslash
    # escapes: double each one once more.
    return " ".join(_exec_quote(a) for a in command).replace("\\", "\\\\")


def desktop_entry(command: Sequence[str], *, autostart: bool = False) -> str:
    """The text of LM Bridge's .desktop file (resources/lmbridge.desktop).

    With `autostart`, it is the variant for `~/.config/autostart`.
    """
    template = resource(DESKTOP_TEMPLATE).read_text(encoding="utf-8")
    text = template.replace("@EXEC@", exec_line(command))
    if autostart:
        text = text.rstrip("\n") + "\nX-GNOME-Autostart-enabled=true\n"
    return text


# -- the three mechanisms ---------------------------------------------------


class Mechanism(Protocol):
    """One platform's way of starting a program at login."""

    @property
    def location(self) -> str:
        """Where the setting lives (a path, or the registry value)."""
        ...

    def is_enabled(self) -> bool: ...

    def enable(self, command: Sequence[str]) -> None: ...

    def disable(self) -> bool:
        """Remove the entry; False if there was none."""
        ...

    def command(self) -> list[str] | None:
        """The command registered now, if any (as far as it can be read)."""
        ...


@dataclass
class XdgAutostart:
    """An XDG autostart desktop entry (GNOME, KDE, Xfce, ...)."""

    autostart_dir: Path

    @property
    def path(self) -> Path:
        return self.autostart_dir / f"{APP_ID}.desktop"

    @property
    def location(self) -> str:
        return str(self.path)

    def is_enabled(self) -> bool:
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError:
            return False
        keys = _desktop_keys(text)
        return (
            keys.get("Hidden", "false").lower() != "true"
            and keys.get("X-GNOME-Autostart-enabled", "true").lower() != "false"
        )

    def enable(self, command: Sequence[str]) -> None:
        self.autostart_dir.mkdir(parents=True, exist_ok=True)
        _write_atomic(self.path, desktop_entry(command, autostart=True))

    def disable(self) -> bool:
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True

    def command(self) -> list[str] | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError:
            return None
        value = _desktop_keys(text).get("Exec")
        return [value] if value else None


@dataclass
class LaunchAgent:
    """A per-user launchd agent that runs LM Bridge once at login."""

    agents_dir: Path

    @property
    def path(self) -> Path:
        return self.agents_dir / f"{LAUNCH_AGENT_LABEL}.plist"

    @property
    def location(self) -> str:
        return str(self.path)

    @staticmethod
    def plist(command: Sequence[str]) -> bytes:
        """The agent's property list (XML)."""
        return plistlib.dumps(
            {
                "Label": LAUNCH_AGENT_LABEL,
                "ProgramArguments": list(command),
                "RunAtLoad": True,
                "KeepAlive": False,
                "ProcessType": "Interactive",
                "LimitLoadToSessionType": "Aqua",
            },
            fmt=plistlib.FMT_XML,
        )

    def is_enabled(self) -> bool:
        data = self._load()
        return data is not None and not data.get("Disabled", False)

    def enable(self, command: Sequence[str]) -> None:
        self.agents_dir.mkdir(parents=True, exist_ok=True)
        _write_atomic(self.path, self.plist(command))

    def disable(self) -> bool:
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True

    def command(self) -> list[str] | None:
        data = self._load()
        args = data.get("ProgramArguments") if data else None
        return [str(a) for a in args] if isinstance(args, list) else None

    def _load(self) -> dict[str, object] | None:
        try:
            with self.path.open("rb") as fp:
                data = plistlib.load(fp)
        except (OSError, plistlib.InvalidFileException, ValueError):
            return None
        return data if isinstance(data, dict) else None


class Registry(Protocol):
    """The few registry operations the Run key needs (HKEY_CURRENT_USER)."""

    def get(self, key: str, name: str) -> str | None: ...

    def set(self, key: str, name: str, value: str) -> None: ...

    def delete(self, key: str, name: str) -> bool: ...


class WinRegistry:
    """`Registry` over `winreg`, HKEY_CURRENT_USER."""

    def get(self, key: str, name: str) -> str | None:
        if sys.platform != "win32":
            raise AutostartError("the Windows registry exists only on Windows")
        import winreg

        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, key) as handle:
                value, _kind = winreg.QueryValueEx(handle, name)
        except FileNotFoundError:
            return None
        return str(value)

    def set(self, key: str, name: str, value: str) -> None:
        if sys.platform != "win32":
            raise AutostartError("the Windows registry exists only on Windows")
        import winreg

        with winreg.CreateKeyEx(
            winreg.HKEY_CURRENT_USER, key, 0, winreg.KEY_SET_VALUE
        ) as handle:
            winreg.SetValueEx(handle, name, 0, winreg.REG_SZ, value)

    def delete(self, key: str, name: str) -> bool:
        if sys.platform != "win32":
            raise AutostartError("the Windows registry exists only on Windows")
        import winreg

        try:
            with winreg.OpenKey(
                winreg.HKEY_CURRENT_USER, key, 0, winreg.KEY_SET_VALUE
            ) as handle:
                winreg.DeleteValue(handle, name)
        except FileNotFoundError:
            return False
        return True


@dataclass
class RunKey:
    """The `LM Bridge` value under HKCU's Run key."""

    registry: Registry

    @property
    def location(self) -> str:
        return f"HKEY_CURRENT_USER\\{RUN_KEY}\\{RUN_VALUE_NAME}"

    @staticmethod
    def value(command: Sequence[str]) -> str:
        """The command line stored in the Run value."""
        return subprocess.list2cmdline(list(command))

    def is_enabled(self) -> bool:
        return bool(self.registry.get(RUN_KEY, RUN_VALUE_NAME))

    def enable(self, command: Sequence[str]) -> None:
        self.registry.set(RUN_KEY, RUN_VALUE_NAME, self.value(command))

    def disable(self) -> bool:
        return self.registry.delete(RUN_KEY, RUN_VALUE_NAME)

    def command(self) -> list[str] | None:
        value = self.registry.get(RUN_KEY, RUN_VALUE_NAME)
        return [value] if value else None


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


# -- helpers -------------------------------------------------------------------


def _desktop_keys(text: str) -> dict[str, str]:
    """Keys of the [Desktop Entry] group (unlocalised)."""
    keys: dict[str, str] = {}
    group = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            group = line[1:-1]
            continue
        if group == "Desktop Entry" and "=" in line:
            key, _, value = line.partition("=")
            keys[key.strip()] = value.strip()
    return keys


def _write_atomic(path: Path, data: str | bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    if isinstance(data, str):
        tmp.write_text(data, encoding="utf-8")
    else:
        tmp.write_bytes(data)
    os.replace(tmp, path)
