"""Sessions (chains, override, allowed tools, reset) and Conversations
(stored chats, their messages, delete), against the fake upstream."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PySide6.QtCore import Qt, QUrl

from fakes.lmstudio_server import FakeLMStudio
from fakes.openai_upstream import FakeOpenAIUpstream
from gui.helpers import app_settings, close_app, eventually, make_app
from lmbridge import config
from lmbridge.gui.app import LMBridgeApp
from lmbridge.gui.conversations.view import ConversationsPanel
from lmbridge.gui.sessions.view import SessionsPanel
from lmbridge.store.conversations import Chat, StoredMessage
from lmbridge.store.db import Database
from lmbridge.store.usage import UsageStore
from records import finished

KEY = "c0ffee-session-1"


@pytest.fixture
async def chained_app(
    fake_lm: FakeLMStudio, fake_upstream: FakeOpenAIUpstream, tmp_path: Path
) -> AsyncIterator[LMBridgeApp]:
    """The cloud upstream speaks Responses, so keyed sessions chain."""
    app = await make_app(
        app_settings(fake_lm, fake_upstream, cloud_api="responses"), tmp_path
    )
    yield app
    await close_app(app)


async def chat_turn(
    app: LMBridgeApp, messages: list[dict[str, Any]], agent: str | None = None
) -> str:
    body = {"model": "gpt-5", "messages": messages}
    headers = {"X-Session-Id": KEY}
    if agent:
        headers["X-Claude-Code-Agent-Id"] = agent
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            app.controller.url + "/v1/chat/completions", json=body, headers=headers
        ) as resp,
    ):
        assert resp.status == 200, await resp.text()
        data = await resp.json()
    return str(data["choices"][0]["message"]["content"])


def cell(panel: SessionsPanel, row: int, column: int) -> str:
    return str(panel.model.index(row, column).data())


async def test_sessions_override_and_reset(
    chained_app: LMBridgeApp, qtmodeltester: Any
) -> None:
    app = chained_app
    panel = app.page("sessions")
    assert isinstance(panel, SessionsPanel)
    app.window.show_page("sessions")
    first = [{"role": "user", "content": "Remember the number 7. " * 50}]
    answer = await chat_turn(app, first)
    await chat_turn(
        app,
        [
            *first,
            {"role": "assistant", "content": answer},
            {"role": "user", "content": "Which number?"},
        ],
    )
    await eventually(lambda: panel.model.rowCount() == 1, what="the session row")
    await eventually(lambda: cell(panel, 0, 3) == "2", what="two chained turns")
    qtmodeltester.check(panel.model)
    assert cell(panel, 0, 1) == KEY
    assert cell(panel, 0, 2) == "cloud/fake-model"
    assert cell(panel, 0, 5) != "0 B"  # the second turn sent only what is new
    assert "not re-sent upstream" in panel.status.text()

    panel.select_key(KEY)
    panel.override.setText("gpt-5-mini")
    panel.tools.setText("Read, Bash")
    panel.save_button.click()
    state = app.controller.services
    assert state is not None
    await eventually(lambda: state.sessions.settings_for(KEY) is not None)
    settings = state.sessions.settings_for(KEY)
    assert settings is not None
    assert (settings.model_override, settings.allowed_tools) == (
        "gpt-5-mini",
        ["Read", "Bash"],
    )
    await eventually(lambda: "model gpt-5-mini" in cell(panel, 0, 6))

    panel.select_key(KEY)
    panel.reset_button.click()
    panel.confirm.confirm_button().click()
    await eventually(lambda: cell(panel, 0, 3) == "0", what="the reset")
    assert not await state.sessions.store.all()


async def test_subagents_are_listed_under_their_session(
    chained_app: LMBridgeApp, qtmodeltester: Any
) -> None:
    app = chained_app
    panel = app.page("sessions")
    assert isinstance(panel, SessionsPanel)
    await chat_turn(app, [{"role": "user", "content": "main agent"}])
    await chat_turn(app, [{"role": "user", "content": "sub agent"}], agent="a1")
    await chat_turn(app, [{"role": "user", "content": "main again"}])
    await eventually(lambda: panel.model.rowCount() == 2, what="two chains")
    qtmodeltester.check(panel.model)
    # The session first, its subagent's chain right under it.
    assert cell(panel, 0, 1) == KEY
    assert cell(panel, 1, 1) == "  └ subagent a1"


async def test_conversations_show_and_delete(
    gui_app: LMBridgeApp, qtmodeltester: Any
) -> None:
    state = gui_app.controller.services
    assert state is not None and state.db is not None
    store = state.conversations  # the proxy's: what the /store API writes with
    await store.import_chat(
        Chat(
            name="trip planning",
            model="qwen/qwen3-coder-30b",
            messages=[
                StoredMessage(role="user", content="Plan a day in Lisbon"),
                StoredMessage(role="assistant", content="Start at <Belém> early."),
            ],
        )
    )
    await store.create_chat("empty chat", "google/gemma-3-4b")
    panel = gui_app.page("conversations")
    assert isinstance(panel, ConversationsPanel)
    gui_app.window.show_page("conversations")
    await eventually(lambda: panel.model.rowCount() == 2, what="the chat list")
    qtmodeltester.check(panel.model)
    panel.select("trip planning")
    await eventually(lambda: panel.chat is not None, what="the chat")
    text = panel.viewer.toPlainText()
    assert "Plan a day in Lisbon" in text
    assert "Start at <Belém> early." in text  # escaped, shown as written
    panel.delete_button.click()
    panel.confirm.confirm_button().click()
    await eventually(lambda: panel.model.rowCount() == 1, what="the delete")
    assert [c.name for c in await store.list_chats()] == ["empty chat"]
    assert panel.chat is None


async def test_delete_one_message(gui_app: LMBridgeApp) -> None:
    store = gui_app.controller.conversations
    assert store is not None
    await store.import_chat(
        Chat(
            name="notes",
            model="qwen/qwen3-coder-30b",
            messages=[
                StoredMessage(role="user", content="first question"),
                StoredMessage(role="assistant", content="a wrong answer"),
                StoredMessage(role="user", content="second question"),
            ],
        )
    )
    panel = gui_app.page("conversations")
    assert isinstance(panel, ConversationsPanel)
    gui_app.window.show_page("conversations")
    await eventually(lambda: panel.model.rowCount() == 1, what="the chat list")
    panel.select("notes")
    await eventually(lambda: panel.chat is not None, what="the chat")
    assert "delete-message:1" in panel.viewer.toHtml()
    panel.viewer.anchorClicked.emit(QUrl("delete-message:1"))
    assert not panel.confirm.isHidden()
    assert "a wrong answer" in panel.confirm.label.text()
    panel.confirm.confirm_button().click()
    await eventually(
        lambda: panel.chat is not None and len(panel.chat.messages) == 2,
        what="the message to go",
    )
    chat = await store.get_chat("notes")
    assert [m.content for m in chat.messages] == ["first question", "second question"]
    assert "a wrong answer" not in panel.viewer.toPlainText()


async def test_conversations_with_the_proxy_stopped(gui_app: LMBridgeApp) -> None:
    """The stored chats are the app's: readable while the proxy is stopped."""
    await gui_app.controller.stop()
    store = gui_app.controller.conversations
    assert store is not None
    await store.create_chat("kept", "qwen/qwen3-coder-30b")
    panel = gui_app.page("conversations")
    assert isinstance(panel, ConversationsPanel)
    await eventually(lambda: panel.model.rowCount() == 1, what="the chat list")


