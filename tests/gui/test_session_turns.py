"""The Sessions page's Turns of sessions without a chain (a Chat upstream):
their whole stored history, more than the request log's 1,000 requests,
plus this run's turns; a Reset made on the page that survives a restart of
the app; and a database that cannot be used, which leaves the page
counting from the request log as before."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aiohttp
from PySide6.QtCore import Qt

from fakes.lmstudio_server import FakeLMStudio
from fakes.openai_upstream import FakeOpenAIUpstream
from faults.dbfaults import corrupt, held_lock
from gui.helpers import app_settings, close_app, eventually, make_app
from lmbridge import config
from lmbridge.gui import message
from lmbridge.gui.app import LMBridgeApp
from lmbridge.gui.sessions.turns import StoredTurns, request_turns
from lmbridge.gui.sessions.view import SessionsPanel
from lmbridge.store.db import Database
from lmbridge.store.usage import UsageStore
from records import finished

LONG = "long-session"
SUBAGENT = f"{LONG}/agent/a1"
STORED = 1200  # more than the request log's 1,000


async def prefill_history() -> None:
    """The app's history as an earlier run left it: 1,200 requests of one
    session, 30 of its subagent, 50 without a session key."""
    db = Database.in_dir(config.data_dir())
    await db.open()
    try:
        earlier = time.time() - 86400
        client = "claude-cli/2.0.1 (external, cli)"
        await UsageStore(db).add(
            [
                finished(earlier + n, session_key=LONG, client=client)
                for n in range(STORED)
            ]
            + [
                finished(earlier + n + 0.5, session_key=SUBAGENT, client=client)
                for n in range(30)
            ]
            + [finished(earlier + 2000 + n, session_key=None) for n in range(50)]
        )
    finally:
        await db.close()


async def chat_turns(app: LMBridgeApp, key: str, count: int) -> None:
    """`count` turns of one conversation, each with the history before it."""
    history: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as session:
        for turn in range(count):
            history.append({"role": "user", "content": f"question {turn}"})
            async with session.post(
                app.controller.url + "/v1/chat/completions",
                json={"model": "gpt-5", "messages": history},
                headers={"X-Session-Id": key},
            ) as resp:
                assert resp.status == 200, await resp.text()
                data = await resp.json()
            history.append(data["choices"][0]["message"])


def turns_by_key(panel: SessionsPanel) -> dict[str, str]:
    key = panel.model.column_position("key")
    turns = panel.model.column_position("turns")
    return {
        str(panel.model.index(row, key).data(Qt.ItemDataRole.ToolTipRole)): str(
            panel.model.index(row, turns).data()
        )
        for row in range(panel.model.rowCount())
    }


def turns_tip(panel: SessionsPanel, key: str) -> str:
    position = panel.model.column_position("turns")
    row = next(i for i, r in enumerate(panel.model.rows) if r.key == key)
    return str(panel.model.index(row, position).data(Qt.ItemDataRole.ToolTipRole))


async def sessions_page(app: LMBridgeApp) -> SessionsPanel:
    panel = app.page("sessions")
    assert isinstance(panel, SessionsPanel)
    app.window.show_page("sessions")
    return panel


async def reset(panel: SessionsPanel, key: str) -> None:
    panel.select_key(key)
    panel.reset_button.click()
    panel.confirm.confirm_button().click()


async def test_turns_count_the_whole_history_and_a_reset_survives_a_restart(
    fake_lm: FakeLMStudio,
    fake_upstream: FakeOpenAIUpstream,
    tmp_path: Path,
    qtmodeltester: Any,
) -> None:
    await prefill_history()
    settings = app_settings(fake_lm, fake_upstream)  # Chat: no chains
    app = await make_app(settings, tmp_path)
    try:
        panel = await sessions_page(app)
        await chat_turns(app, LONG, 2)
        await eventually(
            lambda: turns_by_key(panel) == {LONG: str(STORED + 2), SUBAGENT: "30"},
            what="the whole history's turns and this run's",
        )
        qtmodeltester.check(panel.model)
        assert app.controller.services is not None
        assert not await app.controller.services.sessions.sessions()  # no chain
        # The turn list shows what the request log holds, and says so.
        panel.select_key(LONG)
        await eventually(lambda: panel.turns_model.rowCount() > 0, what="its turns")
        shown = panel.turns_model.rowCount()
        assert shown < STORED
        assert f"The last {shown} of its 1,202 turns" in panel.turns_hint.text()

        await reset(panel, LONG)  # the session and its subagent's chain
        await eventually(
            lambda: turns_by_key(panel) == {LONG: "0", SUBAGENT: "0"},
            what="the reset",
        )
        panel.select_key(LONG)
        assert (
            panel.turns_hint.text()
            == "No turn since this session was reset (just now)."
        )
        await chat_turns(app, LONG, 2)
        await eventually(lambda: turns_by_key(panel)[LONG] == "2", what="2 new turns")
    finally:
        await close_app(app)

    app = await make_app(settings, tmp_path)  # the app restarted
    try:
        panel = await sessions_page(app)
        await eventually(
            lambda: turns_by_key(panel) == {LONG: "2", SUBAGENT: "0"},
            what="the turns since the reset, after a restart",
        )
        assert "reset here" in turns_tip(panel, LONG)
        await chat_turns(app, LONG, 1)
        await eventually(lambda: turns_by_key(panel)[LONG] == "3", what="one more")
    finally:
        await close_app(app)


async def test_a_damaged_database_leaves_the_page_counting_the_request_log(
    fake_lm: FakeLMStudio,
    fake_upstream: FakeOpenAIUpstream,
    tmp_path: Path,
    expected_errors: Any,
    messages: list[tuple[message.Level, str]],
) -> None:
    """As before the history was counted: a database that cannot be opened
    (Overview says so) leaves the turns of the request log, and a reset
    that lasts until the app quits, which the page says."""
    expected_errors("the database is unavailable")
    corrupt(config.data_dir() / "lmbridge.db")
    app = await make_app(app_settings(fake_lm, fake_upstream), tmp_path)
    try:
        assert app.controller.usage is None
        panel = await sessions_page(app)
        await chat_turns(app, "session-x", 3)
        await eventually(
            lambda: turns_by_key(panel) == {"session-x": "3"}, what="3 turns"
        )
        await reset(panel, "session-x")
        await eventually(
            lambda: turns_by_key(panel) == {"session-x": "0"}, what="the reset"
        )
        assert any(
            level is message.Level.WARNING
            and "the reset could not be saved" in text
            and "after LM Bridge restarts" in text
            for level, text in messages
        ), messages
        await chat_turns(app, "session-x", 2)
        await eventually(
            lambda: turns_by_key(panel) == {"session-x": "2"}, what="2 more turns"
        )
    finally:
        await close_app(app)


async def test_a_fresh_database_is_counted_anew(
    fake_lm: FakeLMStudio, fake_upstream: FakeOpenAIUpstream, tmp_path: Path
) -> None:
    """ "Start a fresh database" (Overview) moves the history aside: the
    turns are this run's, not the old file's counts kept from before."""
    await prefill_history()
    app = await make_app(app_settings(fake_lm, fake_upstream), tmp_path)
    try:
        panel = await sessions_page(app)
        await chat_turns(app, LONG, 2)
        await eventually(
            lambda: turns_by_key(panel).get(LONG) == str(STORED + 2),
            what="the whole history's turns",
        )
        await app.controller.reset_database()
        await eventually(
            lambda: turns_by_key(panel).get(LONG) == "2", what="this run's turns"
        )
    finally:
        await close_app(app)


async def test_a_locked_database_still_counts_the_history(
    fake_lm: FakeLMStudio, fake_upstream: FakeOpenAIUpstream, tmp_path: Path
) -> None:
    """Another program holds the database's write lock: the history is
    still read (write-ahead log), so Turns stay whole; this run's turns,
    which cannot be written meanwhile, come from the request log."""
    await prefill_history()
    app = await make_app(app_settings(fake_lm, fake_upstream), tmp_path)
    try:
        panel = await sessions_page(app)
        await eventually(
            lambda: turns_by_key(panel).get(LONG) == str(STORED), what="the history"
        )
        async with held_lock(config.data_dir() / "lmbridge.db"):
            await chat_turns(app, LONG, 3)
            await eventually(
                lambda: turns_by_key(panel).get(LONG) == str(STORED + 3),
                what="the history and this run's turns, under the lock",
            )
    finally:
        await close_app(app)


def test_this_runs_turns_come_from_the_history_or_the_log_whichever_has_more() -> None:
    started = 1000.0
    logged = [
        finished(990.0, session_key="k"),  # read from the history at start
        *(finished(started + n, session_key="k") for n in range(3)),
    ]
    # Nothing stored: the request log's count (since the reset).
    assert request_turns("k", logged, 0.0, None) == 4
    assert request_turns("k", logged, 1001.0, None) == 2
    # The history written so far lags this run's last turn: the log's count.
    lagging = StoredTurns(started, before={"k": 500}, during={"k": 2})
    assert request_turns("k", logged, 0.0, lagging) == 503
    # The log let this run's earlier turns go: the history's count.
    rolled = StoredTurns(started, before={"k": 500}, during={"k": 1500})
    assert request_turns("k", logged, 0.0, rolled) == 2000
    # Not recorded this run (`usage.record = false`): the log's.
    unrecorded = StoredTurns(started, before={"k": 500}, during={})
    assert request_turns("k", logged, 0.0, unrecorded) == 503
