"""Usage: the charts from the request history, and the Requests page
showing requests from before a restart (the history in the database)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from fakes.lmstudio_server import FakeLMStudio
from fakes.openai_upstream import FakeOpenAIUpstream
from gui.helpers import app_settings, close_app, eventually, make_app
from lmbridge.gui.app import LMBridgeApp
from lmbridge.gui.requests.view import RequestsPanel
from lmbridge.gui.usage.charts import SERIES_COLORS, DayChart, nice_ticks
from lmbridge.gui.usage.view import UsagePanel


async def ask(app: LMBridgeApp, n: int, model: str = "gpt-5") -> None:
    async with aiohttp.ClientSession() as session:
        for i in range(n):
            body = {
                "model": model,
                "stream": True,
                "stream_options": {"include_usage": True},
                "messages": [{"role": "user", "content": f"hi {i}"}],
            }
            async with session.post(
                app.controller.url + "/v1/chat/completions",
                json=body,
                headers={"User-Agent": "curl/8.5.0"},
            ) as resp:
                assert resp.status == 200
                await resp.read()


async def test_usage_charts_from_the_history(gui_app: LMBridgeApp) -> None:
    await ask(gui_app, 3)
    await eventually(lambda: gui_app.log.stats.requests == 3, what="the requests")
    panel = gui_app.page("usage")
    assert isinstance(panel, UsagePanel)
    gui_app.window.show_page("usage")
    panel.refresh()
    await eventually(
        lambda: panel.data is not None and panel.data.requests == 3,
        what="the usage data",
    )
    data = panel.data
    assert data is not None and len(data.days) == 7
    assert list(data.tokens_by_model) == ["fake-model"]
    assert data.tokens_by_model["fake-model"][-1] > 0  # today, the last bar
    assert list(data.tokens_by_client) == ["curl"]
    assert data.ttft["median"][-1] is not None
    assert "3 requests" in panel.summary.text()
    chart = panel.charts["models"]
    assert chart.series_keys == ["fake-model"]
    assert chart.days == data.days
    panel.range.setCurrentIndex(2)  # 30 days
    await eventually(
        lambda: panel.data is not None and len(panel.data.days) == 30,
        what="30 days",
    )


async def test_usage_page_with_the_proxy_stopped(gui_app: LMBridgeApp) -> None:
    """The history is the app's, not the running proxy's: it stays readable."""
    panel = gui_app.page("usage")
    assert isinstance(panel, UsagePanel)
    await gui_app.controller.stop()
    panel.refresh()
    assert panel.refresh_button.isEnabled()
    assert gui_app.controller.usage is not None
    assert await gui_app.controller.usage.count() >= 0


async def test_requests_from_before_a_restart_are_shown(
    fake_lm: FakeLMStudio, fake_upstream: FakeOpenAIUpstream, tmp_path: Path
) -> None:
    settings = app_settings(fake_lm, fake_upstream)
    first = await make_app(settings, tmp_path)
    try:
        await ask(first, 2)
        await eventually(lambda: first.log.stats.requests == 2)
    finally:
        await close_app(first)  # the recorder writes what is left on close

    second = await make_app(settings, tmp_path)
    try:
        panel = second.page("requests")
        assert isinstance(panel, RequestsPanel)
        await eventually(lambda: panel.proxy.rowCount() == 2, what="the history")
        assert second.log.stats.requests == 2  # today's numbers include them
        route = str(panel.model.index(0, panel.model.column_position("route")).data())
        assert route == "gpt-5 → cloud/fake-model"
        await ask(second, 1)
        await eventually(lambda: panel.proxy.rowCount() == 3, what="a new one")
        assert second.log.rows[-1].model == "gpt-5"
        assert second.log.rows[0].request_body == ""  # bodies are not kept
    finally:
        await close_app(second)


def test_value_axis_steps_are_round_and_whole_for_counts() -> None:
    assert nice_ticks(60, whole=True) == [0, 20, 40, 60]
    assert nice_ticks(3, whole=True) == [0, 1, 2, 3]  # errors: never 0.5 errors
    assert nice_ticks(0.15, whole=False) == [0, 0.05, 0.1, 0.15]
    assert nice_ticks(1_700_000, whole=True)[-1] == 2_000_000
    assert nice_ticks(0, whole=True) == [0, 1]


def colours_in(chart: DayChart) -> set[str]:
    image = chart.plot.grab().toImage()
    return {
        image.pixelColor(x, y).name()
        for x in range(0, image.width(), 2)
        for y in range(0, image.height(), 2)
    }


def test_charts_paint_stacked_bars_and_lines_with_gaps(qtbot: Any) -> None:
    days = [f"2026-12-0{d}" for d in range(1, 8)]
    bars = DayChart("Tokens per day by model")
    qtbot.addWidget(bars)
    bars.resize(500, 300)
    bars.bars(days, {"a": [0, 0, 0, 0, 0, 10, 30], "b": [0, 0, 0, 0, 0, 5, 0]})
    assert bars.top == 30 and bars.whole
    assert {SERIES_COLORS[0].lower(), SERIES_COLORS[1].lower()} <= colours_in(bars)
    lines = DayChart("Time to first token", "s")
    qtbot.addWidget(lines)
    lines.resize(500, 300)
    lines.lines(days, {"median": [None, 0.1, 0.2, None, None, 0.15, 0.12]})
    assert lines.top == 0.2 and not lines.whole
    assert SERIES_COLORS[0].lower() in colours_in(lines)
    assert "median" in lines.legend.text()
