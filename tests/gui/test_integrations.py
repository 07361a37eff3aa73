"""Integrations: the snippets name the running proxy; Test sends a real
request in each tool's protocol through it (to the fake upstream); Write
merges into the tool's config only after confirmation, with a backup."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fakes.lmstudio_server import FakeLMStudio
from fakes.openai_upstream import FakeOpenAIUpstream
from gui.helpers import app_settings, close_app, eventually, make_app
from lmbridge.gui import message
from lmbridge.gui.app import LMBridgeApp
from lmbridge.gui.integrations.view import IntegrationsPanel


def integrations_page(app: LMBridgeApp, home: Path) -> IntegrationsPanel:
    panel = app.page("integrations")
    assert isinstance(panel, IntegrationsPanel)
    panel.home = home
    app.window.show_page("integrations")
    return panel


def snippets(panel: IntegrationsPanel) -> str:
    return "\n".join(s.text for s in panel.integration().snippets)


@pytest.mark.parametrize(
    ("tool", "model", "path"),
    [
        ("claude-code", "claude-sonnet-4-6", "/v1/messages"),
        ("codex", "gpt-5", "/v1/responses"),
        ("openai-sdk", "gpt-5", "/v1/chat/completions"),
    ],
)
async def test_test_button_goes_through_the_proxy(
    gui_app: LMBridgeApp,
    fake_upstream: FakeOpenAIUpstream,
    tmp_path: Path,
    tool: str,
    model: str,
    path: str,
) -> None:
    panel = integrations_page(gui_app, tmp_path)
    panel.select(tool)
    panel.model.setCurrentText(model)
    assert gui_app.controller.url in snippets(panel)  # the real, running port
    assert panel.test_button.isEnabled()
    panel.test_button.click()
    await eventually(lambda: panel.last_reply is not None, what="the test answer")
    reply = panel.last_reply
    assert reply is not None and reply.ok, reply
    assert reply.text == "Hello from the fake upstream."
    await eventually(lambda: panel.answer.text().startswith("✓"), what="the ✓")
    await eventually(lambda: gui_app.log.stats.requests == 1)
    record = gui_app.log.rows[-1] if gui_app.log.rows else gui_app.log.pending[-1]
    assert record.path == path
    assert record.client.startswith("lmbridge-test/")
    assert fake_upstream.requests


async def test_tools_are_listed_with_their_protocol(
    gui_app: LMBridgeApp, tmp_path: Path
) -> None:
    panel = integrations_page(gui_app, tmp_path)
    names = [panel.tools.item(i).text().split("\n") for i in range(panel.tools.count())]
    assert ["Claude Code", "Anthropic Messages"] in names
    assert ["Gemini CLI", "Gemini API"] in names
    for name in ("OpenCode", "Cline CLI", "Qwen Code"):
        assert [name, "OpenAI Chat Completions"] in names
    assert len(names) == 11
    panel.select("cline")
    assert not panel.write_button.isVisibleTo(panel)
    assert "Base URL: " + gui_app.controller.url + "/v1" in snippets(panel)


async def test_write_asks_first_and_keeps_a_backup(
    gui_app: LMBridgeApp, tmp_path: Path
) -> None:
    panel = integrations_page(gui_app, tmp_path)
    panel.select("claude-code")
    settings_file = tmp_path / ".claude" / "settings.json"
    settings_file.parent.mkdir()
    settings_file.write_text(json.dumps({"theme": "dark"}))
    panel.write_button.click()
    assert not panel.review.isHidden()
    assert "+" in panel.diff.toPlainText()
    assert json.loads(settings_file.read_text()) == {"theme": "dark"}  # not yet
    write = panel.review.action_buttons()[0]
    assert write.text() == "Write"
    write.click()
    data = json.loads(settings_file.read_text())
    assert data["theme"] == "dark"
    assert data["env"]["ANTHROPIC_BASE_URL"] == gui_app.controller.url
    backups = list(settings_file.parent.glob("settings.json.lmbridge-backup-*"))
    assert len(backups) == 1
    assert json.loads(backups[0].read_text()) == {"theme": "dark"}


async def test_test_needs_a_running_proxy(gui_app: LMBridgeApp, tmp_path: Path) -> None:
    panel = integrations_page(gui_app, tmp_path)
    await gui_app.controller.stop()
    assert not panel.test_button.isEnabled()
    assert "Start the proxy" in panel.test_button.toolTip()


async def test_a_slow_test_can_be_cancelled(
    gui_app: LMBridgeApp, fake_upstream: FakeOpenAIUpstream, tmp_path: Path
) -> None:
    panel = integrations_page(gui_app, tmp_path)
    panel.select("openai-sdk")
    panel.model.setCurrentText("gpt-5")
    fake_upstream.script.first_byte_delay = 30.0
    panel.test_button.click()
    assert panel.test_button.text() == "Cancel test"
    await eventually(lambda: fake_upstream.requests, what="the request upstream")
    panel.test_button.click()
    await eventually(lambda: not panel.tasks.running(), what="the cancel")
    assert panel.test_button.text() == "Test"
    assert panel.answer.text() == "Test cancelled"
    assert panel.last_reply is None


async def test_codex_gets_the_context_lm_studio_loaded(
    fake_lm: FakeLMStudio, fake_upstream: FakeOpenAIUpstream, tmp_path: Path
) -> None:
    """The window written for Codex is the one the model is loaded with now,
    not a configured guess."""
    fake_lm.preload("qwen/qwen3-coder-30b", context_length=24576)
    app = await make_app(app_settings(fake_lm, fake_upstream), tmp_path)
    try:
        await eventually(lambda: len(app.controller.loaded) == 1, what="the load")
        panel = integrations_page(app, tmp_path)
        panel.select("codex")
        panel.model.setCurrentText("qwen/qwen3-coder-30b")
        text = snippets(panel)
        assert "model_context_window = 24576" in text, text
    finally:
        await close_app(app)


async def test_statuses_belong_to_their_tool_and_model(
    gui_app: LMBridgeApp,
    fake_upstream: FakeOpenAIUpstream,
    tmp_path: Path,
    messages: list[tuple[message.Level, str]],
) -> None:
    """'choose a model' shows only while no model is chosen, a ✓ only beside
    the tool and model it was obtained with; no banner outlives them."""
    panel = integrations_page(gui_app, tmp_path)
    messages.clear()
    panel.select("codex")
    panel.model.setCurrentText("")
    assert not panel.test_button.isEnabled()
    assert panel.answer.text() == "choose a model to test Codex CLI with"
    assert panel.test_button.toolTip() == panel.answer.text()
    panel.model.setCurrentText("gpt-5")
    assert panel.test_button.isEnabled() and panel.answer.text() == ""
    panel.test_button.click()
    await eventually(lambda: panel.answer.text().startswith("✓ Codex CLI works"))
    panel.model.setCurrentText("")
    assert panel.answer.text() == "choose a model to test Codex CLI with"
    panel.model.setCurrentText("gpt-5")
    assert panel.answer.text().startswith("✓ Codex CLI works")
    panel.select("openai-sdk")
    assert not panel.answer.text().startswith("✓")
    assert messages == []


async def test_steps_render_code_not_backticks(
    gui_app: LMBridgeApp, tmp_path: Path
) -> None:
    panel = integrations_page(gui_app, tmp_path)
    for tool in ("claude-code", "codex"):
        panel.select(tool)
        assert "`" not in panel.steps.text()
        assert f"<code>lmbridge integrate {tool} --write</code>" in panel.steps.text()


async def test_codex_lists_real_models_before_claude_aliases(
    fake_lm: FakeLMStudio, fake_upstream: FakeOpenAIUpstream, tmp_path: Path
) -> None:
    fake_lm.preload("qwen/qwen3-coder-30b", context_length=24576)
    extra = '\n[[route]]\nmodel = "my-coder"\nupstream = "local"\n'
    settings = app_settings(fake_lm, fake_upstream, extra=extra)
    app = await make_app(settings, tmp_path)
    try:
        await eventually(lambda: len(app.controller.loaded) == 1, what="the load")
        panel = integrations_page(app, tmp_path)
        panel.select("codex")
        names = [panel.model.itemText(i) for i in range(panel.model.count())]
        assert names == ["qwen/qwen3-coder-30b", "my-coder"]
        panel.select("claude-code")
        names = [panel.model.itemText(i) for i in range(panel.model.count())]
        assert names[:2] == ["qwen/qwen3-coder-30b", "my-coder"]
        assert len(names) > 2 and all(n.startswith("claude") for n in names[2:])
    finally:
        await close_app(app)


@pytest.mark.parametrize(
    ("tool", "relative"),
    [
        ("opencode", ".config/opencode/opencode.json"),
        ("cline-cli", ".cline/data/settings/providers.json"),
        ("qwen-code", ".qwen/.env"),
        ("gemini-cli", ".gemini/.env"),
    ],
)
async def test_the_newer_clis_are_written_from_the_page(
    gui_app: LMBridgeApp, tmp_path: Path, tool: str, relative: str
) -> None:
    """Write from the page into a file the user already has: the review
    comes first, the user's line stays, and the page then shows the file
    pointing at this LM Bridge."""
    panel = integrations_page(gui_app, tmp_path)
    panel.select(tool)
    assert panel.write_button.isVisibleTo(panel)
    path = tmp_path / relative
    path.parent.mkdir(parents=True)
    mine = '{"theme": "mine"}\n' if path.suffix == ".json" else "# mine\nA=1\n"
    path.write_text(mine)
    panel.model.setCurrentText("my-model")
    panel.write_button.click()
    assert not panel.review.isHidden()
    assert path.read_text() == mine  # not before Write
    panel.review.action_buttons()[0].click()
    text = path.read_text()
    assert gui_app.controller.url in text
    assert ("mine" in text) and "my-model" in text
    assert list(path.parent.glob(path.name + ".lmbridge-backup-*"))
    await eventually(lambda: panel.now.kind == "ok", what="the file to be read")
    assert "at LM Bridge" in panel.now.plain


async def test_the_page_shows_what_the_files_point_at_now(
    gui_app: LMBridgeApp, tmp_path: Path
) -> None:
    """Whoever writes a tool's file (the wizard, an editor), the page shows
    what it says now, without a refresh."""
    panel = integrations_page(gui_app, tmp_path)
    panel.select("codex")
    codex = tmp_path / ".codex" / "config.toml"
    assert panel.now.plain == f"{codex} does not exist yet"
    assert panel.model.currentText() == ""
    codex.parent.mkdir()
    url = gui_app.controller.url
    codex.write_text(
        'model = "gpt-5"\nmodel_provider = "lmbridge"\n\n'
        f'[model_providers.lmbridge]\nbase_url = "{url}/v1"\n'
    )
    await eventually(lambda: panel.now.kind == "ok", what="the file to be read")
    assert panel.now.plain == (
        f"{codex} points Codex CLI at LM Bridge ({url}/v1); model gpt-5"
    )
    assert panel.model.currentText() == "gpt-5"  # tests what the file says

    codex.write_text('model = "o3"\n')  # an editor points it elsewhere
    await eventually(lambda: panel.now.kind == "warning", what="the edit")
    assert "at its own default service, not at this LM Bridge" in panel.now.plain
    assert panel.model.currentText() == "o3"
    panel.model.setCurrentText("my-pick")  # what the user typed stays
    codex.write_text('model = "o4"\n')
    await eventually(lambda: "model o4" in panel.now.plain, what="the 2nd edit")
    assert panel.model.currentText() == "my-pick"


async def test_codex_gets_one_slots_window_from_llama_server(tmp_path: Path) -> None:
    """For a llama.cpp upstream the window written is one slot's context, as
    the server's `/props` reports it (kept known by the health checks)."""
    from fakes.llamacpp_server import FakeLlamaCppServer
    from lmbridge import config

    server = FakeLlamaCppServer(n_ctx=6144, total_slots=2)
    await server.start()
    settings = config.parse(f"""
[server]
port = 0

[[upstream]]
name = "llama"
kind = "llamacpp"
base_url = "{server.url}"

[[route]]
model = "coder"
upstream = "llama"
""")
    app = await make_app(settings, tmp_path)
    try:
        panel = integrations_page(app, tmp_path)
        panel.select("codex")
        panel.model.setCurrentText("coder")
        await eventually(
            lambda: "model_context_window = 6144" in snippets(panel),
            what="the window from /props",
        )
    finally:
        await close_app(app)
        await server.stop()
