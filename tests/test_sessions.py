"""Sessions: keyed conversations to a Responses upstream send only what is new."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from fakes.openai_upstream import FakeOpenAIUpstream, Script, ToolCallScript
from lmbridge.core.ir import AGENT_SEPARATOR
from lmbridge.core.sessions import MemorySessionStore, SessionSettings, SessionState
from support import RunningProxy, settings_for, start_proxy

TOOLS: list[dict[str, Any]] = [
    {"name": "bash", "description": "run", "input_schema": {"type": "object"}},
    {"name": "web", "description": "fetch", "input_schema": {"type": "object"}},
]
HEADERS = {"X-Claude-Code-Session-Id": "sess-1"}


async def responses_proxy(fake: FakeOpenAIUpstream) -> RunningProxy:
    return await start_proxy(settings_for(fake.url, upstream_extra='api = "responses"'))


def client(proxy: RunningProxy) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        base_url=proxy.url, api_key="k", max_retries=0, default_headers=HEADERS
    )


async def turn(
    c: anthropic.AsyncAnthropic, messages: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Send `messages`; return them extended by the assistant's reply."""
    reply = await c.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=100,
        system="You are an agent.",
        tools=TOOLS,  # type: ignore[arg-type]
        messages=messages,  # type: ignore[arg-type]
    )
    content = [b.model_dump(exclude_none=True) for b in reply.content]
    return [*messages, {"role": "assistant", "content": content}]


def tool_result(history: list[dict[str, Any]], text: str) -> dict[str, Any]:
    call = next(b for b in history[-1]["content"] if b["type"] == "tool_use")
    return {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": call["id"], "content": text}
        ],
    }


def agent_script(n: int) -> Script:
    return Script(
        text="", tool_calls=[ToolCallScript("bash", '{"cmd": "ls"}', id=f"call_{n}")]
    )


async def test_second_turn_sends_only_the_delta(
    fake_upstream: FakeOpenAIUpstream,
) -> None:
    proxy = await responses_proxy(fake_upstream)
    try:
        async with client(proxy) as c:
            fake_upstream.script = agent_script(1)
            history = await turn(c, [{"role": "user", "content": "list files"}])
            first = fake_upstream.requests[-1].body
            assert "previous_response_id" not in first
            fake_upstream.script = agent_script(2)
            history = await turn(c, [*history, tool_result(history, "a.py b.py")])
            second = fake_upstream.requests[-1].body
            fake_upstream.script = Script(text="done")
            await turn(c, [*history, tool_result(history, "ok")])
            third = fake_upstream.requests[-1].body
        record = await proxy.record(3)
        state = proxy.server.services
        assert state is not None
        [session] = await state.sessions.sessions()
    finally:
        await proxy.server.stop()
    assert second["previous_response_id"] == "resp_1"
    assert [i["type"] for i in second["input"]] == ["function_call_output"]
    assert second["input"][0]["call_id"] == "call_1"
    assert third["previous_response_id"] == "resp_2"
    assert len(third["input"]) == 1
    # instructions and tools still go with every turn
    assert third["instructions"] == "You are an agent."
    assert [t["name"] for t in third["tools"]] == ["bash", "web"]
    assert any("session: chained" in n for n in record.note_texts)
    assert (session.key, session.turns) == ("sess-1", 3)
    assert session.bytes_saved > 0


