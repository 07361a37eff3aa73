"""First-run setup, driven from start to finish against the fake LM Studio:
found and serving, a model per tool, the routes and the tools' config files
written after the diff (listed with their backups), and a real request
through the proxy for every tool configured. Without LM Studio, Next stays
disabled and the page says why; a re-run starts from what is configured."""

from __future__ import annotations

import json
import socket
import stat
import tomllib
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication, QLabel, QPlainTextEdit, QWizard

from fakes.lmstudio_data import DEFAULT_DOWNLOADED
from fakes.lmstudio_server import FakeLMStudio
from gui.helpers import close_app, eventually, make_app, table_text
from lmbridge import config
from lmbridge.gui import message
from lmbridge.gui.app import LMBridgeApp
from lmbridge.gui.overview.view import OverviewPanel
from lmbridge.gui.setup.manager import written_lines
from lmbridge.gui.setup.wizard import SetupWizard
from lmbridge.lmstudio import install

QWEN = "qwen/qwen3-coder-30b"
GEMMA = "google/gemma-3-4b"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's home with LM Studio installed (its home and its `lms` CLI);
    the tools' config files go here too."""
    home = tmp_path / "home"
    (home / ".lmstudio" / "bin").mkdir(parents=True)
    lms = home / ".lmstudio" / "bin" / "lms"
    log = tmp_path / "lms-calls.txt"
    lms.write_text(f'#!/bin/sh\necho "$@" >> "{log}"\necho "Starting server"\n')
    lms.chmod(lms.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("LMBRIDGE_DISCOVERY_HOME", str(home))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    for name in ("CLAUDE_CONFIG_DIR", "CODEX_HOME", "CONTINUE_GLOBAL_DIR"):
        monkeypatch.delenv(name, raising=False)
    return home


FRESH = (
    '[server]\nport = 0\n\n[[upstream]]\nname = "local"\nkind = "lmstudio"\n'
    'base_url = "{url}"\n'
)


def fresh_settings(base_url: str) -> config.Settings:
    """A new user's settings: LM Studio only (at the fake's address), no routes."""
    return config.parse(FRESH.format(url=base_url))


def wizard_of(app: LMBridgeApp) -> SetupWizard:
    assert app.setup is not None
    return app.setup


async def test_first_run_from_nothing_to_an_answer(
    fake_lm: FakeLMStudio, home: Path, tmp_path: Path
) -> None:
    claude_file = home / ".claude" / "settings.json"
    claude_file.parent.mkdir()
    claude_file.write_text('{"theme": "dark"}\n')  # the user's own, kept
    app = await make_app(fresh_settings(fake_lm.base_url), tmp_path, setup=None)
    try:
        wizard = wizard_of(app)  # no settings file: setup opened by itself
        assert wizard.isVisible()

        # LM Studio: installed, running, its server on.
        page = wizard.lmstudio_page
        await eventually(lambda: page.found is not None, what="LM Studio")
        assert page.found is not None and page.found.ready
        assert page.installed.kind == page.running.kind == page.server.kind == "ok"
        assert page.start_button.isHidden()

        # Models: the language models with their badges; Qwen is suggested.
        wizard.next()
        models = wizard.models_page
        await eventually(lambda: models.table.rowCount() == 2, what="the models")
        assert table_text(models.table, 0, 3) == "tools"
        assert table_text(models.table, 1, 4) == "vision"
        assert models.combos["sonnet"].currentData() == QWEN
        models.pick("codex", QWEN)
        models.pick("ide", GEMMA)
        models.context.setValue(16384)
        assert models.isComplete()

        # Review: the diffs, then Next writes them.
        wizard.next()
        review = wizard.review_page
        texts = [w.toPlainText() for w in review.findChildren(QPlainTextEdit)]
        assert any("claude-*sonnet*" in t for t in texts)
        assert any("ANTHROPIC_DEFAULT_SONNET_MODEL" in t for t in texts)
        assert set(review.writes) == {"claude-code", "codex", "continue"}
        cancel = wizard.button(QWizard.WizardButton.CancelButton)
        assert cancel.text() == "Cancel"  # nothing written yet
        wizard.next()
        assert wizard.currentPage() is wizard.azure_page
        # Written: the button no longer promises to undo anything.
        assert cancel.text() == "Close" and "written" in cancel.toolTip()
        saved = config.load(app.controller.config_path)
        assert [(r.model, r.target) for r in saved.route][:3] == [
            ("claude-*opus*", QWEN),
            ("claude-*sonnet*", QWEN),
            ("claude-*haiku*", QWEN),
        ]
        assert {r.model for r in saved.route} >= {QWEN, GEMMA}
        assert saved.lmstudio.load_context_length == 16384
        assert saved.lmstudio.min_context == 16384
        claude = json.loads((home / ".claude" / "settings.json").read_text())
        assert claude["env"]["ANTHROPIC_DEFAULT_SONNET_MODEL"] == QWEN
        assert claude["env"]["ANTHROPIC_BASE_URL"].startswith("http://127.0.0.1:")
        codex = tomllib.loads((home / ".codex" / "config.toml").read_text())
        assert codex["model"] == QWEN
        assert app.controller.settings.route == saved.route

        # Azure: optional; none configured.
        labels = [w.text() for w in wizard.azure_page.findChildren(QLabel)]
        assert any("No Azure AI Foundry upstream" in t for t in labels)

        # Test: the files written with their backups, then a real request
        # per tool; LM Studio loads the model with the chosen context.
        wizard.next()
        test = wizard.test_page
        files = test.files_list.text()
        backups = list(claude_file.parent.glob("settings.json.lmbridge-backup-*"))
        assert len(backups) == 1 and backups[0].read_text() == '{"theme": "dark"}\n'
        assert f"Claude Code: {claude_file} (backup: {backups[0]})" in files
        assert f"Codex CLI: {home / '.codex' / 'config.toml'} (new file)" in files
        assert str(app.controller.config_path) in files
        assert "IDE plugins (Continue): " in files
        await eventually(lambda: test.ok, timeout=30, what="the test requests")
        assert list(test.lines) == ["claude-code", "codex", "continue"]
        lines = {tool: line.status.plain for tool, line in test.lines.items()}
        assert lines["claude-code"].startswith("Claude Code works through LM Bridge")
        assert lines["codex"].startswith(f"Codex CLI works through LM Bridge ({QWEN})")
        assert lines["continue"].startswith("IDE plugins (Continue) works")
        assert GEMMA in lines["continue"]
        assert all(line.status.kind == "ok" for line in test.lines.values())
        assert test.result.plain == "All 3 tools work through LM Bridge."
        assert QWEN in fake_lm.load_requests
        assert fake_lm.load_configs[0]["llm.load.contextLength"] == 16384
        await eventually(lambda: len(app.log.rows) == 3, what="the log rows")
        assert sorted((r.path, r.model) for r in app.log.rows) == [
            ("/v1/chat/completions", GEMMA),
            ("/v1/messages", QWEN),
            ("/v1/responses", QWEN),
        ]

        wizard.accept()
        await eventually(lambda: app.setup is None, what="the wizard to close")
    finally:
        await close_app(app)

    # Setup is shown once; it opens again from the Overview.
    again = await make_app(fresh_settings(fake_lm.base_url), tmp_path, setup=None)
    try:
        assert again.setup is None
        overview = again.page("overview")
        assert isinstance(overview, OverviewPanel)
        overview.setup_button.click()
        assert again.setup is not None and again.setup.isVisible()
    finally:
        await close_app(again)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_server_off_is_started_with_lms(home: Path, tmp_path: Path) -> None:
    port = closed_port()
    app = await make_app(fresh_settings(f"http://127.0.0.1:{port}"), tmp_path)
    try:
        wizard = app.open_setup(home)
        page = wizard.lmstudio_page
        await eventually(lambda: page.found is not None, what="the check")
        assert page.found is not None
        assert page.found.installed and not page.found.server_on
        assert page.found.lms == str(home / ".lmstudio" / "bin" / "lms")
        assert not page.start_button.isHidden()
        assert "lms server start" in page.next_step.text()
        assert "`" not in page.next_step.text()  # no raw Markdown
        # Next is disabled, and both the page and Next's tool tip say why.
        next_button = wizard.button(QWizard.WizardButton.NextButton)
        assert not page.isComplete() and not next_button.isEnabled()
        reason = f"once LM Studio's server answers at http://127.0.0.1:{port}"
        assert reason in page.why.plain and page.why.isVisibleTo(page)
        assert reason in next_button.toolTip()
        page.start_button.click()
        calls = tmp_path / "lms-calls.txt"
        await eventually(calls.exists, what="lms to run")
        assert calls.read_text().split() == ["server", "start", "--port", str(port)]
        await eventually(
            lambda: install.CLICK_TO_START in page.next_step.text(),
            what="the hint after lms",
        )
    finally:
        await close_app(app)


async def test_not_installed_says_where_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "empty-home"))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    found = await install.check(
        f"http://127.0.0.1:{closed_port()}",
        home=tmp_path / "empty-home",
        sdk_ports=(),
        fallback=f"127.0.0.1:{closed_port()}",  # not this machine's LM Studio
    )
    assert not found.installed and not found.server_on and found.lms is None
    assert install.DOWNLOAD_URL in found.next_step()


