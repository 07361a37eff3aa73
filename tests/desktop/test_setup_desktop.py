"""First-run setup in the real app on the X desktop: opened from the
Overview, clicked through with real X input, it writes Claude Code's and
Codex's files under the session's HOME and tests both tools through the
proxy against the fake LM Studio."""

from __future__ import annotations

import json
import shutil
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from desktop.conftest import LaunchApp
from desktop.xdesktop import DesktopApp, DesktopError, XSession, until

QWEN = "qwen/qwen3-coder-30b"


@pytest.fixture
def tool_files(x_session: XSession) -> Iterator[tuple[Path, Path]]:
    """Claude Code's and Codex's files in the session's HOME, removed after
    the test (the HOME is shared by the tier's tests)."""
    folders = (x_session.home / ".claude", x_session.home / ".codex")
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    yield folders[0] / "settings.json", folders[1] / "config.toml"
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def next_page(app: DesktopApp) -> None:
    until(
        lambda: (w := app.visible(text="Next >")) is not None and w["enabled"],
        what="Next to be enabled",
    )
    app.click(text="Next >")


def choose(app: DesktopApp, combo: str, text: str) -> None:
    """Open a combo box's list with a click and click an entry of it (again
    if the list did not open: the page may still have been laying out)."""
    for _attempt in range(3):
        app.click(name=combo)
        try:
            until(lambda: app.visible(view=f"{combo}-list", text=text), timeout=3)
        except DesktopError:
            continue
        app.click(view=f"{combo}-list", text=text)
        return
    raise DesktopError(f"the list of {combo} did not open")


def test_the_wizard_writes_claude_codes_and_codex_files(
    launch_app: LaunchApp,
    x_session: XSession,
    tool_files: tuple[Path, Path],
    screenshot: Callable[[str], Path],
) -> None:
    claude, codex = tool_files
    app = launch_app()
    until(app.main_window, what="the app's window")
    app.click(text="Set up…")
    until(lambda: app.visible(contains="LM Studio is ready"), what="LM Studio found")
    screenshot("setup-1-lmstudio")
    next_page(app)

    # Models: Qwen is suggested for Claude Code; choose it for Codex too.
    until(lambda: app.visible(view="setup-models", text="Qwen3 Coder 30B"))
    choose(app, "setup-model-codex", f"Qwen3 Coder 30B  ({QWEN})")
    screenshot("setup-2-models")
    next_page(app)
    # Codex's file is planned: the choice took.
    until(lambda: app.visible(contains=f"Write {codex}"), what="the review")
    screenshot("setup-3-review")
    next_page(app)  # writes
    next_page(app)  # past the optional Azure page

    # The last page: the files written, one result line per tool.
    until(
        lambda: app.visible(contains="All 2 tools work through LM Bridge."),
        timeout=60,
        what="both tools' tests",
    )
    assert app.visible(contains=f"Claude Code: {claude} (new file)")
    assert app.visible(contains=f"Codex CLI: {codex} (new file)")
    assert app.visible(contains="Claude Code works through LM Bridge")
    assert app.visible(contains=f"Codex CLI works through LM Bridge ({QWEN})")
    screenshot("setup-4-test")
    app.click(text="Finish")
    until(lambda: not app.visible(text="Finish"), what="the wizard to close")

    env = json.loads(claude.read_text())["env"]
    assert env["ANTHROPIC_BASE_URL"] == f"http://127.0.0.1:{app.port}"
    assert env["ANTHROPIC_DEFAULT_SONNET_MODEL"] == QWEN
    settings = tomllib.loads(codex.read_text())
    assert settings["model"] == QWEN
    provider = settings["model_providers"][settings["model_provider"]]
    assert provider["base_url"] == f"http://127.0.0.1:{app.port}/v1"
    config_text = (app.lmbridge_home / "config.toml").read_text()
    assert config_text.count("[[route]]") >= 4 and "route = [" not in config_text
