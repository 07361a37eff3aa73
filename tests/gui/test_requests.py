"""Requests: a real request through the proxy appears live with the right
columns; the detail pane, filter, pause, Copy as curl and Replay."""

from __future__ import annotations

import asyncio
import json
from http import HTTPStatus
from typing import Any

import aiohttp
import anthropic

from fakes.openai_upstream import FakeOpenAIUpstream
from gui.helpers import eventually
from lmbridge.gui.app import LMBridgeApp
from lmbridge.gui.requests.view import RequestsPanel


def requests_page(app: LMBridgeApp) -> RequestsPanel:
    panel = app.page("requests")
    assert isinstance(panel, RequestsPanel)
    app.window.show_page("requests")
    return panel


def row_texts(panel: RequestsPanel, row: int) -> list[str]:
    model = panel.proxy
    return [str(model.index(row, c).data()) for c in range(model.columnCount())]


async def stream_claude(app: LMBridgeApp, text: str = "Hi", **extra: Any) -> str:
    client = anthropic.AsyncAnthropic(
        base_url=app.controller.url, api_key="sk-ant-secret-key-1234567890"
    )
    out = []
    async with client.messages.stream(
        model="claude-sonnet-4-6",
        max_tokens=100,
        messages=[{"role": "user", "content": text}],
        **extra,
    ) as stream:
        async for chunk in stream.text_stream:
            out.append(chunk)
    await client.close()
    return "".join(out)


async def test_request_appears_with_its_columns(
    gui_app: LMBridgeApp, qtmodeltester: Any
) -> None:
    panel = requests_page(gui_app)
    answer = await stream_claude(gui_app)
    assert answer == "Hello from the fake upstream."
    await eventually(lambda: panel.proxy.rowCount() == 1, what="the row")
    await eventually(lambda: row_texts(panel, 0)[4] == "200", what="the status")
    time, client, protocol, route, _status, ttft, took, tokens = row_texts(panel, 0)
    assert len(time) == 8 and time[2] == ":"
    assert client == "AsyncAnthropic"  # the product, as the history groups it
    assert protocol == "anthropic (stream)"
    assert route == "claude-sonnet-4-6 → cloud/fake-model"
    assert ttft.endswith(("ms", "s")) and took.endswith(("ms", "s"))
    assert tokens == "11 / 7"
    qtmodeltester.check(panel.model)
    stats = gui_app.log.stats
    assert (stats.requests, stats.tokens_in, stats.tokens_out) == (1, 11, 7)
    assert stats.median_ttft is not None


async def test_detail_pane_shows_bodies_redacted(gui_app: LMBridgeApp) -> None:
    panel = requests_page(gui_app)
    await stream_claude(
        gui_app, "What is my key?", metadata={"user_id": "sk-proj-abcdefghijklmnop1234"}
    )
    await eventually(
        lambda: row_texts(panel, 0)[4] == "200" if panel.proxy.rowCount() else False
    )
    panel.select_row(0)
    detail = panel.detail
    request = detail.request_text.toPlainText()
    assert json.loads(request)["model"] == "claude-sonnet-4-6"
    assert '\n  "model"' in request  # pretty-printed
    assert "sk-proj-abcdefghijklmnop1234" not in request
    assert "«redacted»" in request or "[REDACTED]" in request
    assert "[the body was longer" not in request
    assert detail.response_text.toPlainText() == "Hello from the fake upstream."
    detail.raw.setChecked(True)
    raw = detail.response_text.toPlainText()
    assert "event: message_start" in raw and "data: " in raw
    timings = detail.timings.toPlainText()
    assert "First token" in timings and "in 11 · out 7" in timings
    assert "Prompt        11 tokens\n" in timings and "Chain         —" in timings
    curl = detail.curl()
    assert curl.startswith(f"curl -sS {gui_app.controller.url}/v1/messages")
    assert "anthropic-version: " in curl
    assert "sk-ant-secret" not in curl and "x-api-key" not in curl.lower()


async def test_replay_sends_it_again(
    gui_app: LMBridgeApp, fake_upstream: FakeOpenAIUpstream
) -> None:
    panel = requests_page(gui_app)
    await stream_claude(gui_app)
    await eventually(lambda: panel.proxy.rowCount() == 1)
    await eventually(lambda: row_texts(panel, 0)[4] == "200")
    panel.select_row(0)
    fake_upstream.script.text = "Replayed answer."
    panel.detail.replay_button.click()
    await eventually(lambda: panel.detail.last_reply is not None, what="the replay")
    reply = panel.detail.last_reply
    assert reply is not None and reply.ok
    assert reply.text == "Replayed answer."
    assert "Replay: 200" in panel.detail.reply_label.text()
    await eventually(lambda: panel.proxy.rowCount() == 2, what="the replay's row")
    assert row_texts(panel, 1)[1] == "lmbridge-replay"


