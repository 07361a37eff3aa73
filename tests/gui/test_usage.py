"""Usage: the charts from the request history, and the Requests page
showing requests from before a restart (the history in the database)."""

from __future__ import annotations

import asyncio
import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from fakes.lmstudio_server import FakeLMStudio
from fakes.openai_upstream import FakeOpenAIUpstream
from gui.helpers import app_settings, close_app, eventually, make_app
from lmbridge.core.events import Phase, RequestRecord
from lmbridge.gui.app import LMBridgeApp
from lmbridge.gui.requests.view import RequestsPanel
from lmbridge.gui.usage.charts import SERIES_COLORS, DayChart, nice_ticks
from lmbridge.gui.usage.data import load_usage, update_today
from lmbridge.gui.usage.manager import UPDATE_MS
from lmbridge.gui.usage.view import UsagePanel
from lmbridge.store.db import FILENAME, Database
from lmbridge.store.usage import UsageStore


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


async def ask_failing(app: LMBridgeApp) -> None:
    body = {"model": "gpt-5", "messages": [{"role": "user", "content": "x"}]}
    async with (
        aiohttp.ClientSession() as session,
        session.post(app.controller.url + "/v1/chat/completions", json=body) as resp,
    ):
        assert resp.status >= 500
        await resp.read()


def usage_page(app: LMBridgeApp) -> UsagePanel:
    panel = app.page("usage")
    assert isinstance(panel, UsagePanel)
    app.window.show_page("usage")
    return panel


async def test_usage_charts_from_the_history(
    gui_app: LMBridgeApp, fake_upstream: FakeOpenAIUpstream
) -> None:
    fake_upstream.script.cached_tokens = 4  # of 11 prompt tokens
    await ask(gui_app, 3)
    await eventually(lambda: gui_app.log.stats.requests == 3, what="the requests")
    panel = usage_page(gui_app)
    await eventually(
        lambda: panel.data is not None and panel.data.requests == 3,
        what="the usage data",
    )
    data = panel.data
    assert data is not None and len(data.days) == 7
    assert list(data.tokens_by_model) == ["fake-model"]
    assert data.tokens_by_model["fake-model"][-1] > 0  # today, the last bar
    assert list(data.tokens_by_client) == ["curl"]
    ttft = data.ttft_ms["median"][-1]
    assert ttft is not None and ttft > 0
    assert "3 requests" in panel.summary.text()
    chart = panel.charts["models"]
    assert chart.series_keys == ["fake-model"]
    cache = panel.charts["cache"]
    assert cache.series_keys == ["fake-model"] and cache.kind == "lines"
    assert cache.top == 100.0  # a percentage
    assert data.cache_share["fake-model"][-1] == pytest.approx(400 / 11)
    assert data.cache_share["fake-model"][:-1] == [None] * 6
    assert chart.days == data.days
    panel.range.setCurrentIndex(2)  # 30 days
    await eventually(
        lambda: panel.data is not None and len(panel.data.days) == 30,
        what="30 days",
    )
    assert panel.data is not None and panel.data.requests == 3


async def test_requests_appear_on_usage_and_requests_without_refresh(
    gui_app: LMBridgeApp,
) -> None:
    """The page is open and empty; requests come in; it follows them, and
    reads only today again, not the whole range, for each update."""
    panel = usage_page(gui_app)
    await eventually(lambda: panel.data is not None, what="the first read")
    assert panel.summary.text().startswith("No requests in the last 7 days yet.")
    assert panel.usage.reads == 1
    await ask(gui_app, 2)
    await eventually(
        lambda: panel.data is not None and panel.data.requests == 2,
        what="Usage to show the requests",
    )
    await eventually(lambda: "2 requests" in panel.summary.text())
    assert "No requests" not in panel.summary.text()
    assert panel.charts["models"].series_keys == ["fake-model"]
    requests = gui_app.page("requests")
    assert isinstance(requests, RequestsPanel)
    assert requests.proxy.rowCount() == 2
    await ask(gui_app, 1, model="claude-haiku-4-5")
    await eventually(
        lambda: panel.data is not None and panel.data.requests == 3,
        what="the third request",
    )
    assert panel.usage.reads == 1  # today was updated in place
    assert requests.proxy.rowCount() == 3


