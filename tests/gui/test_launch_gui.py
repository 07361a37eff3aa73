"""Open <client> in a terminal: the tray's submenu and the Integrations
page's button start the user's terminal emulator running `lmbridge launch`.

A fake terminal emulator ($TERMINAL, a script) records the command line it
is started with, so the tests see what a real one would run; fake clients
on PATH stand in for the installed CLIs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from fakes.lmstudio_server import FakeLMStudio
from fakes.openai_upstream import FakeOpenAIUpstream
from gui.helpers import app_settings, close_app, eventually, make_app
from launch.support import install_fakes
from lmbridge.gui import message
from lmbridge.gui.integrations.view import IntegrationsPanel

RECORDER = """
import json, os, sys
with open({out!r}, "w") as f:
    json.dump({{"argv": sys.argv[1:], "cwd": os.getcwd()}}, f)
"""


@pytest.fixture
def terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """$TERMINAL: a fake emulator that writes its argv to the returned path;
    PATH: fake `claude` and `cn`, nothing else."""
    out = tmp_path / "terminal-argv.json"
    fake = tmp_path / "bin" / "fake-term"
    fake.parent.mkdir(parents=True, exist_ok=True)
    fake.write_text(f"#!{sys.executable}\n" + RECORDER.format(out=str(out)))
    fake.chmod(0o755)
    install_fakes(tmp_path / "bin", ["claude", "cn"])
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setenv("TERMINAL", str(fake))
    return out


def launched(out: Path) -> list[str]:
    import json

    argv: list[str] = json.loads(out.read_text())["argv"]
    return argv


def started_in(out: Path) -> str:
    import json

    cwd: str = json.loads(out.read_text())["cwd"]
    return cwd


def lmbridge() -> list[str]:
    return [sys.executable, "-m", "lmbridge"]


async def test_the_tray_lists_installed_clients_and_opens_one(
    fake_lm: FakeLMStudio,
    fake_upstream: FakeOpenAIUpstream,
    tmp_path: Path,
    terminal: Path,
) -> None:
    app = await make_app(app_settings(fake_lm, fake_upstream), tmp_path, tray=True)
    try:
        tray = app.tray
        assert tray is not None
        titles = [a.text() for a in tray.menu.actions()]
        assert "Open in a terminal" in titles
        tray.terminal_menu.aboutToShow.emit()
        items = tray.terminal_menu.actions()
        assert [a.text() for a in items] == ["Claude Code", "Continue CLI"]
        items[0].trigger()
        await eventually(terminal.exists, what="the terminal to start")
        config_path = str(app.controller.config_path)
        assert launched(terminal) == [
            "-e",
            *lmbridge(),
            "launch",
            "claude",
            "--config",
            config_path,
            "--hold",
        ]
        assert started_in(terminal) == str(Path.home())  # not the app's folder
    finally:
        await close_app(app)


async def test_the_tray_says_when_no_client_is_installed(
    fake_lm: FakeLMStudio,
    fake_upstream: FakeOpenAIUpstream,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    app = await make_app(app_settings(fake_lm, fake_upstream), tmp_path, tray=True)
    try:
        assert app.tray is not None
        app.tray.terminal_menu.aboutToShow.emit()
        (only,) = app.tray.terminal_menu.actions()
        assert only.text() == "No coding CLI found on PATH"
        assert not only.isEnabled()
    finally:
        await close_app(app)


def integrations(app: object, home: Path) -> IntegrationsPanel:
    panel = app.page("integrations")  # type: ignore[attr-defined]
    assert isinstance(panel, IntegrationsPanel)
    panel.home = home
    return panel


async def test_the_integrations_page_opens_the_client_with_its_model(
    fake_lm: FakeLMStudio,
    fake_upstream: FakeOpenAIUpstream,
    tmp_path: Path,
    terminal: Path,
) -> None:
    app = await make_app(app_settings(fake_lm, fake_upstream), tmp_path)
    try:
        panel = integrations(app, tmp_path / "home")
        panel.select("claude-code")
        panel.model.setCurrentText("qwen/qwen3-coder-30b")
        button = panel.open_button
        assert not button.isHidden()
        assert button.text() == "Open Claude Code in a terminal"
        assert button.isEnabled()
        button.click()
        await eventually(terminal.exists, what="the terminal to start")
        argv = launched(terminal)
        assert argv[argv.index("claude") - 1] == "launch"
        assert argv[-3:] == ["--model", "qwen/qwen3-coder-30b", "--hold"]
        assert ("info", "Opening Claude Code in a terminal") in [
            (str(level), text) for level, text in message.global_bridge.history
        ]

        panel.select("codex")  # not on PATH here
        assert panel.open_button.text() == "Open Codex CLI in a terminal"
        assert not panel.open_button.isEnabled()
        assert "npm install -g @openai/codex" in panel.open_button.toolTip()

        panel.select("openai-sdk")  # a library, nothing to run
        assert panel.open_button.isHidden()
    finally:
        await close_app(app)


async def test_no_terminal_emulator_is_one_clear_message(
    fake_lm: FakeLMStudio,
    fake_upstream: FakeOpenAIUpstream,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    install_fakes(tmp_path / "bin", ["claude"])
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.delenv("TERMINAL", raising=False)
    app = await make_app(app_settings(fake_lm, fake_upstream), tmp_path)
    try:
        panel = integrations(app, tmp_path / "home")
        panel.select("claude-code")
        panel.open_button.click()
        errors = [
            text
            for level, text in message.global_bridge.history
            if level is message.Level.ERROR
        ]
        assert len(errors) == 1
        assert errors[0].startswith(
            "Cannot open Claude Code: No terminal emulator found (tried $TERMINAL, "
            "x-terminal-emulator, gnome-terminal"
        )
        assert "lmbridge launch claude" in errors[0]
    finally:
        await close_app(app)


def test_terminal_command_lines_per_platform(tmp_path: Path) -> None:
    """macOS runs it in a new Terminal window, Windows in a new console,
    elsewhere the first emulator found, with its own run-a-command flag."""
    from lmbridge.launch.terminal import terminal_command

    command = ["lmbridge", "launch", "codex"]
    mac = terminal_command(command, platform="darwin").argv
    assert mac[0] == "osascript"
    assert 'do script "lmbridge launch codex"' in mac[2]
    win = terminal_command(command, platform="win32").argv
    assert win == ("cmd", "/c", "start", "LM Bridge", *command)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("gnome-terminal", "xterm"):
        (bin_dir / name).write_text("#!/bin/sh\n")
        (bin_dir / name).chmod(0o755)
    env = {"PATH": str(bin_dir)}
    linux = terminal_command(command, env=env, platform="linux").argv
    assert linux == (str(bin_dir / "gnome-terminal"), "--", *command)
    env["TERMINAL"] = "xterm -fa Mono"
    chosen = terminal_command(command, env=env, platform="linux").argv
    assert chosen == (str(bin_dir / "xterm"), "-fa", "Mono", "-e", *command)


def test_every_launch_client_has_its_integrations_page() -> None:
    """Each client `lmbridge launch` runs is a tool of the Integrations
    page (its button is there), and no page tool maps to two clients."""
    from lmbridge import integrations
    from lmbridge.launch.clients import CLIENTS

    pages = [client.integration for client in CLIENTS.values()]
    assert set(pages) <= set(integrations.TOOL_IDS)
    assert len(set(pages)) == len(pages)