async def test_a_chat_stored_through_the_store_api_appears(
    gui_app: LMBridgeApp,
) -> None:
    """Another client creates a chat, talks in it and deletes it through
    the /store API; the page follows each step with no Refresh."""
    panel = gui_app.page("conversations")
    assert isinstance(panel, ConversationsPanel)
    gui_app.window.show_page("conversations")
    url = f"{gui_app.controller.url}/store"
    await eventually(lambda: url in panel.status.text(), what="the empty state")
    empty = panel.status.text()
    assert empty.startswith("No stored chats yet.")
    assert "POST /store/chat" in empty and "/chats" not in empty
    store = gui_app.controller.url + "/store"
    async with aiohttp.ClientSession() as session:
        async with session.post(
            store + "/chat", json={"name": "from curl", "model": "gpt-5"}
        ) as resp:
            assert resp.status == 201, await resp.text()
        await eventually(lambda: panel.model.rowCount() == 1, what="the new chat")
        assert panel.status.text() == "1 stored chat(s)"
        panel.select("from curl")
        await eventually(lambda: panel.chat is not None, what="the chat opened")
        assert "No messages yet." in panel.viewer.toPlainText()
        async with session.put(
            store + "/chat",
            json={
                "name": "from curl",
                "message": {"role": "user", "content": "Hello there"},
            },
        ) as resp:
            assert resp.status == 200, await resp.text()
            await resp.read()
        await eventually(
            lambda: panel.chat is not None and len(panel.chat.messages) == 2,
            what="the open chat to show the new messages",
        )
        text = panel.viewer.toPlainText()
        assert "Hello there" in text and "Hello from the fake upstream." in text
        async with session.delete(store + "/chat", params={"name": "from curl"}) as r:
            assert r.status == 200
        await eventually(lambda: panel.model.rowCount() == 0, what="the delete")
        assert (
            panel.chat is None and panel.viewer.toPlainText() == ""
        )  # no chats: no hint


