"""Why a prefix broke: each request of a chain against the chain's previous
one, recorded on the request's record (server/prefix.py, issue 23 item 4).

Whole sessions through the proxy with a real client shape (raw Anthropic
Messages with Claude Code's session and agent headers, and the Chat door's
pass-through), against the fake OpenAI-compatible upstream, whose prompt
token and cached token figures the tests set per turn."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from fakes.openai_upstream import FakeOpenAIUpstream
from lmbridge.core.events import RequestRecord
from lmbridge.core.record import NoteKind, PrefixChange
from lmbridge.server.requestlog import format_record
from support import RunningProxy, oai, settings_for, start_proxy

SYSTEM = "You are a careful coding agent. Work in small steps."
READ = {
    "name": "read",
    "description": "Read a file",
    "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}},
}
GREP = {
    "name": "grep",
    "description": "Search files",
    "input_schema": {"type": "object", "properties": {"re": {"type": "string"}}},
}


@pytest.fixture
async def bridge(fake_upstream: FakeOpenAIUpstream) -> AsyncIterator[RunningProxy]:
    proxy = await start_proxy(settings_for(fake_upstream.url))
    yield proxy
    await proxy.server.stop()


class Session:
    """One Claude Code-shaped conversation: its history grows turn by turn."""

    def __init__(
        self,
        bridge: RunningProxy,
        fake: FakeOpenAIUpstream,
        session: str = "sess-1",
        agent: str | None = None,
    ) -> None:
        self.bridge, self.fake = bridge, fake
        self.session, self.agent = session, agent
        self.system = SYSTEM
        self.tools: list[dict[str, Any]] = [READ]
        self.messages: list[dict[str, Any]] = []
        self.thinking: dict[str, Any] | None = None

    async def turn(
        self, text: str, *, prompt: int = 100, cached: int = 0
    ) -> RequestRecord:
        """Send the history plus `text`; the upstream counts `prompt`
        tokens, `cached` of them from its cache. Returns the record."""
        self.messages.append({"role": "user", "content": text})
        script = self.fake.script
        script.prompt_tokens, script.cached_tokens = prompt, cached
        script.text = f"answer to {text}"
        body: dict[str, Any] = {
            "model": "claude-sonnet",
            "max_tokens": 100,
            "system": self.system,
            "tools": self.tools,
            "messages": self.messages,
        }
        if self.thinking is not None:
            body["thinking"] = self.thinking
        headers = {"X-Claude-Code-Session-Id": self.session}
        if self.agent:
            headers["X-Claude-Code-Agent-Id"] = self.agent
        count = len(self.bridge.records) + 1
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                self.bridge.url + "/v1/messages", json=body, headers=headers
            ) as resp,
        ):
            assert resp.status == 200, await resp.text()
            answer = await resp.json()
        self.messages.append({"role": "assistant", "content": answer["content"]})
        return await self.bridge.record(count)


async def test_appended_turns_keep_the_previous_prompt(
    bridge: RunningProxy, fake_upstream: FakeOpenAIUpstream
) -> None:
    chat = Session(bridge, fake_upstream)
    first = await chat.turn("list the files", prompt=100)
    second = await chat.turn("read main.py", prompt=150, cached=100)
    third = await chat.turn("and setup.py", prompt=210, cached=150)
    assert [r.chain_turn for r in (first, second, third)] == [1, 2, 3]
    assert first.prefix_change is PrefixChange.FIRST and first.kept_tokens is None
    assert second.prefix_change is PrefixChange.APPENDED
    assert third.prefix_change is PrefixChange.APPENDED
    # All of the previous prompt, as the upstream counted it, is kept.
    assert (second.kept_tokens, third.kept_tokens) == (100, 150)
    assert second.prefix_at is None and not second.note_texts
    assert "turn=3 kept=71%" in format_record(third)


async def test_a_compacted_history_is_named(
    bridge: RunningProxy, fake_upstream: FakeOpenAIUpstream
) -> None:
    chat = Session(bridge, fake_upstream)
    for i in range(4):
        await chat.turn(f"step {i}", prompt=100 + 50 * i)
    chat.messages = [{"role": "user", "content": "Summary of the work so far: …"}]
    record = await chat.turn("go on", prompt=60)
    assert record.prefix_change is PrefixChange.COMPACTED
    assert record.prefix_at == 0
    assert "7 messages from message 1 (user) on replaced by 2" in record.prefix_detail
    assert record.kept_tokens is not None and 0 < record.kept_tokens <= 60


async def test_a_changed_tool_list_is_the_break_and_gets_a_note(
    bridge: RunningProxy, fake_upstream: FakeOpenAIUpstream
) -> None:
    chat = Session(bridge, fake_upstream)
    await chat.turn("one", prompt=400)
    chat.tools = [READ, GREP]
    record = await chat.turn("two", prompt=480)
    assert record.prefix_change is PrefixChange.TOOLS
    assert record.prefix_detail == "added grep" and record.prefix_at is None
    assert record.kept_tokens == 0
    [note] = [n for n in record.notes if n.kind is NoteKind.CACHE]
    assert note.text.startswith("prompt cache: the tools changed (added grep)")


async def test_a_changed_system_prompt_is_the_break(
    bridge: RunningProxy, fake_upstream: FakeOpenAIUpstream
) -> None:
    chat = Session(bridge, fake_upstream)
    await chat.turn("one", prompt=300)
    chat.system = SYSTEM + " Today is Tuesday."
    record = await chat.turn("two", prompt=350)
    assert record.prefix_change is PrefixChange.SYSTEM
    assert any("system prompt changed" in n for n in record.note_texts)
    # The next turn, with the new system prompt kept, only appends again.
    assert (await chat.turn("three", prompt=400)).prefix_change is (
        PrefixChange.APPENDED
    )


async def test_an_edited_and_a_reordered_history(
    bridge: RunningProxy, fake_upstream: FakeOpenAIUpstream
) -> None:
    chat = Session(bridge, fake_upstream)
    for i in range(3):
        await chat.turn(f"step {i}", prompt=100 + 50 * i)
    chat.messages[2] = {"role": "user", "content": "step 1, said otherwise"}
    edited = await chat.turn("step 3", prompt=300)
    assert edited.prefix_change is PrefixChange.EDITED
    assert (edited.prefix_at, edited.prefix_detail) == (2, "message 3 (user) rewritten")
    assert edited.kept_tokens is not None and 0 < edited.kept_tokens < 250

    chat.messages[0], chat.messages[2] = chat.messages[2], chat.messages[0]
    moved = await chat.turn("step 4", prompt=350)
    assert moved.prefix_change is PrefixChange.REORDERED
    assert moved.prefix_at == 0


async def test_a_reasoning_setting_is_a_change_of_template(
    bridge: RunningProxy, fake_upstream: FakeOpenAIUpstream
) -> None:
    chat = Session(bridge, fake_upstream)
    await chat.turn("one")
    chat.thinking = {"type": "enabled", "budget_tokens": 2048}
    record = await chat.turn("two")
    assert record.prefix_change is PrefixChange.SETTING
    assert "reasoning budget — → 2048" in record.prefix_detail


async def test_interleaved_subagents_each_keep_their_own_chain(
    bridge: RunningProxy, fake_upstream: FakeOpenAIUpstream
) -> None:
    main = Session(bridge, fake_upstream)
    explore = Session(bridge, fake_upstream, agent="agent-explore")
    review = Session(bridge, fake_upstream, agent="agent-review")
    explore.system = review.system = "You are a subagent. Report briefly."
    records = [
        await main.turn("plan the change", prompt=200),
        await explore.turn("find the callers", prompt=80),
        await main.turn("ok, continue", prompt=260, cached=200),
        await review.turn("review the diff", prompt=90),
        await explore.turn("and their tests", prompt=120, cached=80),
        await main.turn("apply it", prompt=320, cached=260),
    ]
    changes = [(r.session_key, r.chain_turn, r.prefix_change) for r in records]
    assert changes == [
        ("sess-1", 1, PrefixChange.FIRST),
        ("sess-1/agent/agent-explore", 1, PrefixChange.FIRST),
        ("sess-1", 2, PrefixChange.APPENDED),
        ("sess-1/agent/agent-review", 1, PrefixChange.FIRST),
        ("sess-1/agent/agent-explore", 2, PrefixChange.APPENDED),
        ("sess-1", 3, PrefixChange.APPENDED),
    ]
    assert records[5].kept_tokens == 260
    assert not [n for r in records for n in r.notes if n.kind is NoteKind.CACHE]


async def test_a_collapsed_reuse_says_why_in_words_a_user_can_act_on(
    bridge: RunningProxy, fake_upstream: FakeOpenAIUpstream
) -> None:
    chat = Session(bridge, fake_upstream)
    await chat.turn("one", prompt=1000)
    # Only appended, yet the server re-read almost all of it.
    record = await chat.turn("two", prompt=1100, cached=64)
    assert record.prefix_change is PrefixChange.APPENDED
    assert record.kept_tokens == 1000 and record.cached_tokens == 64
    [note] = [n.text for n in record.notes if n.kind is NoteKind.CACHE]
    assert "only added to the conversation" in note
    assert "reused 64 of the 1,000 prompt tokens" in note
    assert "evaluated 1,036 again" in note and "--parallel" in note
    # Reuse that held gets no note.
    held = await chat.turn("three", prompt=1200, cached=1100)
    assert not [n for n in held.notes if n.kind is NoteKind.CACHE]


async def test_the_chat_door_relayed_is_compared_too(
    bridge: RunningProxy, fake_upstream: FakeOpenAIUpstream
) -> None:
    messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM}]
    records = []
    async with aiohttp.ClientSession() as http:
        for i, edit in enumerate((False, False, True)):
            if edit:
                messages[1] = {"role": "user", "content": "hi, edited"}
            messages.append({"role": "user", "content": f"question {i}"})
            body = {"model": "claude-x", "messages": messages, "user": "chat-1"}
            async with http.post(
                bridge.url + "/v1/chat/completions", json=body
            ) as resp:
                assert resp.status == 200
                answer = await resp.json()
            messages.append(answer["choices"][0]["message"])
            records.append(await bridge.record(i + 1))
    assert [r.prefix_change for r in records] == [
        PrefixChange.FIRST,
        PrefixChange.APPENDED,
        PrefixChange.EDITED,
    ]
    assert records[2].prefix_at == 0


async def test_requests_outside_a_chain_and_failures_leave_no_state(
    bridge: RunningProxy, fake_upstream: FakeOpenAIUpstream
) -> None:
    services = bridge.server.services
    assert services is not None
    tracker = services.prefixes
    async with aiohttp.ClientSession() as http:
        body = {"model": "claude-x", "messages": [{"role": "user", "content": "x"}]}
        async with http.post(bridge.url + "/v1/chat/completions", json=body) as resp:
            assert resp.status == 200
    record = await bridge.record()
    assert record.chain_turn is None and record.prefix_change is None
    assert len(tracker) == 0

    chat = Session(bridge, fake_upstream)
    await chat.turn("one")
    fake_upstream.script.status = 500
    with pytest.raises(AssertionError):
        await chat.turn("two")
    fake_upstream.script.status = 0
    chat.messages = chat.messages[:2]
    # The failed turn is not the chain's last prompt: this one only appends.
    again = await chat.turn("two, again")
    assert again.prefix_change is PrefixChange.APPENDED and again.chain_turn == 3


async def test_the_chains_kept_are_bounded(
    bridge: RunningProxy, fake_upstream: FakeOpenAIUpstream
) -> None:
    services = bridge.server.services
    assert services is not None
    services.prefixes.max_chains = 2
    chats = [Session(bridge, fake_upstream, session=f"s{i}") for i in range(4)]
    for chat in chats:
        await chat.turn("hello")
    assert len(services.prefixes) == 2
    # The oldest chain was forgotten: its next turn starts afresh.
    assert (await chats[0].turn("again")).chain_turn == 1
    assert (await chats[3].turn("again")).prefix_change is PrefixChange.APPENDED


async def test_a_responses_chain_by_previous_response_id(
    bridge: RunningProxy, fake_upstream: FakeOpenAIUpstream
) -> None:
    """Codex-shaped with stored responses: the second request carries only
    its new input and names the first answer; it continues the chain."""
    async with oai(bridge) as client:
        first = await client.responses.create(
            model="claude-x", input="Plan it.", prompt_cache_key="codex-7"
        )
        await client.responses.create(
            model="claude-x",
            input="Go on.",
            previous_response_id=first.id,
            prompt_cache_key="codex-7",
        )
    one, two = bridge.records[-2:]
    assert (one.chain_turn, one.prefix_change) == (1, PrefixChange.FIRST)
    assert (two.chain_turn, two.prefix_change) == (2, PrefixChange.APPENDED)
    assert two.prefix_detail == "continues a stored response"
