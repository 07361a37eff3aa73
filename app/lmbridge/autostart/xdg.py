"""XDG desktops (Linux, BSDs): base directories, desktop entries, autostart.

`XdgAutostart` is the start-at-login mechanism there: an entry in
`$XDG_CONFIG_HOME/autostart`. The desktop entry it writes is also the
application-menu entry that `lmbridge install-desktop` puts in
`$XDG_DATA_HOME/applications` (`desktop_entry`, from
resources/lmbridge.desktop).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lmbridge.autostart.base import write_atomic
from lmbridge.resources import resource

APP_ID = "lmbridge"
DESKTOP_TEMPLATE = "lmbridge.desktop"


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


# -- the mechanism -----------------------------------------------------------


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
        write_atomic(self.path, desktop_entry(command, autostart=True))

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
