"""Open a coding CLI on LM Bridge in a terminal window.

The tray menu's "Open in a terminal" and the Integrations page's button
call `open_client`: a terminal emulator (`lmbridge.launch.terminal`)
running `lmbridge launch <client> --hold` with this app's config file and
the chosen model, started detached, so the client outlives nothing of
ours and closing it leaves the app running. No terminal emulator found:
one error message saying what was tried and what to run.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QProcess

from lmbridge.gui import message
from lmbridge.launch.clients import CLIENTS, LaunchClient, installed
from lmbridge.launch.terminal import NoTerminal, launch_argv, terminal_command


def installed_clients() -> list[LaunchClient]:
    """The clients found on PATH, in `lmbridge launch --list`'s order."""
    return [client for client, _where in installed()]


def client_for_tool(tool: str) -> LaunchClient | None:
    """The launchable client behind an Integrations page tool, if any."""
    return next((c for c in CLIENTS.values() if c.integration == tool), None)


def command_for(client: str, config: Path | None, model: str = "") -> list[str]:
    """The terminal's command line that runs `lmbridge launch <client>`."""
    argv = launch_argv(client, config)
    if model:
        argv += ["--model", model]
    return list(terminal_command([*argv, "--hold"]).argv)


def open_client(client: str, config: Path | None, model: str = "") -> bool:
    """Open a terminal running the client; False (and an error message)
    when it cannot be opened."""
    name = CLIENTS[client].name
    try:
        argv = command_for(client, config, model)
    except NoTerminal as exc:
        message.error(f"Cannot open {name}: {exc}")
        return False
    # In the home folder, not wherever the app was started from: the client
    # asks whether to trust its working folder.
    started, _pid = QProcess.startDetached(argv[0], argv[1:], str(Path.home()))
    if not started:
        message.error(f"Cannot open {name}: {argv[0]} did not start")
        return False
    message.info(f"Opening {name} in a terminal")
    return True
