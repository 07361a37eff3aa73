"""Start at login and the application-menu entry.

Linux runs for real against a temporary XDG_CONFIG_HOME / XDG_DATA_HOME;
the macOS LaunchAgent and the Windows Run key are checked on what they
write (a property list; a registry value, in an in-memory registry).
"""

from __future__ import annotations

import os
import plistlib
import subprocess
import sys
from pathlib import Path

import pytest

from lmbridge import autostart
from lmbridge.autostart import windows
from lmbridge.autostart import xdg as xdg_desktop
from lmbridge.autostart.macos import LaunchAgent
from lmbridge.autostart.windows import RunKey
from lmbridge.autostart.xdg import XdgAutostart
from lmbridge.cli import desktop as cli_desktop
from lmbridge.resources import resource


@pytest.fixture
def xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    return tmp_path


def keys(text: str) -> dict[str, str]:
    return xdg_desktop._desktop_keys(text)


def unescape_exec(value: str) -> list[str]:
    """An Exec value back to argv, by the Desktop Entry spec's rules."""
    value = value.replace("\\\\", "\\")  # the string-level escape first
    args: list[str] = []
    current: list[str] = []
    quoted = started = False
    chars = iter(value)
    for c in chars:
        if quoted:
            if c == "\\":
                current.append(next(chars))
            elif c == '"':
                quoted = False
            else:
                current.append(c)
        elif c == '"':
            quoted = started = True
        elif c == " ":
            if started or current:
                args.append("".join(current))
            current, started = [], False
        else:
            current.append(c)
    if started or current:
        args.append("".join(current))
    return [a.replace("%%", "%") for a in args]


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="XDG desktops")
def test_enable_disable_on_linux(xdg: Path) -> None:
    path = xdg / "config" / "autostart" / "lmbridge.desktop"
    assert not autostart.is_enabled()
    assert autostart.status().location == str(path)
    where = autostart.enable(["/opt/LM Bridge/lmbridge"])
    assert where == str(path)
    assert autostart.is_enabled()
    entry = keys(path.read_text())
    assert entry["Type"] == "Application"
    assert entry["Name"] == "LM Bridge"
    assert entry["X-GNOME-Autostart-enabled"] == "true"
    assert unescape_exec(entry["Exec"]) == ["/opt/LM Bridge/lmbridge"]
    state = autostart.status()
    assert state.enabled
    assert state.command == [entry["Exec"]]
    autostart.enable(["/opt/LM Bridge/lmbridge"])  # again: same file
    assert sorted(p.name for p in path.parent.iterdir()) == ["lmbridge.desktop"]
    assert autostart.disable() is True
    assert not path.exists()
    assert not autostart.is_enabled()
    assert autostart.disable() is False


def test_a_hidden_entry_counts_as_off(tmp_path: Path) -> None:
    target = XdgAutostart(tmp_path)
    target.enable(["lmbridge"])
    target.path.write_text(target.path.read_text() + "Hidden=true\n")
    assert not target.is_enabled()


def test_a_relative_xdg_config_home_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/dir")
    assert xdg_desktop.xdg_config_home() == Path.home() / ".config"


