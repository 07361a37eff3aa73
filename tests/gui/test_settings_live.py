"""The Settings page on one source of truth (issue 20, points 2 and 3): it
shows what other writers saved, and a save writes only the fields the user
changed, so nothing another writer wrote is lost."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from PySide6.QtWidgets import QLineEdit, QSpinBox

from fakes.lmstudio_server import FakeLMStudio
from fakes.openai_upstream import FakeOpenAIUpstream
from gui.helpers import app_settings, close_app, eventually, make_app, settings_field
from lmbridge import config
from lmbridge.gui.app import LMBridgeApp
from lmbridge.gui.settings.view import SettingsPanel
from lmbridge.settings_edit import Changes

WIZARD_ROUTES = [
    {"model": f"claude-{n}*", "upstream": "local", "target": f"qwen-{n}"}
    for n in ("opus", "sonnet", "haiku", "3", "4")
]


def settings_page(app: LMBridgeApp) -> SettingsPanel:
    panel = app.page("settings")
    assert isinstance(panel, SettingsPanel)
    app.window.show_page("settings")
    return panel


def route_models(panel: SettingsPanel) -> list[str]:
    return [str(r["model"]) for r in panel.routes.values()]


async def test_a_save_after_the_wizard_keeps_its_routes(
    gui_app: LMBridgeApp, tmp_path: Path
) -> None:
    """The issue's exact sequence: the Settings page is opened, a wizard-like
    writer adds five routes, the user changes only the port and saves."""
    panel = settings_page(gui_app)  # opened before the wizard writes
    controller = gui_app.controller
    path = controller.config_path
    before = route_models(panel)
    current = msgspec.to_builtins(controller.settings.route)
    controller.save_changes({"route": [*current, *WIZARD_ROUTES]})
    wizard_text = path.read_text()
    # The page listens: its Routes table shows what the wizard wrote.
    assert route_models(panel) == [*before, *(r["model"] for r in WIZARD_ROUTES)]

    panel.port.setValue(28123)
    panel.save_button.click()
    assert panel.banner.level in ("info", "warning"), panel.banner.label.text()
    saved = config.load(path)
    assert saved.server.port == 28123
    assert [r.model for r in saved.route] == [
        *before,
        *(r["model"] for r in WIZARD_ROUTES),
    ]
    assert [r.target for r in saved.route[-5:]] == [r["target"] for r in WIZARD_ROUTES]
    # The file the wizard wrote is kept as a backup, named in the banner.
    backups = [b.path for b in controller.store.backups()]
    assert any(b.read_text() == wizard_text for b in backups)
    assert backups[0].name in panel.banner.label.text()  # the newest, named
    # A second save keeps the first backups (the issue lost its only .bak).
    panel.port.setValue(28125)
    panel.save_button.click()
    later = [b.path for b in controller.store.backups()]
    assert len(later) == len(backups) + 1
    assert any(b.read_text() == wizard_text for b in later)


async def test_unsaved_edits_survive_a_change_made_elsewhere(
    gui_app: LMBridgeApp,
) -> None:
    panel = settings_page(gui_app)
    controller = gui_app.controller
    settings_field(panel, "lmstudio.min_context", QSpinBox).setValue(
        32768
    )  # the user's unsaved edit
    controller.save_changes({"chat": {"default_text_model": "from-the-tray"}})
    assert (
        settings_field(panel, "chat.default_text_model", QLineEdit).text()
        == "from-the-tray"
    )  # shown at once
    assert (
        settings_field(panel, "lmstudio.min_context", QSpinBox).value() == 32768
    )  # the edit is kept
    assert "changed elsewhere" in panel.banner.label.text()
    panel.save_button.click()
    saved = config.load(controller.config_path)
    assert saved.lmstudio.min_context == 32768
    assert saved.chat.default_text_model == "from-the-tray"


async def test_revert_drops_edits_and_nothing_changed_writes_nothing(
    gui_app: LMBridgeApp,
) -> None:
    panel = settings_page(gui_app)
    path = gui_app.controller.config_path
    panel.save_button.click()
    assert "Nothing to save" in panel.banner.label.text()
    assert not path.exists()
    panel.port.setValue(28124)
    panel.revert_button.click()
    assert panel.port.value() == gui_app.controller.settings.server.port
    assert panel.form.changes() == {}


async def test_hidden_route_keys_survive_an_edit_of_the_routes(
    gui_app: LMBridgeApp,
) -> None:
    controller = gui_app.controller
    controller.save_changes(
        {"route": [{"model": "big*", "upstream": "cloud", "max_tokens_limit": 512}]}
    )
    panel = settings_page(gui_app)
    panel.routes.add(["small*", "cloud", "", ""])
    panel.save_button.click()
    await eventually(lambda: controller.settings.route[-1].model == "small*")
    saved = config.load(controller.config_path)
    assert saved.route[0].max_tokens_limit == 512


async def test_an_edit_on_disk_shows_in_the_settings_form(
    gui_app: LMBridgeApp,
) -> None:
    """A text editor's save (a new file renamed over the old one) reaches
    the form without a restart; a broken edit is reported, then cleared."""
    from lmbridge.gui import message
    from lmbridge.gui.controller import CONFIG_CONDITION, RESTART_CONDITION

    panel = settings_page(gui_app)
    controller = gui_app.controller
    controller.save_changes({"chat": {"default_text_model": "before"}})
    path = controller.config_path
    text = path.read_text()

    broken = path.with_name("config.toml.edit")
    broken.write_text(text + "\n[server\n")
    broken.replace(path)
    await eventually(
        lambda: CONFIG_CONDITION in message.global_bridge.conditions,
        what="the broken file to be reported",
    )
    assert (
        settings_field(panel, "chat.default_text_model", QLineEdit).text() == "before"
    )

    edited = path.with_name("config.toml.edit")
    edited.write_text(text.replace('"before"', '"typed-in-an-editor"'))
    edited.replace(path)
    await eventually(
        lambda: (
            settings_field(panel, "chat.default_text_model", QLineEdit).text()
            == "typed-in-an-editor"
        ),
        what="the edit to show in Settings",
    )
    assert controller.settings.chat.default_text_model == "typed-in-an-editor"
    assert CONFIG_CONDITION not in message.global_bridge.conditions
    assert "changed elsewhere" not in panel.banner.label.text()  # no edits lost
    # The running proxy uses the old settings: the window says so and offers
    # the restart, which clears it.
    [restart] = gui_app.window.conditions.banners[RESTART_CONDITION].action_buttons()
    restart.click()
    await eventually(
        lambda: RESTART_CONDITION not in message.global_bridge.conditions,
        what="the restart",
    )
    assert controller.running


async def test_environment_overrides_outlive_a_save_and_stay_out_of_the_file(
    fake_lm: FakeLMStudio,
    fake_upstream: FakeOpenAIUpstream,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """LMBRIDGE_PORT holds for the whole run: a save (the first one, with no
    file yet, and a later one) neither drops it nor writes it to the file."""
    monkeypatch.setenv("LMBRIDGE_PORT", "28555")
    settings = config.with_env(app_settings(fake_lm, fake_upstream))
    assert settings.server.port == 28555
    app = await make_app(settings, tmp_path)
    try:
        controller = app.controller
        assert not controller.config_path.exists()
        first: Changes = {("lmstudio", "min_context"): 16384}
        controller.save_changes(first)
        assert controller.settings.server.port == 28555
        assert "28555" not in controller.config_path.read_text()
        second: Changes = {("lmstudio", "min_context"): 8192}
        controller.save_changes(second)
        assert controller.settings.server.port == 28555
        assert controller.settings.lmstudio.min_context == 8192
        assert "28555" not in controller.config_path.read_text()
    finally:
        await close_app(app)