async def test_a_chain_shows_its_turns(
    chained_app: LMBridgeApp, fake_upstream: FakeOpenAIUpstream, qtmodeltester: Any
) -> None:
    """A session with a subagent interleaved: the main chain's turns are
    its own, each with its prompt, cache figures, kept share and change."""
    app = chained_app
    panel = app.page("sessions")
    assert isinstance(panel, SessionsPanel)
    app.window.show_page("sessions")
    script = fake_upstream.script
    history: list[dict[str, Any]] = []

    async def main_turn(text: str, prompt: int, cached: int) -> None:
        script.prompt_tokens, script.cached_tokens = prompt, cached
        history.append({"role": "user", "content": text})
        answer = await chat_turn(app, history)
        history.append({"role": "assistant", "content": answer})

    await main_turn("Plan the change. " * 20, 300, 0)
    script.prompt_tokens, script.cached_tokens = 50, 0
    await chat_turn(app, [{"role": "user", "content": "look around"}], agent="a1")
    await main_turn("Go on.", 340, 300)
    history[0] = {"role": "user", "content": "Plan the change, differently."}
    await main_turn("And now?", 360, 10)
    await main_turn("Once more.", 380, 5)  # only appended, the cache lost

    await eventually(lambda: panel.model.rowCount() == 2, what="two chains")
    panel.select_key(KEY)
    turns = panel.turns_model
    await eventually(lambda: turns.rowCount() == 4, what="the main chain's turns")
    qtmodeltester.check(turns)

    def column(key: str) -> list[str]:
        position = turns.column_position(key)
        return [str(turns.index(row, position).data()) for row in range(3)]

    assert column("turn") == ["1", "2", "3"]
    assert column("prompt") == ["300", "340", "360"]
    last = turns.index(3, turns.column_position("changed"))
    assert last.data() == "appended — but the server's cache was lost"
    assert "prompt cache lost" in str(last.data(Qt.ItemDataRole.ToolTipRole))
    # This upstream (Responses) says 0 cached where it reused nothing.
    assert column("cached") == ["0 (0%)", "300 (88%)", "10 (3%)"]
    assert column("new") == ["300", "40", "350"]
    assert column("changed")[:2] == ["first", "appended"]
    assert column("changed")[2] == "edited: message 1 (user) rewritten"
    kept = column("kept")
    assert kept[0] == "—" and kept[1] == "88%"
    assert int(kept[2].rstrip("%")) < 5  # only the start before message 1
    assert "4 turn(s) in the request log" in panel.turns_hint.text()

    panel.select_key(f"{KEY}/agent/a1")
    await eventually(lambda: turns.rowCount() == 1, what="the subagent's turn")
    assert column("changed")[:1] == ["first"]


async def test_sessions_known_only_from_the_request_log_count_their_requests(
    fake_lm: FakeLMStudio, fake_upstream: FakeOpenAIUpstream, tmp_path: Path
) -> None:
    """Keyed sessions to a Chat upstream have no chain: their turns are
    their requests in the request log, the history stored before this start
    (read back at start) and a live three-turn session alike, the count
    the same as the turn list of the session."""
    settings = app_settings(fake_lm, fake_upstream)
    db = Database.in_dir(config.data_dir())  # the app's, before it starts
    await db.open()
    try:
        earlier = time.time() - 3600
        stored = [
            finished(earlier + n, session_key="stored-session", client="curl/8")
            for n in range(2)
        ]
        await UsageStore(db).add([*stored, finished(earlier + 5, session_key=None)])
    finally:
        await db.close()
    app = await make_app(settings, tmp_path)
    try:
        panel = app.page("sessions")
        assert isinstance(panel, SessionsPanel)
        app.window.show_page("sessions")
        history: list[dict[str, Any]] = []
        for turn in range(3):
            history.append({"role": "user", "content": f"question {turn}"})
            answer = await chat_turn(app, history)
            history.append({"role": "assistant", "content": answer})
        assert app.controller.services is not None
        assert not await app.controller.services.sessions.sessions()  # no chain

        def turns_by_key() -> dict[str, str]:
            key = panel.model.column_position("key")
            turns = panel.model.column_position("turns")
            return {
                str(panel.model.index(row, key).data()): str(
                    panel.model.index(row, turns).data()
                )
                for row in range(panel.model.rowCount())
            }

        await eventually(
            lambda: turns_by_key() == {KEY: "3", "stored-session": "2"},
            what="both sessions with their request counts",
        )
        panel.select_key(KEY)
        await eventually(lambda: panel.turns_model.rowCount() == 3, what="its turns")
        panel.select_key("stored-session")
        await eventually(lambda: panel.turns_model.rowCount() == 2, what="its turns")
    finally:
        await close_app(app)
