"""Web search through the real CLIs, to a model that cannot search.

Claude Code's WebSearch tool asks LM Bridge with the `web_search_20250305`
server tool; Codex offers the model its `web_search` tool. LM Bridge,
with `[web_search]` pointed at a fake SearXNG, offers the (fake, Chat)
model a `web_search` function, runs the search when the model calls it,
and continues the answer; each CLI runs to completion and the search's
result reaches the model.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from clients import harness
from clients.fake_model import (
    Call,
    Reply,
    ScriptedModel,
    chat_text,
    chat_tool_results,
    chat_tools,
)
from fakes.search_services import FakeSearch, Hit

CHAT = "/v1/chat/completions"
WORD = "SEARCH-WORD-7731"


@pytest.fixture
async def fake_search() -> AsyncIterator[FakeSearch]:
    search = FakeSearch(hits=[Hit("https://docs.example/lmb", "LM Bridge news", WORD)])
    await search.start()
    yield search
    await search.stop()


@pytest.fixture
async def bridge(
    tmp_path: Path, fake: ScriptedModel, fake_search: FakeSearch
) -> AsyncIterator[harness.Bridge]:
    table = f'[web_search]\nprovider = "searxng"\nurl = "{fake_search.url}"\n'
    async with harness.lmbridge_serve(tmp_path, fake.url, table) as running:
        yield running


def _texts(body: dict[str, Any]) -> str:
    return "\n".join(chat_text(m) for m in body.get("messages", []))


def _search_results(body: dict[str, Any]) -> list[str]:
    return [
        str(m.get("content"))
        for m in chat_tool_results(body)
        if "Results for" in str(m.get("content"))
    ]


async def test_claude_code_web_search(
    tmp_path: Path,
    work: Path,
    fake: ScriptedModel,
    bridge: harness.Bridge,
    trap: harness.ProxyTrap,
    fake_search: FakeSearch,
) -> None:
    prompt = "Search the web: what is the LM Bridge code word?"
    final = f"The code word is {WORD}."

    def responder(api: str, body: dict[str, Any]) -> Reply:
        tools = chat_tools(body)
        if "web_search" in tools and "WebSearch" not in tools:
            # Claude Code's WebSearch tool asking with the server tool.
            if _search_results(body):
                return Reply(text=f"Found: {WORD}")
            return Reply(calls=[Call("web_search", '{"query": "lm bridge code word"}')])
        if prompt not in _texts(body):
            return Reply(text="(side request)")
        answered = {m.get("tool_call_id") for m in chat_tool_results(body)}
        if "call_ws_1" in answered:
            return Reply(text=final)
        if "WebSearch" in tools:
            args = json.dumps({"query": "lm bridge code word"})
            return Reply(calls=[Call("WebSearch", args, call_id="call_ws_1")])
        if "call_ts_1" in answered or "ToolSearch" not in tools:
            return Reply(text="I have no WebSearch tool.")
        # Claude Code defers WebSearch: the model loads it first.
        args = json.dumps({"query": "select:WebSearch"})
        return Reply(calls=[Call("ToolSearch", args, call_id="call_ts_1")])

    fake.responder = responder
    env = harness.claude_env(tmp_path, bridge.url, trap.url)
    argv = [str(harness.CLAUDE), "-p", prompt, "--dangerously-skip-permissions"]
    result = await harness.run(argv, env, work, timeout=60)
    assert result.returncode == 0, result.explain() + "\n" + "".join(bridge.output)
    assert trap.lines == [], trap.lines
    assert fake_search.queries() == ["lm bridge code word"]
    searched = [b for b in fake.bodies(CHAT) if _search_results(b)]
    assert searched and WORD in _search_results(searched[0])[0]
    main = [
        b for b in fake.bodies(CHAT) if prompt in _texts(b) and chat_tool_results(b)
    ]
    assert main, "the WebSearch tool's result never reached the main model"
    assert WORD in json.dumps(chat_tool_results(main[-1]))
    assert final in result.stdout


async def codex(
    tmp_path: Path,
    work: Path,
    bridge: harness.Bridge,
    trap: harness.ProxyTrap,
    prompt: str,
    *,
    resume: bool = False,
) -> harness.Result:
    env = harness.codex_env(tmp_path, trap.url)
    config = harness.codex_config(
        bridge.url + "/v1", "qwen/qwen3-coder-30b", extra='web_search = "live"'
    )
    harness.write_codex_config(env, config)
    head = ["exec", "resume", "--last"] if resume else ["exec"]
    argv = [str(harness.CODEX), *head, "--skip-git-repo-check", prompt]
    result = await harness.run(argv, env, work, timeout=60)
    assert result.returncode == 0, result.explain() + "\n" + "".join(bridge.output)
    assert trap.lines == [], trap.lines
    return result


async def test_codex_web_search_then_a_second_turn(
    tmp_path: Path,
    work: Path,
    fake: ScriptedModel,
    bridge: harness.Bridge,
    trap: harness.ProxyTrap,
    fake_search: FakeSearch,
) -> None:
    """Codex offers `web_search`; the model searches, reads the result and
    answers; the next turn (`codex exec resume`) sends the search back and
    the model reads the same result again."""
    prompt = "Search the web: what is the LM Bridge code word?"
    final = f"The code word is {WORD}."

    def responder(api: str, body: dict[str, Any]) -> Reply:
        if prompt not in _texts(body):
            return Reply(text="(side request)")
        if "follow-up" in _texts(body):
            return Reply(text="Second turn done.")
        if _search_results(body):
            return Reply(text=final)
        if "web_search" not in chat_tools(body):
            return Reply(text="I have no web_search tool.")
        return Reply(calls=[Call("web_search", '{"query": "lm bridge code word"}')])

    fake.responder = responder
    result = await codex(tmp_path, work, bridge, trap, prompt)
    assert final in result.stdout
    assert fake_search.queries() == ["lm bridge code word"]
    searched = [b for b in fake.bodies(CHAT) if _search_results(b)]
    assert WORD in _search_results(searched[0])[0]

    result = await codex(tmp_path, work, bridge, trap, "A follow-up.", resume=True)
    assert "Second turn done." in result.stdout
    second = [b for b in fake.bodies(CHAT) if "follow-up" in _texts(b)]
    assert second, "the second turn never reached the model"
    # The earlier search, call and result, as the model read it then.
    assert _search_results(second[-1]) == _search_results(searched[0])
    assert fake_search.queries() == ["lm bridge code word"]