async def test_rewritten_history_starts_a_fresh_chain(
    fake_upstream: FakeOpenAIUpstream,
) -> None:
    proxy = await responses_proxy(fake_upstream)
    try:
        async with client(proxy) as c:
            fake_upstream.script = agent_script(1)
            history = await turn(c, [{"role": "user", "content": "list files"}])
            fake_upstream.script = Script(text="ok")
            # Compacted: the earlier turns are replaced by a summary.
            await turn(c, [{"role": "user", "content": "summary of before; continue"}])
            rewritten = fake_upstream.requests[-1].body
            # Rewound: the same first message, but a different tool call id.
            fake_upstream.script = agent_script(9)
            history = await turn(c, [{"role": "user", "content": "list files"}])
            fake_upstream.script = Script(text="ok")
            other = [
                *history[:1],
                {
                    "role": "assistant",
                    "content": [
                        {
                            "type": "tool_use",
                            "id": "call_other",
                            "name": "bash",
                            "input": {},
                        }
                    ],
                },
            ]
            await turn(c, [*other, tool_result(other, "x")])
            rewound = fake_upstream.requests[-1].body
        record = await proxy.record(4)
    finally:
        await proxy.server.stop()
    assert "previous_response_id" not in rewritten
    assert "previous_response_id" not in rewound
    assert len(rewound["input"]) == 3
    assert any("diverged" in n for n in record.note_texts)


async def test_lost_chain_is_retried_with_full_history(
    fake_upstream: FakeOpenAIUpstream,
) -> None:
    proxy = await responses_proxy(fake_upstream)
    try:
        async with client(proxy) as c:
            fake_upstream.script = agent_script(1)
            history = await turn(c, [{"role": "user", "content": "list files"}])
            fake_upstream.forget_responses()  # LM Studio restarted
            fake_upstream.script = Script(text="recovered")
            history = await turn(c, [*history, tool_result(history, "a.py")])
        record = await proxy.record(2)
    finally:
        await proxy.server.stop()
    assert history[-1]["content"][0]["text"] == "recovered"
    failed, retried = (r.body for r in fake_upstream.requests[-2:])
    assert failed["previous_response_id"] == "resp_1"
    assert "previous_response_id" not in retried
    assert len(retried["input"]) == 3
    assert any("lost the chain" in n for n in record.note_texts)


async def test_sessions_persist_across_restart(
    fake_upstream: FakeOpenAIUpstream,
) -> None:
    proxy = await responses_proxy(fake_upstream)
    try:
        async with client(proxy) as c:
            fake_upstream.script = agent_script(1)
            history = await turn(c, [{"role": "user", "content": "list files"}])
    finally:
        await proxy.server.stop()
    proxy = await responses_proxy(fake_upstream)
    try:
        async with client(proxy) as c:
            fake_upstream.script = Script(text="ok")
            await turn(c, [*history, tool_result(history, "a.py")])
    finally:
        await proxy.server.stop()
    assert fake_upstream.requests[-1].body["previous_response_id"] == "resp_1"


async def test_no_key_no_chaining(fake_upstream: FakeOpenAIUpstream) -> None:
    proxy = await responses_proxy(fake_upstream)
    try:
        async with anthropic.AsyncAnthropic(
            base_url=proxy.url, api_key="k", max_retries=0
        ) as c:
            fake_upstream.script = agent_script(1)
            history = await turn(c, [{"role": "user", "content": "hi"}])
            fake_upstream.script = Script(text="ok")
            await turn(c, [*history, tool_result(history, "x")])
    finally:
        await proxy.server.stop()
    assert "previous_response_id" not in fake_upstream.requests[-1].body


@pytest.mark.parametrize("source", ["metadata", "x-session-id"])
async def test_other_session_key_sources(
    fake_upstream: FakeOpenAIUpstream, source: str
) -> None:
    proxy = await responses_proxy(fake_upstream)
    headers = {"X-Session-Id": "s2"} if source == "x-session-id" else {}
    metadata: anthropic.types.MetadataParam | anthropic.Omit = (
        {"user_id": '{"session_id": "s2"}'} if source == "metadata" else anthropic.omit
    )
    try:
        async with anthropic.AsyncAnthropic(
            base_url=proxy.url, api_key="k", max_retries=0, default_headers=headers
        ) as c:
            await c.messages.create(
                model="claude-sonnet-4-6",
                max_tokens=10,
                messages=[{"role": "user", "content": "hi"}],
                metadata=metadata,
            )
        record = await proxy.record()
    finally:
        await proxy.server.stop()
    assert record.session_key == "s2"


