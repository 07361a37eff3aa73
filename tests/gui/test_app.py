"""The app as a whole: the no-tray and tray close policies, the tray menu,
notifications, the overview, and the one shutdown path."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

from fakes.lmstudio_server import FakeLMStudio
from fakes.openai_upstream import FakeOpenAIUpstream
from gui.helpers import app_settings, close_app, eventually, make_app
from lmbridge import config
from lmbridge.gui.app import NO_TRAY_NOTICE, LMBridgeApp, MainThreadGC
from lmbridge.gui.controller import ProxyPhase
from lmbridge.gui.icons import TrayState
from lmbridge.gui.overview.view import OverviewPanel
from lmbridge.gui.prefs import Prefs
from lmbridge.gui.usage.view import UsagePanel
from lmbridge.lmstudio import TOPIC_STATE, ConnectionState, ConnectionStatus

QWEN = "qwen/qwen3-coder-30b"
GEMMA = "google/gemma-3-4b"


async def start_then_close(
    settings: config.Settings, tmp_path: Path, *, on_screen: bool | None = True
) -> None:
    """Run the app as `run()` does, then close its window."""
    app = LMBridgeApp(
        settings,
        tmp_path / "config.toml",
        tray_available=False,
        prefs=Prefs(tmp_path / "gui.ini"),
        setup=False,
        on_screen=on_screen,
    )
    assert app.tray is None
    running = asyncio.ensure_future(app.run())
    await eventually(lambda: app.controller.running, what="the proxy")
    assert app.window.isVisible()
    state = app.controller.services
    assert state is not None and state.db is not None
    app.window.close()
    assert await asyncio.wait_for(running, 10) == 0
    assert app.controller.phase is ProxyPhase.STOPPED
    assert not state.db.is_open  # the one shutdown path closed the DB
    assert not app.window.isVisible()
    app.window.deleteLater()


async def test_without_a_tray_closing_the_window_quits(
    fake_lm: FakeLMStudio,
    fake_upstream: FakeOpenAIUpstream,
    tmp_path: Path,
    messages: list[Any],
) -> None:
    settings = app_settings(fake_lm, fake_upstream)
    await start_then_close(settings, tmp_path)
    assert [t for _l, t in messages if t == NO_TRAY_NOTICE] == [NO_TRAY_NOTICE]
    await start_then_close(settings, tmp_path)
    # Said once: not again on the second start.
    assert [t for _l, t in messages if t == NO_TRAY_NOTICE] == [NO_TRAY_NOTICE]


async def test_offscreen_notices_are_not_recorded_as_seen(
    fake_lm: FakeLMStudio,
    fake_upstream: FakeOpenAIUpstream,
    tmp_path: Path,
    messages: list[Any],
) -> None:
    """Offscreen (as here, and as `make run` once did) nobody saw the notice,
    so the next start on a real desktop shows it again."""
    settings = app_settings(fake_lm, fake_upstream)
    await start_then_close(settings, tmp_path, on_screen=None)
    await start_then_close(settings, tmp_path, on_screen=None)
    assert [t for _l, t in messages if t == NO_TRAY_NOTICE] == [NO_TRAY_NOTICE] * 2
    assert not Prefs(tmp_path / "gui.ini").seen("no-tray")


async def test_setup_is_seen_once_dismissed_not_when_quitting_over_it(
    fake_lm: FakeLMStudio, fake_upstream: FakeOpenAIUpstream, tmp_path: Path
) -> None:
    settings = app_settings(fake_lm, fake_upstream)
    prefs = Prefs(tmp_path / "gui.ini")
    # Quitting while setup is open: setup was not finished, so not seen.
    app = await make_app(settings, tmp_path, setup=None)
    assert app.setup is not None and app.setup.isVisible()
    await close_app(app)
    assert not prefs.seen("setup")
    # Offscreen, dismissing it does not count either.
    app = await make_app(settings, tmp_path, setup=None, on_screen=False)
    try:
        assert app.setup is not None
        app.setup.reject()
        await eventually(lambda: app.setup is None, what="setup to close")
        assert not prefs.seen("setup")
    finally:
        await close_app(app)
    # On a screen, dismissed by the user: seen, not opened at the next start.
    app = await make_app(settings, tmp_path, setup=None)
    try:
        assert app.setup is not None
        app.setup.reject()
        await eventually(lambda: app.setup is None, what="setup to close")
        assert prefs.seen("setup")
    finally:
        await close_app(app)
    app = await make_app(settings, tmp_path, setup=None)
    try:
        assert app.setup is None
    finally:
        await close_app(app)


async def tray_app(
    fake_lm: FakeLMStudio, fake_upstream: FakeOpenAIUpstream, tmp_path: Path
) -> LMBridgeApp:
    app = await make_app(app_settings(fake_lm, fake_upstream), tmp_path, tray=True)
    assert app.tray is not None
    return app


async def test_with_a_tray_closing_the_window_keeps_running(
    fake_lm: FakeLMStudio, fake_upstream: FakeOpenAIUpstream, tmp_path: Path
) -> None:
    app = await tray_app(fake_lm, fake_upstream, tmp_path)
    try:
        assert app.window.isVisible()
        app.window.close()
        assert not app.window.isVisible()
        assert app.controller.running
        assert [n[0] for n in app.notifications] == ["LM Bridge is still running"]
        app.window.show()
        app.window.close()
        assert len(app.notifications) == 1  # said once
        assert app.tray is not None
        app.tray.icon.activated.emit(app.tray.icon.ActivationReason.Trigger)
        assert app.window.isVisible()  # a left click opens the window
    finally:
        await close_app(app)


async def test_tray_menu_actions(
    fake_lm: FakeLMStudio, fake_upstream: FakeOpenAIUpstream, tmp_path: Path
) -> None:
    fake_lm.preload(QWEN, context_length=8192)
    fake_lm.preload(GEMMA, context_length=16384)
    app = await tray_app(fake_lm, fake_upstream, tmp_path)
    tray = app.tray
    assert tray is not None

    def menu() -> list[str]:
        return [a.text() for a in tray.menu.actions() if a.text() and a.isVisible()]

    try:
        await eventually(lambda: len(app.controller.loaded) == 2)
        assert tray.state is TrayState.RUNNING
        assert tray.status_action.text() == f"LM Bridge — {app.controller.url}"
        tip = tray.icon.toolTip()
        assert "0 requests today" in tip and f"Loaded: {QWEN}" in tip
        assert menu()[1:] == [
            "Stop proxy",
            "Copy endpoint URL",
            "Open in a terminal",
            f"Unload {QWEN} (17.3 GB, 8K context)",
            f"Unload {GEMMA} (3.1 GB, 16K context)",
            "Unload all models",
            "Set up LM Bridge…",
            "Open LM Bridge",
            "Quit LM Bridge",
        ]
        tray.copy_action.trigger()
        assert QGuiApplication.clipboard().text() == app.controller.url

        tray.model_actions[0].trigger()
        await eventually(lambda: len(app.controller.loaded) == 1, what="the unload")
        assert fake_lm.unload_requests == [QWEN]
        assert "Unload all models" not in menu()  # one model: Unload is enough

        # With the proxy stopped the models are still listed and managed.
        await app.controller.stop()
        assert [a.text() for a in tray.model_actions] == [
            f"Unload {GEMMA} (3.1 GB, 16K context)"
        ]
        tray.unload_all_action.trigger()
        await eventually(lambda: not app.controller.loaded, what="unload all")
        assert fake_lm.unload_requests == [QWEN, GEMMA]
        assert not tray.model_actions
        await app.controller.start()

        tray.toggle_action.trigger()
        await eventually(lambda: app.controller.phase is ProxyPhase.STOPPED)
        assert tray.state is TrayState.STOPPED
        assert tray.toggle_action.text() == "Start proxy"
        tray.toggle_action.trigger()
        await eventually(lambda: app.controller.running)

        app.window.hide()
        tray.open_action.trigger()
        assert app.window.isVisible()
        tray.quit_action.trigger()
        assert app._quit.is_set()
    finally:
        await close_app(app)


async def test_busy_while_loading_and_notified_when_loaded(
    gui_app: LMBridgeApp, fake_lm: FakeLMStudio
) -> None:
    from lmbridge.gui.tray import tray_state

    fake_lm.load_delay = 0.6
    gui_app.models.load(QWEN, context_length=8192)
    await eventually(lambda: gui_app.controller.busy, what="busy")
    assert tray_state(gui_app.controller) is TrayState.BUSY
    await eventually(lambda: not gui_app.controller.busy, what="the load")
    assert tray_state(gui_app.controller) is TrayState.RUNNING
    titles = [n[0] for n in gui_app.notifications]
    assert titles == ["Model loaded"]
    # Without a tray the notification is shown in the window's banner.
    assert "Model loaded" in gui_app.window.banner.label.text()


async def test_lmstudio_away_and_back_is_notified(gui_app: LMBridgeApp) -> None:
    await eventually(lambda: gui_app.controller.lmstudio_status is not None)
    await eventually(
        lambda: (
            gui_app.controller.lmstudio_status.state  # type: ignore[union-attr]
            is ConnectionState.CONNECTED
        )
    )
    bus = gui_app.controller.bus
    bus.publish(
        TOPIC_STATE,
        ConnectionStatus(state=ConnectionState.DISCONNECTED, error="connection lost"),
    )
    bus.publish(TOPIC_STATE, ConnectionStatus(state=ConnectionState.CONNECTING))
    bus.publish(
        TOPIC_STATE,
        ConnectionStatus(state=ConnectionState.CONNECTED, address="127.0.0.1:1234"),
    )
    assert [n[0] for n in gui_app.notifications] == [
        "LM Studio went away",
        "LM Studio is back",
    ]
    assert "Start Server" in gui_app.notifications[0][1]


async def test_overview(gui_app: LMBridgeApp) -> None:
    import aiohttp

    overview = gui_app.page("overview")
    assert isinstance(overview, OverviewPanel)
    assert overview.proxy_status.plain == f"Running on {gui_app.controller.url}"
    await eventually(lambda: "cloud" in overview.upstream_dots)
    await eventually(lambda: overview.upstream_dots["cloud"].kind == "ok")
    await eventually(lambda: overview.upstream_dots["local"].kind == "ok")
    assert "connected at" in overview.upstream_dots["local"].plain
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            gui_app.controller.url + "/v1/chat/completions",
            json={"model": "gpt-5", "messages": [{"role": "user", "content": "x"}]},
        ) as resp,
    ):
        assert resp.status == 200
    await eventually(lambda: overview.tiles["requests"].value.text() == "1")
    assert overview.tiles["tokens"].value.text() == "11 / 7"
    assert overview.tiles["errors"].value.text() == "0"

    overview.stop_button.click()
    await eventually(lambda: gui_app.controller.phase is ProxyPhase.STOPPED)
    assert overview.proxy_status.kind == "off"
    assert overview.upstream_dots["cloud"].kind == "off"
    overview.start_button.click()
    await eventually(lambda: gui_app.controller.running)


def test_settings_file_is_never_touched_by_starting(tmp_path: Path) -> None:
    assert not config.default_config_path().exists()


async def test_every_page_renders_in_light_and_dark(gui_app: LMBridgeApp) -> None:
    qt = QApplication.instance()
    assert isinstance(qt, QApplication)
    light = qt.palette()
    dark = QPalette(light)
    for role, color in (
        (QPalette.ColorRole.Window, "#202124"),
        (QPalette.ColorRole.WindowText, "#E8EAED"),
        (QPalette.ColorRole.Base, "#171717"),
        (QPalette.ColorRole.Text, "#E8EAED"),
        (QPalette.ColorRole.Button, "#2D2E31"),
        (QPalette.ColorRole.ButtonText, "#E8EAED"),
    ):
        dark.setColor(role, QColor(color))
    usage = gui_app.page("usage")
    assert isinstance(usage, UsagePanel)
    try:
        for palette in (light, dark):
            qt.setPalette(palette)
            for key in gui_app.window.page_keys:
                gui_app.window.show_page(key)
                await asyncio.sleep(0.02)
                assert not gui_app.window.grab().toImage().isNull(), key
            chart = usage.charts["models"]
            base = palette.color(QPalette.ColorRole.Base)
            assert chart.plot.backgroundBrush().color() == base
        wizard = gui_app.open_setup()
        assert not wizard.grab().toImage().isNull()
        wizard.reject()
    finally:
        qt.setPalette(light)


async def test_overview_says_lmstudios_advice_once(gui_app: LMBridgeApp) -> None:
    from lmbridge.lmstudio.errors import not_running

    overview = gui_app.page("overview")
    assert isinstance(overview, OverviewPanel)
    await eventually(lambda: "local" in overview.upstream_dots)
    bus = gui_app.controller.bus
    why = not_running("127.0.0.1:1234").message
    bus.publish(
        TOPIC_STATE, ConnectionStatus(state=ConnectionState.DISCONNECTED, error=why)
    )
    line = overview.upstream_dots["local"]
    assert line.kind == "error"
    assert line.plain == f"local (LM Studio) — {why}"
    assert line.plain.lower().count("start") == 1
    bus.publish(
        TOPIC_STATE,
        ConnectionStatus(state=ConnectionState.DISCONNECTED, error="connection lost"),
    )
    assert line.plain.lower().count("start lm studio") == 1
    assert line.plain.startswith("local (LM Studio) — connection lost; start")


async def test_a_damaged_database_is_shown_and_started_fresh(
    fake_lm: FakeLMStudio,
    fake_upstream: FakeOpenAIUpstream,
    tmp_path: Path,
    expected_errors: Callable[[str], None],
) -> None:
    from lmbridge.gui import message

    expected_errors("the database is unavailable")
    from lmbridge.gui.controller import DATABASE_CONDITION

    damaged = config.data_dir() / "lmbridge.db"
    damaged.parent.mkdir(parents=True, exist_ok=True)
    damaged.write_bytes(b"this is not a database" * 100)
    app = await make_app(app_settings(fake_lm, fake_upstream), tmp_path)
    try:
        overview = app.page("overview")
        assert isinstance(overview, OverviewPanel)
        assert overview.database_status.kind == "error"
        assert "damaged" in overview.database_status.plain
        assert "rename" not in overview.database_status.plain  # no manual steps
        assert overview.fresh_database_button.isVisibleTo(overview)
        assert DATABASE_CONDITION in message.global_bridge.conditions
        overview.fresh_database_button.click()
        await eventually(lambda: overview.database_status.kind == "ok", what="fresh")
        assert not overview.fresh_database_button.isVisibleTo(overview)
        assert DATABASE_CONDITION not in message.global_bridge.conditions
        kept = [p for p in damaged.parent.iterdir() if "broken" in p.name]
        assert kept and kept[0].read_bytes().startswith(b"this is not a database")
    finally:
        await close_app(app)


async def test_an_lmstudio_upstream_without_the_sdk_says_model_management_is_off(
    fake_upstream: FakeOpenAIUpstream, tmp_path: Path
) -> None:
    """An `lmstudio` upstream pointed at a server that answers REST but not
    LM Studio's SDK: requests go by REST, and the Overview and Models pages
    say that model management is off there (not that the server is down)."""
    from lmbridge.gui.models.view import ModelsPanel

    settings = config.parse(f"""
