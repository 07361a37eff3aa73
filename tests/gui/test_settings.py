"""Settings: validated save with a backup, restart offered and done, API
keys in the (in-memory) keyring shown masked, log level, start at login."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
from PySide6.QtWidgets import QComboBox, QLineEdit, QSpinBox

from fakes.azure_fixtures import memory_keyring
from fakes.memory_keyring import MemoryKeyring
from gui.helpers import eventually, settings_field
from lmbridge import config
from lmbridge.auth.secrets import SECRETS
from lmbridge.gui.app import LMBridgeApp
from lmbridge.gui.settings.view import SettingsPanel
from lmbridge.upstreams.credentials import stored_key

__all__ = ["memory_keyring"]


def settings_page(app: LMBridgeApp) -> SettingsPanel:
    panel = app.page("settings")
    assert isinstance(panel, SettingsPanel)
    app.window.show_page("settings")
    return panel


async def test_save_validates_backs_up_and_offers_restart(
    gui_app: LMBridgeApp, tmp_path: Path
) -> None:
    panel = settings_page(gui_app)
    path = gui_app.controller.config_path
    users_file = "# the user's own file\n" + config.dump(
        gui_app.controller.settings
    ).decode().replace("[lmstudio]", "[lmstudio]  # mine")
    path.write_text(users_file)
    settings_field(panel, "lmstudio.min_context", QSpinBox).setValue(16384)
    panel.routes.add(["qwen*", "local", "", ""])
    panel.save_button.click()

    saved = config.parse(path.read_bytes(), str(path))
    assert saved.lmstudio.min_context == 16384
    assert [r.model for r in saved.route] == ["claude-*", "gpt-*", "qwen*"]
    (backup,) = (path.parent / "backups").glob("config-*.toml")
    assert backup.read_text() == users_file
    text = path.read_text()
    assert text.startswith("# the user's own file\n")  # comments kept
    assert "[lmstudio]  # mine" in text
    assert backup.name in panel.banner.label.text()  # the backup is named
    assert gui_app.controller.settings.lmstudio.min_context == 16384
    assert gui_app.controller.restart_needed
    assert panel.banner.level == "warning" and "restart" in panel.banner.label.text()

    old_state = gui_app.controller.services
    restart = panel.banner.action_buttons()[0]
    assert restart.text() == "Restart proxy now"
    restart.click()
    await eventually(
        lambda: (
            gui_app.controller.running and gui_app.controller.services is not old_state
        ),
        what="the restart",
    )
    state = gui_app.controller.services
    assert state is not None
    assert state.settings.lmstudio.min_context == 16384
    assert not gui_app.controller.restart_needed


async def test_invalid_settings_are_not_saved(gui_app: LMBridgeApp) -> None:
    panel = settings_page(gui_app)
    path = gui_app.controller.config_path
    panel.routes.add(["llama*", "nowhere", "", ""])
    panel.save_button.click()
    assert panel.banner.level == "error"
    assert "marked in red" in panel.banner.label.text()
    routes_error = panel.form.errors["route"]
    assert not routes_error.isHidden()  # next to the field: under Routes
    assert "Route llama*, upstream: " in routes_error.text()
    assert "'nowhere' names no upstream" in routes_error.text()
    assert not path.exists()

    panel.load()  # Revert
    assert routes_error.isHidden()
    panel.upstreams.select("cloud")
    panel.upstreams.set_field("base_url", "ftp://example.com")
    panel.save_button.click()
    upstreams_error = panel.form.errors["upstream"]
    assert "Upstream cloud, base_url: " in upstreams_error.text()
    assert "must start with http://" in upstreams_error.text()
    assert not path.exists()

    panel.load()
    settings_field(panel, "chat.max_image_bytes", QSpinBox).setValue(5)
    settings_field(panel, "logging.level", QComboBox).setCurrentText("INFO")
    panel.host.setText("")  # a scalar field: its message is right under it
    panel.save_button.click()
    host_error = panel.form.errors["server.host"]
    assert not host_error.isHidden(), panel.banner.label.text()
    assert not path.exists()  # nothing written until every field is valid


async def test_upstream_editor_adds_an_azure_upstream(gui_app: LMBridgeApp) -> None:
    panel = settings_page(gui_app)
    panel.upstreams.add()
    panel.upstreams.set_field("name", "foundry")
    panel.upstreams.set_field("kind", "azure-foundry")
    panel.upstreams.set_field("base_url", "")
    panel.upstreams.set_field("resource", "my-foundry")
    panel.upstreams.set_field("api", "messages")
    panel.upstreams.set_field("auth", "browser")
    assert not panel.upstreams.fields["resource"].isHidden()
    settings = panel.settings_from_form()
    up = settings.upstream_named("foundry")
    assert up is not None
    assert (up.kind, up.resource, up.api, up.auth) == (
        "azure-foundry",
        "my-foundry",
        "messages",
        "browser",
    )
    assert "foundry" in panel.keys_box.rows  # its API key row appeared


async def test_api_key_goes_to_the_keyring_masked(
    gui_app: LMBridgeApp, memory_keyring: MemoryKeyring, messages: list[Any]
) -> None:
    panel = settings_page(gui_app)
    panel.refresh_keys()
    row = panel.keys_box.rows["cloud"]
    await eventually(lambda: row.state.text() == "no key stored")
    assert "local" not in panel.keys_box.rows  # LM Studio needs no key
    assert row.entry.echoMode() == row.entry.EchoMode.Password
    row.entry.setText("sk-test-0123456789abcd")
    row.save.click()
    await eventually(lambda: memory_keyring.passwords.get(("lmbridge", "cloud")))
    assert memory_keyring.passwords[("lmbridge", "cloud")] == "sk-test-0123456789abcd"
    # The keyring is written in a thread; the row redraws when that returns.
    await eventually(lambda: row.state.text() == "••••••••abcd")
    assert row.entry.text() == ""
    assert "sk-test" not in str(messages)
    assert not config.default_config_path().exists() or "sk-test" not in (
        config.default_config_path().read_text()
    )
    row.remove.click()
    await eventually(lambda: row.state.text() == "no key stored")
    assert ("lmbridge", "cloud") not in memory_keyring.passwords


async def test_web_search_key_goes_to_the_keyring_masked(
    gui_app: LMBridgeApp, memory_keyring: MemoryKeyring, messages: list[Any]
) -> None:
    """The [web_search] provider's key has a row beside the upstreams' keys:
    saved to the keyring entry `lmbridge keys set web-search` writes and the
    proxy's searcher reads, shown masked, never in the file; Remove clears it."""
    panel = settings_page(gui_app)
    panel.refresh_keys()
    entry = ("lmbridge", config.WEB_SEARCH_SECRET)
    row = panel.keys_box.rows[config.WEB_SEARCH_SECRET]
    assert (
        list(panel.keys_box.rows)[-1] == config.WEB_SEARCH_SECRET
    )  # after the upstreams
    assert row.title.text() == "Web search" and "Tavily" in row.title.toolTip()
    await eventually(lambda: row.state.text() == "no key stored")
    assert not row.remove.isEnabled()
    assert row.entry.echoMode() == row.entry.EchoMode.Password
    row.save.click()  # nothing typed: nothing stored, and the user is told
    assert any("web search provider first" in text for _, text in messages)
    assert entry not in memory_keyring.passwords

    row.entry.setText("tvly-test-0123456789wxyz")
    row.save.click()
    await eventually(lambda: memory_keyring.passwords.get(entry))
    assert memory_keyring.passwords[entry] == "tvly-test-0123456789wxyz"
    SECRETS.forget_session()  # read back from the keyring itself, as a proxy does
    assert await stored_key(config.WEB_SEARCH_SECRET) == "tvly-test-0123456789wxyz"
    await eventually(lambda: row.state.text() == "••••••••wxyz")
    assert row.entry.text() == "" and row.remove.isEnabled()
    assert "tvly-test" not in str(messages)
    path = gui_app.controller.config_path
    assert not path.exists() or "tvly-test" not in path.read_text()

    # A variable named in web_search.api_key_env wins: the row says so.
    settings_field(panel, "web_search.api_key_env", QLineEdit).setText("MY_TAVILY")
    panel.save_button.click()
    row = panel.keys_box.rows[config.WEB_SEARCH_SECRET]
    await eventually(
        lambda: row.state.text() == "••••••••wxyz; $MY_TAVILY is used instead"
    )

    row.remove.click()
    await eventually(lambda: row.state.text().startswith("no key stored"))
    assert entry not in memory_keyring.passwords
    assert await stored_key(config.WEB_SEARCH_SECRET) == ""


