"""Opening `lmbridge launch <client>` in the user's terminal emulator.

The tray menu and the Integrations page call `terminal_command`, which
builds the command line and says in one sentence when no terminal
emulator is found; they start it detached. The emulator is looked for in
this order: $TERMINAL, x-terminal-emulator (Debian's alternative),
gnome-terminal, konsole, xfce4-terminal, kitty, alacritty, wezterm,
xterm; macOS runs it in a new Terminal window (`osascript`, as `open -a
Terminal` only opens files), Windows a new
console with `cmd /c start`.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# Linux emulators and the argument that makes each run a command (the
# command's words follow it).
EMULATORS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("x-terminal-emulator", ("-e",)),
    ("gnome-terminal", ("--",)),
    ("konsole", ("-e",)),
    ("xfce4-terminal", ("-x",)),
    ("kitty", ()),
    ("alacritty", ("-e",)),
    ("wezterm", ("start", "--")),
    ("xterm", ("-e",)),
)
_KNOWN = dict(EMULATORS)


class NoTerminal(Exception):
    """No terminal emulator was found; the message names what was tried."""


@dataclass(frozen=True)
class TerminalCommand:
    """A command line that opens a terminal running `lmbridge launch`."""

    argv: tuple[str, ...]
    terminal: str  # the emulator's name, for messages

    def shown(self) -> str:
        return shlex.join(self.argv)


def launch_argv(
    client: str, config: Path | None = None, executable: Sequence[str] | None = None
) -> list[str]:
    """`lmbridge launch <client>` as this installation runs it."""
    base = list(executable) if executable else _lmbridge()
    argv = [*base, "launch", client]
    if config is not None:
        argv += ["--config", str(config)]
    return argv


def _lmbridge() -> list[str]:
    """How to run this LM Bridge: the frozen executable, else this Python."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    return [sys.executable, "-m", "lmbridge"]


def terminal_command(
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    platform: str = sys.platform,
) -> TerminalCommand:
    """The command line that opens a terminal window running `command`.

    Raises NoTerminal when none is found (Linux and other Unixes only).
    """
    env = os.environ if env is None else env
    if platform == "darwin":
        # `open -a Terminal` only opens files; Terminal's `do script` runs a
        # command line in a new window.
        line = _applescript(shlex.join(command))
        script = f'tell application "Terminal" to do script {line}'
        return TerminalCommand(
            (
                "osascript",
                "-e",
                script,
                "-e",
                'tell application "Terminal" to activate',
            ),
            "Terminal",
        )
    if platform == "win32":
        # `start` takes its first quoted word as the window's title (the
        # space makes Windows quote it).
        return TerminalCommand(("cmd", "/c", "start", "LM Bridge", *command), "cmd")
    path = env.get("PATH")
    chosen = env.get("TERMINAL", "").strip()
    if chosen:
        words = shlex.split(chosen)
        found = shutil.which(words[0], path=path)
        if found is not None:
            name = Path(words[0]).name
            flag = _KNOWN.get(name, ("-e",))
            return TerminalCommand((found, *words[1:], *flag, *command), name)
    for name, flag in EMULATORS:
        found = shutil.which(name, path=path)
        if found is not None:
            return TerminalCommand((found, *flag, *command), name)
    tried = ", ".join(["$TERMINAL", *(name for name, _ in EMULATORS)])
    raise NoTerminal(
        f"No terminal emulator found (tried {tried}); run "
        f"`{shlex.join(command)}` in a terminal yourself, or set $TERMINAL"
    )


def _applescript(text: str) -> str:
    """`text` as an AppleScript string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
