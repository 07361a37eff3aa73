"""A busy port and restarts (issue 20, point 5): the GUI offers the fix it
has (a free port in one click; stopping the other LM Bridge), refuses an
upstream's port next to the field, never leaves the proxy stopped without
saying why and how back, and keeps tray items short."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QCheckBox

from fakes.lmstudio_server import FakeLMStudio
from fakes.openai_upstream import FakeOpenAIUpstream
from gui.helpers import (
    app_settings,
    close_app,
    eventually,
    make_app,
    settings_field,
)
from lmbridge import config
from lmbridge.gui import message
from lmbridge.gui.app import LMBridgeApp
from lmbridge.gui.controller import PROXY_CONDITION, ProxyPhase
from lmbridge.gui.icons import TrayState
from lmbridge.gui.overview.view import OverviewPanel
from lmbridge.gui.portfix import (
    free_port,
    listening_pid,
    probe_lmbridge,
    upstream_port_reason,
)
from lmbridge.gui.settings.view import SettingsPanel
from lmbridge.gui.tray import MENU_TEXT_MAX, short_text, tray_state

PROC_NET = Path("/proc/net/tcp")
needs_proc = pytest.mark.skipif(
    not PROC_NET.exists(), reason="needs Linux /proc to find a port's owner"
)


def taken_settings(
    port: int, fake_lm: FakeLMStudio, fake_upstream: FakeOpenAIUpstream
) -> config.Settings:
    settings = app_settings(fake_lm, fake_upstream)
    settings.server.port = port
    return settings


@pytest.fixture
async def blocked_app(
    gui_app: LMBridgeApp,
    fake_lm: FakeLMStudio,
    fake_upstream: FakeOpenAIUpstream,
    tmp_path: Path,
) -> AsyncIterator[LMBridgeApp]:
    """A second app whose port the first (`gui_app`, an LM Bridge) holds."""
    taken = gui_app.controller.server
    assert taken is not None
    (tmp_path / "second").mkdir()
    second = await make_app(
        taken_settings(taken.port, fake_lm, fake_upstream),
        tmp_path / "second",
        tray=True,
    )
    yield second
    await close_app(second)


def proxy_banner_actions(app: LMBridgeApp) -> list[str]:
    banner = app.window.conditions.banners.get(PROXY_CONDITION)
    return [b.text() for b in banner.action_buttons()] if banner else []


async def test_a_busy_port_is_fixed_with_one_click(
    blocked_app: LMBridgeApp, gui_app: LMBridgeApp
) -> None:
    second = blocked_app
    taken = gui_app.controller.server
    assert taken is not None
    assert second.controller.phase is ProxyPhase.FAILED
    assert tray_state(second.controller) is TrayState.ERROR
    assert second.notifications[0][0] == "LM Bridge could not start"
    overview = second.page("overview")
    assert isinstance(overview, OverviewPanel)
    assert overview.proxy_status.kind == "error"
    assert overview.start_button.isEnabled()
    # The owner answers /health: it is another LM Bridge; the fix is offered.
    await eventually(
        lambda: any(
            a.startswith("Use free port") for a in proxy_banner_actions(second)
        ),
        what="the free-port button",
    )
    text = message.global_bridge.condition_text(PROXY_CONDITION)
    assert f"port {taken.port}" in text and "another LM Bridge" in text
    everything_shown = " ".join(
        [text, second.controller.error, *(n[2] for n in second.notifications)]
    )
    for advice in ("--port", "port_fallback", "server."):
        assert advice not in everything_shown  # no command-line advice
    # This test's other LM Bridge is in this very process: nothing to stop.
    assert "Stop the other LM Bridge" not in proxy_banner_actions(second)

    suggested = second.port_doctor.suggested
    banner = second.window.conditions.banners[PROXY_CONDITION]
    banner.action_buttons()[0].click()
    await eventually(lambda: second.controller.running, what="the proxy on a free port")
    assert second.controller.server is not None
    assert second.controller.server.port == suggested
    saved = config.load(second.controller.config_path)
    assert saved.server.port == suggested  # saved, so the next start works too
    assert PROXY_CONDITION not in message.global_bridge.conditions
    await eventually(lambda: PROXY_CONDITION not in second.window.conditions.banners)
    assert overview.proxy_status.kind == "ok"


async def test_tray_items_stay_short(blocked_app: LMBridgeApp) -> None:
    tray = blocked_app.tray
    assert tray is not None
    blocked_app.controller.error = "x" * 1000  # a long reason, as in the issue
    tray.refresh()
    assert tray.status_action.text() == "LM Bridge — not running"
    assert tray.status_action.toolTip().endswith("x" * 1000)
    blocked_app.controller.phase = ProxyPhase.RUNNING  # a long model name
    tray.refresh()
    assert len(tray.status_action.text()) <= MENU_TEXT_MAX
    assert tray.menu.toolTipsVisible()
    assert short_text("a\nb  c") == "a b c"


async def test_an_upstreams_port_is_refused_next_to_the_field(
    gui_app: LMBridgeApp, fake_lm: FakeLMStudio
) -> None:
    panel = gui_app.page("settings")
    assert isinstance(panel, SettingsPanel)
    path = gui_app.controller.config_path
    before = path.read_bytes() if path.exists() else None
    lm_port = int(fake_lm.base_url.rsplit(":", 1)[1].split("/")[0])
    panel.port.setValue(lm_port)
    assert not panel.port_error.isHidden()
    assert "upstream local" in panel.port_error.text()
    panel.save_button.click()
    assert panel.banner.level == "error"
    assert (path.read_bytes() if path.exists() else None) == before  # not written
    panel.port.setValue(lm_port + 1 if lm_port < 65535 else lm_port - 1)
    assert panel.port_error.isHidden()


def test_upstream_port_reason_knows_loopback_spellings() -> None:
    lm = [("local", "http://localhost:1234/v1")]
    assert "upstream local" in upstream_port_reason("127.0.0.1", 1234, lm)
    assert upstream_port_reason("0.0.0.0", 1234, lm)
    assert upstream_port_reason("::1", 1234, lm)
    assert not upstream_port_reason("127.0.0.1", 1235, lm)
    assert not upstream_port_reason("127.0.0.1", 1234, [("c", "https://api.x.com")])
    assert upstream_port_reason("127.0.0.1", 443, [("c", "https://127.0.0.1")])


def test_free_port_skips_taken_ports_and_upstreams() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        found = free_port(
            "127.0.0.1", port - 1, [("u", f"http://127.0.0.1:{port + 1}")]
        )
        assert found not in (port, port + 1)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", found))  # really free


@needs_proc
async def test_the_other_program_on_the_port_is_found(tmp_path: Path) -> None:
    """`listening_pid` finds the process that holds a port (the one "Stop
    the other LM Bridge" stops); a program that is not LM Bridge is told
    apart by its /health."""
    script = (
        "import socket, sys, time\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
        "print(s.getsockname()[1], flush=True); time.sleep(60)\n"
    )
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert child.stdout is not None
        port = int(await child.stdout.readline())
        assert await asyncio.to_thread(listening_pid, port) == child.pid
        assert await probe_lmbridge("127.0.0.1", port) is None
    finally:
        child.kill()
        await child.wait()


async def test_restart_that_fails_says_why_and_offers_the_way_back(
    gui_app: LMBridgeApp,
    fake_lm: FakeLMStudio,
    fake_upstream: FakeOpenAIUpstream,
) -> None:
    panel = gui_app.page("settings")
    assert isinstance(panel, SettingsPanel)
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        panel.port.setValue(port)
        panel.save_button.click()
        assert gui_app.controller.restart_needed
        [restart] = panel.banner.action_buttons()
        restart.click()
        await eventually(
            lambda: gui_app.controller.phase is ProxyPhase.FAILED, what="the failure"
        )
        await eventually(lambda: panel.banner.level == "error")
        assert "already in use" in panel.banner.label.text()
        assert [b.text() for b in panel.banner.action_buttons()] == ["Start proxy"]
        await eventually(
            lambda: any(
                a.startswith("Use free port") for a in proxy_banner_actions(gui_app)
            ),
            what="the free-port fix",
        )
        assert "another program" in message.global_bridge.condition_text(
            PROXY_CONDITION
        )
    # The port is free again: "Start proxy" brings the proxy back.
    panel.banner.action_buttons()[0].click()
    await eventually(lambda: gui_app.controller.running, what="the way back")
    assert PROXY_CONDITION not in message.global_bridge.conditions


async def test_a_save_while_stopped_offers_to_start(gui_app: LMBridgeApp) -> None:
    await gui_app.controller.stop()
    panel = gui_app.page("settings")
    assert isinstance(panel, SettingsPanel)
    fallback = settings_field(panel, "server.port_fallback", QCheckBox)
    fallback.setChecked(not fallback.isChecked())
    panel.save_button.click()
    assert "not running" in panel.banner.label.text()
    [start] = panel.banner.action_buttons()
    assert start.text() == "Start proxy now"
    start.click()
    await eventually(lambda: gui_app.controller.running, what="the start")


async def test_a_stale_port_failure_gives_way_to_the_new_settings(
    blocked_app: LMBridgeApp,
) -> None:
    second = blocked_app
    await eventually(
        lambda: any(
            a.startswith("Use free port") for a in proxy_banner_actions(second)
        ),
        what="the free-port button",
    )
    panel = second.page("settings")
    assert isinstance(panel, SettingsPanel)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    panel.port.setValue(port)
    panel.save_button.click()
    text = message.global_bridge.condition_text(PROXY_CONDITION)
    assert "settings changed since" in text and f":{port}" in text
    assert proxy_banner_actions(second) == ["Start proxy"]
    assert [b.text() for b in panel.banner.action_buttons()] == ["Start proxy now"]
    panel.banner.action_buttons()[0].click()
    await eventually(lambda: second.controller.running, what="the start")
    assert PROXY_CONDITION not in message.global_bridge.conditions


@needs_proc
async def test_stop_the_other_lmbridge_then_start_on_its_port(
    fake_lm: FakeLMStudio,
    fake_upstream: FakeOpenAIUpstream,
    tmp_path: Path,
) -> None:
    """The owner of the port is a real `lmbridge serve` of this user: the
    banner offers to stop it, and its port becomes ours."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    other_home = tmp_path / "other"
    other_home.mkdir()
    other_config = other_home / "config.toml"
    other_config.write_text(
        f'[[upstream]]\nname = "cloud"\nkind = "openai"\nbase_url = "{fake_upstream.url}"\n'
    )
    env = {**os.environ, "LMBRIDGE_HOME": str(other_home)}
    other = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lmbridge",
        "serve",
        "--port",
        str(port),
        "--config",
        str(other_config),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    app: LMBridgeApp | None = None
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while await probe_lmbridge("127.0.0.1", port) is None:
            assert asyncio.get_running_loop().time() < deadline, "lmbridge serve"
            assert other.returncode is None, "lmbridge serve exited"
            await asyncio.sleep(0.2)
        (tmp_path / "app").mkdir()
        app = ours = await make_app(
            taken_settings(port, fake_lm, fake_upstream), tmp_path / "app"
        )
        await eventually(
            lambda: "Stop the other LM Bridge" in proxy_banner_actions(ours),
            what="the stop button",
        )
        assert app.port_doctor.other_pid == other.pid
        banner = app.window.conditions.banners[PROXY_CONDITION]
        [stop] = [b for b in banner.action_buttons() if b.text().startswith("Stop")]
        stop.click()
        await asyncio.wait_for(other.wait(), 15)
        await eventually(lambda: ours.controller.running, what="our proxy there")
        assert app.controller.server is not None
        assert app.controller.server.port == port
        assert PROXY_CONDITION not in message.global_bridge.conditions
    finally:
        if other.returncode is None:
            other.kill()
            await other.wait()
        if app is not None:
            await close_app(app)