async def test_filter_and_pause(gui_app: LMBridgeApp) -> None:
    panel = requests_page(gui_app)
    async with aiohttp.ClientSession() as session:
        for model in ("gpt-5", "claude-haiku-4-5"):
            body = {"model": model, "messages": [{"role": "user", "content": "x"}]}
            async with session.post(
                gui_app.controller.url + "/v1/chat/completions", json=body
            ) as resp:
                assert resp.status == 200
        await eventually(lambda: panel.proxy.rowCount() == 2)
        panel.filter.setText("HAIKU")
        assert panel.proxy.rowCount() == 1
        assert row_texts(panel, 0)[3].startswith("claude-haiku-4-5")
        panel.filter.clear()

        panel.pause_button.click()
        assert panel.pause_button.text() == "Resume"
        body = {"model": "gpt-5", "messages": [{"role": "user", "content": "y"}]}
        async with session.post(
            gui_app.controller.url + "/v1/chat/completions", json=body
        ) as resp:
            assert resp.status == 200
        await eventually(lambda: gui_app.log.stats.requests == 3)
        await eventually(lambda: "1 waiting" in panel.count.text())
        assert panel.proxy.rowCount() == 2
        panel.pause_button.click()
        await eventually(lambda: panel.proxy.rowCount() == 3)


async def test_errors_are_counted_and_explained(
    gui_app: LMBridgeApp, fake_upstream: FakeOpenAIUpstream
) -> None:
    panel = requests_page(gui_app)
    fake_upstream.script.status = 500
    async with aiohttp.ClientSession() as session:
        body = {"model": "gpt-5", "messages": [{"role": "user", "content": "x"}]}
        async with session.post(
            gui_app.controller.url + "/v1/chat/completions", json=body
        ) as resp:
            assert resp.status >= 500
    await eventually(lambda: gui_app.log.stats.errors == 1)
    await eventually(lambda: panel.proxy.rowCount() == 1)
    assert row_texts(panel, 0)[4].startswith("5")
    assert panel.proxy.index(0, panel.model.column_position("status")).data(
        3
    )  # error tip


async def test_history_is_bounded(gui_app: LMBridgeApp) -> None:
    from lmbridge.core.events import REQUEST_FINISHED, REQUEST_STARTED, RequestRecord

    panel = requests_page(gui_app)
    gui_app.log.limit = 20
    for i in range(50):
        record = RequestRecord(model=f"m{i}", protocol="openai", status=200)
        record.mark_done()
        gui_app.controller.bus.publish(REQUEST_STARTED, record)
        gui_app.controller.bus.publish(REQUEST_FINISHED, record)
    panel.model.flush()
    assert panel.proxy.rowCount() == 20
    assert row_texts(panel, 19)[3] == "m49"
    assert row_texts(panel, 0)[3] == "m30"
    assert gui_app.log.stats.requests == 50


async def test_a_slow_replay_can_be_cancelled(
    gui_app: LMBridgeApp, fake_upstream: FakeOpenAIUpstream
) -> None:
    panel = requests_page(gui_app)
    await stream_claude(gui_app)
    await eventually(lambda: panel.proxy.rowCount() == 1)
    panel.select_row(0)
    fake_upstream.script.first_byte_delay = 30.0
    panel.detail.replay_button.click()
    assert panel.detail.replay_button.text() == "Cancel replay"
    await eventually(
        lambda: fake_upstream.active == 1 or len(fake_upstream.requests) == 2
    )
    panel.detail.replay_button.click()
    await eventually(lambda: not panel.detail.tasks.running(), what="the cancel")
    assert panel.detail.replay_button.text() == "Replay"
    assert panel.detail.reply_label.text() == "Replay cancelled"
    assert panel.detail.last_reply is None