async def next_to_models(app: LMBridgeApp, home: Path) -> SetupWizard:
    wizard = app.open_setup(home)
    page = wizard.lmstudio_page
    await eventually(page.isComplete, what="LM Studio's server")
    assert wizard.button(QWizard.WizardButton.NextButton).toolTip() == ""
    assert page.why.isHidden()
    wizard.next()
    assert wizard.currentPage() is wizard.models_page
    return wizard


async def test_no_language_model_says_so_instead_of_an_empty_table(
    fake_lm: FakeLMStudio, home: Path, tmp_path: Path
) -> None:
    fake_lm.downloaded[:] = [m for m in fake_lm.downloaded if m["type"] != "llm"]
    app = await make_app(fresh_settings(fake_lm.base_url), tmp_path)
    try:
        wizard = await next_to_models(app, home)
        page = wizard.models_page
        await eventually(lambda: page.setup.manager.listed, what="the list")
        assert page.table.isHidden()
        assert "LM Studio has no language model yet" in page.empty.plain
        assert page.empty.kind == "warning" and not page.retry.isHidden()
        next_button = wizard.button(QWizard.WizardButton.NextButton)
        assert not next_button.isEnabled()
        assert "once LM Studio lists a language model" in next_button.toolTip()

        # A model downloaded meanwhile shows after "List again".
        fake_lm.downloaded.append(
            {**DEFAULT_DOWNLOADED[0], "modelKey": QWEN, "path": QWEN}
        )
        page.retry.click()
        await eventually(lambda: page.table.rowCount() == 1, what="the new model")
        assert page.table.isVisibleTo(page) and page.empty.isHidden()
        assert page.combos["sonnet"].currentData() == QWEN
        assert next_button.isEnabled() and next_button.toolTip() == ""
        for combo in page.combos.values():
            combo.setCurrentIndex(0)
        assert not next_button.isEnabled()
        assert page.why.plain == "Choose a model for at least one tool to go on."
        assert next_button.toolTip() == page.why.plain
    finally:
        await close_app(app)