async def test_log_level_and_start_at_login(
    gui_app: LMBridgeApp, autostart_home: Path
) -> None:
    panel = settings_page(gui_app)
    settings_field(panel, "logging.level", QComboBox).setCurrentText("DEBUG")
    panel.save_button.click()
    path = gui_app.controller.config_path
    assert config.parse(path.read_bytes()).logging.level == "DEBUG"

    panel.start_at_login.setChecked(True)
    entry = autostart_home / "autostart" / "lmbridge.desktop"
    assert "Exec=" in entry.read_text()
    assert str(entry) in panel.autostart_where.text() or panel.autostart_where.text()
    panel.start_at_login.setChecked(False)
    assert not entry.exists()


async def test_timeouts_chat_defaults_and_origins(gui_app: LMBridgeApp) -> None:
    panel = settings_page(gui_app)
    path = gui_app.controller.config_path
    panel.upstreams.select("cloud")
    panel.upstreams.set_field("connect_timeout", "3")
    panel.upstreams.set_field("idle_timeout", "120.5")
    settings_field(panel, "chat.default_text_model", QLineEdit).setText(
        "qwen/qwen3-coder-30b"
    )
    settings_field(panel, "chat.default_vision_model", QLineEdit).setText(
        "google/gemma-3-4b"
    )
    settings_field(panel, "chat.max_image_bytes", QSpinBox).setValue(5)
    settings_field(panel, "server.allowed_origins", QLineEdit).setText(
        "http://localhost:3000, https://app.example"
    )
    panel.save_button.click()
    saved = config.parse(path.read_bytes(), str(path))
    cloud = saved.upstream_named("cloud")
    assert cloud is not None
    assert (cloud.connect_timeout, cloud.first_byte_timeout, cloud.idle_timeout) == (
        3.0,
        None,
        120.5,
    )
    assert saved.chat.default_text_model == "qwen/qwen3-coder-30b"
    assert saved.chat.default_vision_model == "google/gemma-3-4b"
    assert saved.chat.max_image_bytes == 5 * 1024**2
    assert saved.server.allowed_origins == [
        "http://localhost:3000",
        "https://app.example",
    ]
    panel.load()
    panel.upstreams.select("cloud")
    assert panel.upstreams.fields["idle_timeout"].text() == "120.5"  # type: ignore[union-attr]

    panel.upstreams.set_field("first_byte_timeout", "soon")
    panel.save_button.click()
    assert panel.banner.level == "error"
    errors = panel.form.errors["upstream"].text()
    assert "Upstream cloud, first_byte_timeout: must be a number" in errors