async def test_session_settings_override_model_and_filter_tools(
    fake_upstream: FakeOpenAIUpstream,
) -> None:
    proxy = await responses_proxy(fake_upstream)
    try:
        state = proxy.server.services
        assert state is not None
        await state.sessions.configure(
            SessionSettings(
                key="sess-1", model_override="other-model", allowed_tools=["bash"]
            )
        )
        async with client(proxy) as c:
            fake_upstream.script = Script(text="ok")
            await turn(c, [{"role": "user", "content": "hi"}])
    finally:
        await proxy.server.stop()
    body = fake_upstream.requests[-1].body
    assert body["model"] == "other-model"
    assert [t["name"] for t in body["tools"]] == ["bash"]


async def test_subagents_keep_their_own_chains(
    fake_upstream: FakeOpenAIUpstream,
) -> None:
    """Claude Code's subagents send the main agent's session id; turns of
    the main agent and of a subagent, alternating, each extend their own
    chain instead of breaking each other's."""
    proxy = await responses_proxy(fake_upstream)
    sub_headers = {**HEADERS, "X-Claude-Code-Agent-Id": "agent-7"}
    try:
        async with (
            client(proxy) as main,
            anthropic.AsyncAnthropic(
                base_url=proxy.url,
                api_key="k",
                max_retries=0,
                default_headers=sub_headers,
            ) as sub,
        ):
            fake_upstream.script = agent_script(1)
            main_history = await turn(main, [{"role": "user", "content": "plan"}])
            fake_upstream.script = agent_script(2)
            sub_history = await turn(sub, [{"role": "user", "content": "explore"}])
            fake_upstream.script = agent_script(3)
            await turn(main, [*main_history, tool_result(main_history, "m")])
            main_second = fake_upstream.requests[-1].body
            fake_upstream.script = agent_script(4)
            await turn(sub, [*sub_history, tool_result(sub_history, "s")])
            sub_second = fake_upstream.requests[-1].body
        first_ids = [r.body.get("previous_response_id") for r in fake_upstream.requests]
        assert first_ids[:2] == [None, None]
        # Each second turn continues its own agent's first answer.
        assert main_second["previous_response_id"] != sub_second["previous_response_id"]
        assert main_second["previous_response_id"] is not None
        assert sub_second["previous_response_id"] is not None
        assert len(main_second["input"]) == 1
        assert len(sub_second["input"]) == 1
        services = proxy.server.services
        assert services is not None
        chains = await services.sessions.sessions()
        assert {(c.session, c.agent) for c in chains} == {
            ("sess-1", None),
            ("sess-1", "agent-7"),
        }
        record = await proxy.record(4)
        assert record.session_key == "sess-1/agent/agent-7"
        # Resetting the session forgets its subagents' chains too.
        await services.sessions.reset("sess-1")
        assert await services.sessions.sessions() == []
    finally:
        await proxy.server.stop()


async def test_the_memory_store_keeps_chains_and_settings_for_one_run() -> None:
    """The store a proxy without a database uses: a session's chains, its
    subagents' included, go together; settings are kept per key."""
    store = MemorySessionStore()
    main = SessionState(key="s1", upstream="up", model="m", turns=2)
    agent = SessionState(key=f"s1{AGENT_SEPARATOR}explore", upstream="up", model="m")
    other = SessionState(key="s2", upstream="up", model="m")
    for state in (main, agent, other):
        await store.save(state)
    assert await store.load("s1", "up", "m") is main
    assert await store.load("s1", "up", "other-model") is None
    assert (agent.session, agent.agent, main.agent) == ("s1", "explore", None)
    await store.delete("s1")
    assert await store.all() == [other]
    await store.save_settings(SessionSettings(key="s2", allowed_tools=["Read"]))
    assert [s.allowed_tools for s in await store.settings()] == [["Read"]]