@pytest.mark.parametrize(
    "argv",
    [
        ["/usr/bin/lmbridge"],
        ["/home/me/My Apps/lmbridge", "--flag"],
        ['/odd/100%/$HOME/back\\slash/"quoted"/lmbridge'],
        [sys.executable, "-m", "lmbridge"],
    ],
)
def test_exec_lines_read_back_as_the_command(argv: list[str]) -> None:
    assert unescape_exec(xdg_desktop.exec_line(argv)) == argv


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="XDG desktops")
def test_the_autostart_command_starts_this_lmbridge(xdg: Path) -> None:
    autostart.enable()
    path = xdg / "config" / "autostart" / "lmbridge.desktop"
    argv = unescape_exec(keys(path.read_text())["Exec"])
    result = subprocess.run(
        [*argv, "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("lmbridge ")


def test_launch_agent_plist(tmp_path: Path) -> None:
    agent = LaunchAgent(tmp_path / "LaunchAgents")
    assert not agent.is_enabled()
    command = ["/Applications/LM Bridge.app/Contents/MacOS/lmbridge"]
    agent.enable(command)
    assert agent.path == tmp_path / "LaunchAgents" / "dev.lmbridge.LMBridge.plist"
    with agent.path.open("rb") as fp:
        data = plistlib.load(fp)
    assert data == {
        "Label": "dev.lmbridge.LMBridge",
        "ProgramArguments": command,
        "RunAtLoad": True,
        "KeepAlive": False,
        "ProcessType": "Interactive",
        "LimitLoadToSessionType": "Aqua",
    }
    assert agent.is_enabled()
    assert agent.command() == command
    assert agent.disable() is True
    assert not agent.is_enabled()
    assert agent.disable() is False


class MemoryRegistry:
    """HKEY_CURRENT_USER as a dict: {(key, name): value}."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str], str] = {}

    def get(self, key: str, name: str) -> str | None:
        return self.values.get((key, name))

    def set(self, key: str, name: str, value: str) -> None:
        self.values[(key, name)] = value

    def delete(self, key: str, name: str) -> bool:
        return self.values.pop((key, name), None) is not None


def test_windows_run_key_value() -> None:
    registry = MemoryRegistry()
    run = RunKey(registry)
    assert not run.is_enabled()
    run.enable([r"C:\Program Files\LM Bridge\lmbridge.exe"])
    key = r"Software\Microsoft\Windows\CurrentVersion\Run"
    assert registry.values == {
        (key, "LM Bridge"): r'"C:\Program Files\LM Bridge\lmbridge.exe"'
    }
    assert run.is_enabled()
    assert run.location == rf"HKEY_CURRENT_USER\{key}\LM Bridge"
    run.enable([r"C:\Python\pythonw.exe", "-m", "lmbridge"])
    assert registry.values[(key, "LM Bridge")] == r"C:\Python\pythonw.exe -m lmbridge"
    assert run.disable() is True
    assert not run.is_enabled()
    assert run.disable() is False


def test_the_mechanism_per_platform() -> None:
    assert isinstance(autostart.mechanism("win32"), RunKey)
    mac = autostart.mechanism("darwin")
    assert isinstance(mac, LaunchAgent)
    assert mac.agents_dir == Path.home() / "Library" / "LaunchAgents"
    assert isinstance(autostart.mechanism("linux"), XdgAutostart)
    assert isinstance(autostart.mechanism("freebsd14"), XdgAutostart)


def test_the_windows_registry_is_not_touched_elsewhere() -> None:
    if sys.platform == "win32":
        pytest.skip("this is Windows")
    with pytest.raises(autostart.AutostartError, match="only on Windows"):
        windows.WinRegistry().get(windows.RUN_KEY, windows.RUN_VALUE_NAME)


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="XDG desktops")
def test_the_autostart_command_line(xdg: Path) -> None:
    env = {**os.environ}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "lmbridge", "autostart", *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env=env,
        )

    assert run("status").stdout.strip() == "off"
    on = run("on")
    assert on.returncode == 0, on.stderr
    path = xdg / "config" / "autostart" / "lmbridge.desktop"
    assert str(path) in on.stdout
    assert run("status").stdout.startswith(f"on: {path}")
    assert "no longer" in run("off").stdout
    assert run("status").stdout.strip() == "off"


# -- the application-menu entry ------------------------------------------------


def test_install_and_uninstall_the_desktop_entry(tmp_path: Path) -> None:
    done = cli_desktop.install_desktop(["/opt/lmbridge/lmbridge"], data_home=tmp_path)
    entry = tmp_path / "applications" / "lmbridge.desktop"
    icon = tmp_path / "icons" / "hicolor" / "scalable" / "apps" / "lmbridge.svg"
    assert done.entry == entry
    assert done.icon == icon
    values = keys(entry.read_text())
    assert values["Exec"] == "/opt/lmbridge/lmbridge"
    assert values["Icon"] == "lmbridge"
    assert values["Terminal"] == "false"
    assert "X-GNOME-Autostart-enabled" not in values
    assert icon.read_bytes() == resource("icons/app.svg").read_bytes()
    assert set(cli_desktop.uninstall_desktop(tmp_path)) == {entry, icon}
    assert not entry.exists() and not icon.exists()
    assert cli_desktop.uninstall_desktop(tmp_path) == []


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="XDG desktops")
def test_install_desktop_command(xdg: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lmbridge", "install-desktop"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    entry = xdg / "data" / "applications" / "lmbridge.desktop"
    assert f"installed {entry}" in result.stdout
    removed = subprocess.run(
        [sys.executable, "-m", "lmbridge", "uninstall-desktop"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert f"removed {entry}" in removed.stdout
    assert not entry.exists()


def test_the_desktop_template_is_a_valid_entry() -> None:
    text = resource("lmbridge.desktop").read_text()
    values = keys(text)
    for key in ("Type", "Name", "Exec", "Icon", "Categories"):
        assert key in values, key
    assert values["Exec"] == "@EXEC@"
    assert values["Categories"].endswith(";")