async def test_usage_hidden_costs_nothing_and_catches_up_when_shown(
    gui_app: LMBridgeApp,
) -> None:
    panel = usage_page(gui_app)
    await eventually(lambda: panel.data is not None, what="the first read")
    gui_app.window.show_page("requests")
    assert not panel.usage.active
    await ask(gui_app, 2)
    await eventually(lambda: gui_app.log.stats.requests == 2)
    await asyncio.sleep(UPDATE_MS / 1000 + 0.3)
    assert panel.usage.stale
    assert panel.data is not None and panel.data.requests == 0  # not read
    gui_app.window.show_page("usage")
    await eventually(
        lambda: panel.data is not None and panel.data.requests == 2,
        what="the page to catch up",
    )
    assert not panel.usage.stale


async def test_axes_in_their_units(
    gui_app: LMBridgeApp, fake_upstream: FakeOpenAIUpstream
) -> None:
    """TTFT in ms (never a "(x0.001)" scale); errors counted in whole steps
    from 0 (never 0.1 ... 1)."""
    panel = usage_page(gui_app)
    await ask(gui_app, 1)
    fake_upstream.script.status = 500
    await ask_failing(gui_app)
    errors = panel.charts["errors"]
    await eventually(lambda: errors.top == 1.0, what="the errors chart")
    assert errors.whole and nice_ticks(errors.top, errors.whole) == [0.0, 1.0]
    ttft = panel.charts["ttft"]
    assert ttft.unit == "ms"
    assert panel.data is not None
    values = [v for v in panel.data.ttft_ms["median"] if v is not None]
    assert values and values[-1] > 1  # milliseconds, not seconds
    assert ttft.top == max(v for vs in ttft.values.values() for v in vs if v)


async def test_usage_page_with_the_proxy_stopped(gui_app: LMBridgeApp) -> None:
    """The history is the app's, not the running proxy's: it stays readable."""
    await ask(gui_app, 1)
    await gui_app.controller.stop()
    panel = usage_page(gui_app)
    await eventually(
        lambda: panel.data is not None and panel.data.requests == 1,
        what="the history with the proxy stopped",
    )
    assert "1 request, " in panel.summary.text()


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


def at(day: int, hour: int = 12) -> float:
    """Epoch seconds of a local time in January 2025 (days are local)."""
    return datetime.datetime(2025, 1, day, hour).timestamp()


def finished(received: float, target: str, **fields: object) -> RequestRecord:
    values: dict[str, object] = {
        "client": "claude-cli/2.0.1",
        "status": 200,
        "tokens_in": 100,
        "tokens_out": 20,
        "stream": True,
        "first_token": 0.25,
        "done": 1.0,
        **fields,
    }
    record = RequestRecord(received=received, target=target, **values)  # type: ignore[arg-type]
    record.phase = Phase.FINISHED
    return record


async def test_updating_today_equals_reading_everything(tmp_path: Path) -> None:
    """What the page does per update (read today, put it in place) gives
    exactly what a full read gives, and a new day reads the whole range."""
    db = Database(tmp_path / FILENAME)
    await db.open()
    try:
        store = UsageStore(db)
        await store.add(
            [finished(at(8), "qwen", cached_tokens=50), finished(at(10, 9), "gemma")]
        )
        now = at(10, 18)
        data = await load_usage(store, 7, now)
        await store.add(
            [
                finished(at(10, 10), "gemma", cached_tokens=25),
                finished(at(10, 11), "llama", cached_tokens=100),  # new today
                finished(at(10, 12), "gemma", status=502, error="upstream down"),
            ]
        )
        updated = await update_today(store, data, now)
        assert updated == await load_usage(store, 7, now)
        assert updated.requests == 5 and updated.error_count == 1
        assert updated.tokens_by_model["llama"] == [0.0] * 6 + [120.0]
        assert updated.ttft_ms["median"][-1] == 250.0
        # The share of prompt tokens from cache, of the requests that said.
        assert updated.cache_share["qwen"] == [None] * 4 + [50.0, None, None]
        assert updated.cache_share["gemma"] == [None] * 6 + [25.0]
        assert updated.cache_share["llama"] == [None] * 6 + [100.0]
        tomorrow = await update_today(store, updated, at(11, 9))
        assert tomorrow.days[-1] == "2025-01-11"
        assert tomorrow == await load_usage(store, 7, at(11, 9))
    finally:
        await db.close()


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
