"""The Settings page and a busy port on a real X server (issue 20, points
2, 3 and 5): an edit of config.toml in an editor shows in Settings without a
restart; a Save after another writer keeps that writer's keys, comments and
backups; a busy port is fixed from the window with one click."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

from desktop.conftest import LaunchApp
from desktop.xdesktop import free_port, lmstudio_config, port_is_free, until


def editor_save(path: Path, text: str) -> None:
    """Save as editors do: a new file renamed over the old one."""
    temp = path.with_name(path.name + ".swp")
    temp.write_text(text)
    os.replace(temp, path)


def test_an_edit_on_disk_shows_in_settings_and_a_save_keeps_it(
    launch_app: LaunchApp, fake_lmstudio: object, screenshot: Callable[[str], Path]
) -> None:
    app = launch_app()
    until(app.main_window, what="the app's window")
    until(lambda: not port_is_free(app.port), what="the proxy to listen")
    app.click(view="sidebar", text="Settings")
    until(lambda: app.visible(text="Allowed web origins"), what="the Settings page")
    config = app.lmbridge_home / "config.toml"
    # Another writer (the wizard, a text editor) adds a route and an origin.
    text = config.read_text().replace(
        "[server]\n",
        '# my note\n[server]\nallowed_origins = ["http://localhost:3000"]\n',
    )
    text += '\n[[route]]\nmodel = "claude-*"\nupstream = "lmstudio"\ntarget = "qwen"\n'
    editor_save(config, text)
    until(
        lambda: app.visible(text="http://localhost:3000"),
        what="the edit to show in Settings",
    )
    screenshot("desktop-settings-disk-edit")
    # The page opened before that edit saves one field; the rest stays.
    app.click(text="http://localhost:3000")
    app.session.x("xdotool", "key", "--clearmodifiers", "ctrl+a")
    app.session.x("xdotool", "type", "--delay", "20", "http://localhost:4000")
    app.click(text="Save")
    until(lambda: "http://localhost:4000" in config.read_text(), what="the save")
    saved = config.read_text()
    assert "# my note" in saved
    assert 'target = "qwen"' in saved  # the other writer's route is kept
    backups = list((config.parent / "backups").glob("config-*.toml"))
    assert any(b.read_text() == text for b in backups)
    until(lambda: app.visible(contains="backups/config-"), what="the backup named")


def test_a_busy_port_is_fixed_from_the_window(
    launch_app: LaunchApp, fake_lmstudio: object, screenshot: Callable[[str], Path]
) -> None:
    port = free_port()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        app = launch_app(config=lmstudio_config(port, fake_lmstudio.base_url))  # type: ignore[attr-defined]
        until(app.main_window, what="the app's window")
        until(
            lambda: app.visible(contains="is used by another program"),
            what="the busy-port banner",
        )
        button = until(
            lambda: app.visible(contains="Use free port"), what="the fix button"
        )
        screenshot("desktop-busy-port")
        new_port = int(str(button["text"]).rsplit(" ", 1)[1])
        app.click(text=button["text"])
        until(lambda: not port_is_free(new_port), what="the proxy on the free port")
        until(
            lambda: app.visible(text=f"Running on http://127.0.0.1:{new_port}"),
            what="Overview to say so",
        )
        config = (app.lmbridge_home / "config.toml").read_text()
        assert f"port = {new_port}" in config