[server]
port = 0

[[upstream]]
name = "local"
kind = "lmstudio"
base_url = "{fake_upstream.url}"
""")
    app = await make_app(settings, tmp_path)
    try:
        overview = app.page("overview")
        assert isinstance(overview, OverviewPanel)
        await eventually(
            lambda: (
                "model management is off"
                in getattr(overview.upstream_dots.get("local"), "plain", "")
            ),
            what="the Overview's line for the upstream",
            timeout=20,
        )
        line = overview.upstream_dots["local"]
        assert line.kind == "warning"
        assert "answers requests" in line.plain
        assert fake_upstream.url.split("//")[1].split("/")[0] in line.plain
        models = app.page("models")
        assert isinstance(models, ModelsPanel)
        app.window.show_page("models")
        await eventually(
            lambda: "Model management is off" in models.status.plain,
            what="the Models page's status",
        )
        assert "by REST" in models.status.plain
    finally:
        await close_app(app)


async def test_run_settles_the_collector_once_started(
    fake_lm: FakeLMStudio, fake_upstream: FakeOpenAIUpstream, tmp_path: Path
) -> None:
    """What is alive once the app has started is set aside from garbage
    collection (`MainThreadGC.settle`): a full collection then scans only
    what came after, a few ms instead of a 300 ms freeze of the UI."""
    app = LMBridgeApp(
        app_settings(fake_lm, fake_upstream),
        tmp_path / "config.toml",
        tray_available=False,
        prefs=Prefs(tmp_path / "gui.ini"),
        setup=False,
    )
    collector = MainThreadGC(interval_ms=60_000)
    tracked_before = len(gc.get_objects())
    settled: list[tuple[int, ProxyPhase]] = []

    def settle() -> None:
        collector.settle()
        settled.append((len(gc.get_objects()), app.controller.phase))
        app.request_quit()

    try:
        assert await asyncio.wait_for(app.run(started=settle), 30) == 0
        [(tracked_after, phase)] = settled
        assert phase is ProxyPhase.RUNNING  # called once the proxy served
        assert gc.get_freeze_count() > tracked_before // 2
        assert tracked_after < tracked_before // 10
    finally:
        collector.stop()
        gc.unfreeze()
        gc.disable()  # the suite's collection stays with its fixture
        await close_app(app)