async def test_a_rerun_starts_from_the_current_configuration(
    fake_lm: FakeLMStudio, home: Path, tmp_path: Path
) -> None:
    """Not from defaults: the routes in config.toml and the models the tools'
    files name now are preselected, with the configured load context. What
    it writes changes only its keys: the user's comments and the Codex
    provider they chose stay, with a note, and backups."""
    config_file = tmp_path / "config.toml"
    config_file.write_text(
        "# my own notes about this file\n"
        f"{FRESH.format(url=fake_lm.base_url)}\n"
        '[[route]]\nmodel = "claude-*opus*"  # the big one\nupstream = "local"\n'
        f'target = "{GEMMA}"\n\n'
        "[lmstudio]\nload_context_length = 12288\nmin_context = 8192\n"
    )
    claude = home / ".claude" / "settings.json"
    claude.parent.mkdir()
    claude.write_text(json.dumps({"env": {"ANTHROPIC_DEFAULT_SONNET_MODEL": GEMMA}}))
    codex = home / ".codex" / "config.toml"
    codex.parent.mkdir()
    codex.write_text(f'# codex notes\nmodel = "{GEMMA}"\nmodel_provider = "openai"\n')
    app = await make_app(config.load(config_file), tmp_path)
    try:
        wizard = await next_to_models(app, home)
        page = wizard.models_page
        await eventually(lambda: page.table.rowCount() == 2, what="the models")
        picked = {slot: combo.currentData() for slot, combo in page.combos.items()}
        # The largest tool model (Qwen) would be the first-run suggestion.
        assert picked == {
            "opus": GEMMA,
            "sonnet": GEMMA,
            "haiku": "",
            "codex": GEMMA,
            "ide": "",
        }
        assert page.context.value() == 12288
        assert page.starting.isVisibleTo(page)

        # Review: Codex's note; Next writes through the settings store.
        wizard.next()
        labels = [w.text() for w in wizard.review_page.findChildren(QLabel)]
        assert any("model_provider changes from 'openai'" in t for t in labels)
        assert not any("`" in t for t in labels)
        wizard.next()
        assert wizard.currentPage() is wizard.azure_page
        text = config_file.read_text()
        assert text.startswith("# my own notes about this file\n")
        assert '"claude-*opus*"  # the big one' in text
        assert text.count("[[route]]") == len(config.load(config_file).route) > 1
        assert "route = [" not in text and "[server]\n\n[" not in text
        backups = app.controller.settings_service.store.backups()
        assert len(backups) == 1
        assert f"(backup: {backups[0].path})" in " ".join(
            written_lines(wizard.manager.written)
        )
        assert codex.read_text().startswith("# codex notes\n")
    finally:
        await close_app(app)


async def test_notifications_stay_off_the_wizard(
    fake_lm: FakeLMStudio,
    home: Path,
    tmp_path: Path,
    messages: list[tuple[message.Level, str]],
) -> None:
    """With the wizard in front, "Model loaded" goes to the window's banner,
    not to a tray balloon drawn on top of the wizard's buttons; in the
    background it is a desktop notification."""
    app = await make_app(fresh_settings(fake_lm.base_url), tmp_path, tray=True)
    try:
        wizard = app.open_setup(home)
        wizard.activateWindow()
        await eventually(lambda: QApplication.activeWindow() is wizard)
        await app.models.load(QWEN, context_length=8192)
        await eventually(lambda: app.notifications, what="the notification")
        assert app.notifications[0][0] == "Model loaded"
        assert any(text.startswith("Model loaded: ") for _, text in messages)

        wizard.reject()
        app.window.hide()
        await eventually(lambda: QApplication.activeWindow() is None)
        messages.clear()
        await app.models.load(GEMMA, context_length=8192)
        await eventually(lambda: len(app.notifications) == 2, what="the second")
        assert messages == []  # a tray notification, not the banner
    finally:
        await close_app(app)