async def test_a_failed_request_shows_its_error_first(
    gui_app: LMBridgeApp, fake_upstream: FakeOpenAIUpstream
) -> None:
    """The detail pane opens on the Response tab with the status, the kind
    of error and the upstream's message at the top, then what the client
    got; the Timings tab starts with the error too."""
    panel = requests_page(gui_app)
    fake_upstream.script.status = 500
    fake_upstream.script.error_message = "the GPU caught fire"
    async with aiohttp.ClientSession() as session:
        body = {"model": "gpt-5", "messages": [{"role": "user", "content": "x"}]}
        async with session.post(
            gui_app.controller.url + "/v1/chat/completions", json=body
        ) as resp:
            assert resp.status >= 500  # relayed as is (OpenAI to OpenAI)
            status = resp.status
            sent = await resp.json()
    first_line = f"✗ {status} {HTTPStatus(status).phrase} · upstream error"
    await eventually(lambda: panel.proxy.rowCount() == 1)
    await eventually(lambda: row_texts(panel, 0)[4] == str(status))
    detail = panel.detail
    assert detail.tabs.currentIndex() == 0  # nothing selected yet: Request
    panel.select_row(0)
    assert detail.tabs.currentWidget() is detail.response_page
    lines = detail.response_text.toPlainText().splitlines()
    assert lines[0] == first_line
    assert "the GPU caught fire" in lines[1]
    assert "not captured" not in detail.response_text.toPlainText()
    received = detail.response_text.toPlainText().split("what the client received")
    assert json.loads(received[1].split("\n", 1)[1]) == sent
    assert first_line in detail.header.text()
    assert detail.timings.toPlainText().startswith("Error")
    # A successful request after it opens on the tab the user is on.
    fake_upstream.script.status = 0
    detail.tabs.setCurrentIndex(0)
    await stream_claude(gui_app)
    await eventually(lambda: panel.proxy.rowCount() == 2)
    panel.select_row(1)
    await eventually(lambda: row_texts(panel, 1)[4] == "200")
    assert detail.tabs.currentIndex() == 0


async def test_columns_fit_their_content(gui_app: LMBridgeApp) -> None:
    """Every column is as wide as its text; the route gets the room left,
    so "Model → upstream/target" is not cut while others have room."""
    panel = requests_page(gui_app)
    gui_app.window.resize(1100, 720)
    await stream_claude(gui_app)
    await eventually(lambda: panel.proxy.rowCount() == 1)
    await eventually(lambda: row_texts(panel, 0)[4] == "200")
    await asyncio.sleep(0.1)
    table = panel.table
    header = table.horizontalHeader()
    for column in range(panel.proxy.columnCount()):
        needed = max(table.sizeHintForColumn(column), header.sectionSizeHint(column))
        assert table.columnWidth(column) >= needed, panel.model.COLUMNS.titles()[column]
    route = panel.model.column_position("route")
    others = sum(
        table.columnWidth(c) for c in range(panel.proxy.columnCount()) if c != route
    )
    assert table.columnWidth(route) + others <= table.viewport().width() + 1


async def test_a_translated_failure_keeps_what_the_client_got(
    gui_app: LMBridgeApp, fake_upstream: FakeOpenAIUpstream
) -> None:
    """Anthropic in, OpenAI upstream failing: the error the proxy answered
    in Anthropic's shape is the Response, under the error."""
    panel = requests_page(gui_app)
    fake_upstream.script.status = 500
    fake_upstream.script.error_message = "out of memory"
    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "x"}],
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            gui_app.controller.url + "/v1/messages",
            json=body,
            headers={"anthropic-version": "2023-06-01"},
        ) as resp,
    ):
        status = resp.status
        sent = await resp.json()
    assert status == 502 and sent["type"] == "error"
    await eventually(lambda: panel.proxy.rowCount() == 1)
    await eventually(lambda: row_texts(panel, 0)[4] == "502")
    panel.select_row(0)
    text = panel.detail.response_text.toPlainText()
    assert text.startswith("✗ 502 Bad Gateway · upstream error\n")
    assert "out of memory" in text.splitlines()[1]
    received = text.split("what the client received ──\n")[1]
    assert json.loads(received) == sent


async def test_detail_pane_shows_the_turn_in_its_chain(
    gui_app: LMBridgeApp, fake_upstream: FakeOpenAIUpstream
) -> None:
    panel = requests_page(gui_app)
    script = fake_upstream.script
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Hi"}]
    headers = {"X-Claude-Code-Session-Id": "s-42"}
    async with aiohttp.ClientSession() as http:
        for prompt, cached in ((200, 0), (260, 190)):
            script.prompt_tokens, script.cached_tokens = prompt, cached
            body = {
                "model": "claude-sonnet-4-6",
                "max_tokens": 50,
                "messages": messages,
            }
            async with http.post(
                gui_app.controller.url + "/v1/messages", json=body, headers=headers
            ) as resp:
                assert resp.status == 200
                answer = await resp.json()
            messages += [
                {"role": "assistant", "content": answer["content"]},
                {"role": "user", "content": "more"},
            ]
    await eventually(lambda: panel.proxy.rowCount() == 2, what="two requests")
    await eventually(lambda: row_texts(panel, 0)[4] == "200", what="the status")
    for row in range(2):
        panel.select_row(row)
        record = panel.detail.record
        if record is not None and record.chain_turn == 2:
            break
    timings = panel.detail.timings.toPlainText()
    assert "260 tokens · 190 (73%) from cache · 70 new" in timings
    assert "turn 2 · kept 200 tokens (77%) · appended" in timings
