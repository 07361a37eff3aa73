"""Banners tied to the condition that raised them (issue 20, point 3): a
condition shows until its cause clears, a task's failure until the same
task succeeds, LM Studio's trouble until it is connected again."""

from __future__ import annotations

import asyncio
from typing import Any

from fakes.lmstudio_server import FakeLMStudio
from gui.helpers import eventually
from lmbridge.gui import message
from lmbridge.gui.app import LMBridgeApp
from lmbridge.gui.notifications import LMSTUDIO_CONDITION
from lmbridge.gui.tasks import Tasks, failure_key
from lmbridge.gui.widgets import ConditionBanners
from lmbridge.lmstudio import TOPIC_STATE, ConnectionState, ConnectionStatus


async def test_a_condition_shows_until_cleared(qtbot: Any) -> None:
    banners = ConditionBanners()
    qtbot.addWidget(banners)
    message.condition("port", "error", "port 1 is taken")
    assert banners.visible_texts() == ["port 1 is taken"]
    message.condition("port", "error", "port 2 is taken")
    assert banners.visible_texts() == ["port 2 is taken"]  # replaced, not added
    message.condition("other", "warning", "something else")
    assert len(banners.visible_texts()) == 2
    assert message.clear("port")
    assert banners.visible_texts() == ["something else"]
    assert not message.clear("port")
    message.clear("other")
    assert banners.visible_texts() == []
    assert banners.isHidden()


async def test_clearing_a_key_clears_its_children(qtbot: Any) -> None:
    message.condition("lmstudio/list", "error", "a")
    message.condition("lmstudio/load", "error", "b")
    message.condition("lmstudiox", "error", "c")
    message.clear("lmstudio")
    assert list(message.global_bridge.conditions) == ["lmstudiox"]


async def test_a_dismissed_banner_returns_only_with_news(qtbot: Any) -> None:
    banners = ConditionBanners()
    qtbot.addWidget(banners)
    message.condition("k", "warning", "first")
    banners.banners["k"].close_button.click()
    assert banners.visible_texts() == []
    message.condition("k", "warning", "first")
    assert banners.visible_texts() == []
    message.condition("k", "warning", "second")
    assert banners.visible_texts() == ["second"]


async def test_an_action_on_a_condition_banner(qtbot: Any) -> None:
    clicked: list[bool] = []
    banners = ConditionBanners()
    qtbot.addWidget(banners)
    message.condition(
        "k", "error", "broken", [("Fix it", lambda: clicked.append(True))]
    )
    [fix] = banners.banners["k"].action_buttons()
    assert fix.text() == "Fix it"
    fix.click()
    assert clicked == [True]


async def test_a_task_failure_clears_on_the_next_success(
    messages: list[tuple[message.Level, str]],
) -> None:
    tasks = Tasks("test")
    outcome = {"fail": True}

    async def listing() -> None:
        if outcome["fail"]:
            raise OSError("no route")

    await asyncio.gather(tasks.start(listing(), what="Listing"), return_exceptions=True)
    await asyncio.sleep(0)
    key = failure_key("Listing")
    assert message.global_bridge.condition_text(key) == "Listing failed: no route"
    assert (message.Level.ERROR, "Listing failed: no route") in messages
    outcome["fail"] = False
    # Another owner succeeding at the same action clears it too.
    await Tasks("other").start(listing(), what="Listing")
    await asyncio.sleep(0)
    assert key not in message.global_bridge.conditions


async def test_lmstudio_listing_banner_goes_when_lmstudio_connects(
    gui_app: LMBridgeApp, fake_lm: FakeLMStudio
) -> None:
    """The issue's "Listing LM Studio's models failed: LM Studio is not
    running" beside "connected": the failure is keyed and the listing that
    follows the connection clears it."""
    window = gui_app.window
    key = failure_key("Listing LM Studio's models")
    message.condition(key, "error", "Listing LM Studio's models failed: gone")
    assert window.conditions.visible_texts()
    await eventually(lambda: gui_app.controller.lmstudio_status is not None)
    gui_app.models.refresh()
    await eventually(
        lambda: key not in message.global_bridge.conditions,
        what="the listing failure to clear",
    )
    assert window.conditions.visible_texts() == []


async def test_lmstudio_went_away_stays_only_while_it_is_away(
    gui_app: LMBridgeApp,
) -> None:
    await eventually(
        lambda: (
            gui_app.controller.lmstudio_status is not None
            and gui_app.controller.lmstudio_status.state is ConnectionState.CONNECTED
        )
    )
    bus = gui_app.controller.bus
    bus.publish(
        TOPIC_STATE,
        ConnectionStatus(state=ConnectionState.DISCONNECTED, error="connection lost"),
    )
    [text] = gui_app.window.conditions.visible_texts()
    assert text.startswith("LM Studio went away")
    # Without a tray the notification is not shown a second time beside it.
    assert "LM Studio went away" not in gui_app.window.banner.label.text()
    bus.publish(
        TOPIC_STATE,
        ConnectionStatus(state=ConnectionState.CONNECTED, address="127.0.0.1:1"),
    )
    assert gui_app.window.conditions.visible_texts() == []
    assert LMSTUDIO_CONDITION not in message.global_bridge.conditions


async def test_a_one_off_info_goes_away_by_itself(qtbot: Any) -> None:
    from lmbridge import config
    from lmbridge.gui.controller import ProxyController
    from lmbridge.gui.window import MainWindow

    controller = ProxyController(config.Settings())
    window = MainWindow(controller, [])
    qtbot.addWidget(window)
    window.info_timer.setInterval(50)
    message.info("copied")
    assert not window.banner.isHidden()
    await eventually(lambda: window.banner.isHidden(), what="the info to go")
    message.error("broken")
    await asyncio.sleep(0.2)
    assert not window.banner.isHidden()  # errors stay until dismissed