async def test_access_token_lives_in_the_keyring(
    gui_app: LMBridgeApp, memory_keyring: MemoryKeyring
) -> None:
    panel = settings_page(gui_app)
    token = panel.token
    assert token.state.text() == "none (not required)"
    assert token.entry.echoMode() == token.entry.EchoMode.Password
    token.entry.setText("my-secret-token-1234")
    token.save.click()
    await eventually(lambda: token.state.text() == "••••••••1234", what="the save")
    assert memory_keyring.passwords[("lmbridge", "@access-token")] == (
        "my-secret-token-1234"
    )
    assert gui_app.controller.restart_needed
    panel.banner.action_buttons()[0].click()  # Restart proxy now
    await eventually(
        lambda: gui_app.controller.running and not gui_app.controller.restart_needed,
        what="the restart",
    )
    path = gui_app.controller.config_path
    assert not path.exists() or "my-secret" not in path.read_text()
    async with aiohttp.ClientSession() as session:
        url = gui_app.controller.url + "/v1/models"
        async with session.get(url) as resp:
            assert resp.status == 401
        headers = {"Authorization": "Bearer my-secret-token-1234"}
        async with session.get(url, headers=headers) as resp:
            assert resp.status == 200
    token.remove.click()
    await eventually(lambda: gui_app.controller.access_token == "", what="removal")
    assert ("lmbridge", "@access-token") not in memory_keyring.passwords
