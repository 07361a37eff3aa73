"""Web search for models that cannot search (server/websearch.py): the
client's server tool offered as a function, the search run with a fake
SearXNG / Brave / Tavily on loopback, the same answer continued and shown
as the client's protocol shows a search; whole and streamed, both doors,
every upstream API; sessions whose history carries the searches back."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import anthropic
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fakes.openai_upstream import FakeOpenAIUpstream, Script, ToolCallScript
from fakes.search_services import FakeSearch
from lmbridge import cli, config
from lmbridge.core import ir
from lmbridge.core.events import RequestRecord
from lmbridge.protocols import websearch
from lmbridge.protocols.anthropic import parse_request
from lmbridge.protocols.anthropic.response import search_call, search_result
from support import RunningProxy, oai, running, settings_for

SEARCH = ToolCallScript("web_search", '{"query": "lm bridge release"}', "call_s1")


@pytest.fixture
async def fake_search() -> AsyncIterator[FakeSearch]:
    fake = FakeSearch()
    await fake.start()
    yield fake
    await fake.stop()


def searching(
    upstream: FakeOpenAIUpstream,
    search: FakeSearch | None,
    api: str = "chat",
    extra: str = "",
    provider: str = "searxng",
) -> config.Settings:
    table = ""
    if search is not None:
        table = (
            f'\n[web_search]\nprovider = "{provider}"\nurl = "{search.url}"\n{extra}'
        )
    return settings_for(
        upstream.url, upstream_extra=f'api = "{api}"', routes=f"{table}\n"
    )


def claude(proxy: RunningProxy) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=proxy.url, api_key="x", max_retries=0)


WEB_SEARCH_TOOL: Any = {"type": "web_search_20250305", "name": "web_search"}


async def ask_claude(
    settings: config.Settings,
    tools: Sequence[Any] = (WEB_SEARCH_TOOL,),
    messages: list[Any] | None = None,
    stream: bool = False,
) -> tuple[anthropic.types.Message, RequestRecord]:
    """One request as Claude Code sends it (its web search tool, a question)
    through a proxy on `settings`: the answer and the request's record."""
    create: Any = {
        "model": "claude-x",
        "max_tokens": 100,
        "messages": messages or [{"role": "user", "content": "q"}],
    }
    if tools:
        create["tools"] = list(tools)
    async with running(settings) as proxy, claude(proxy) as client:
        if stream:
            async with client.messages.stream(**create) as events:
                answer = await events.get_final_message()
        else:
            answer = await client.messages.create(**create)
        record = await proxy.record()
    return answer, record


def model_searches_then_answers(
    upstream: FakeOpenAIUpstream, text: str = "LM Bridge 2 is out."
) -> None:
    upstream.scripts = [Script(text="", tool_calls=[SEARCH]), Script(text=text)]


def search_session(upstream: FakeOpenAIUpstream, turns: int, opening: str = "") -> None:
    """Turn 1: the model searches (saying `opening`), then answers "It is
    out."; turns 2 and 3 answer "Turn two.", "Turn three."."""
    later = [Script(text=f"Turn {n}.") for n in ("two", "three")[: turns - 1]]
    upstream.scripts = [
        Script(text=opening, tool_calls=[SEARCH]),
        Script(text="It is out."),
        *later,
    ]


def assert_session_only_grew(
    upstream: FakeOpenAIUpstream, reads_search_at: int
) -> None:
    """Turn 1's follow-up (its search appended), then turns 2 and 3: each
    upstream prompt starts with the one before, byte for byte, and the
    request `reads_search_at` carries the search's result."""
    bodies = [seen.body["messages"] for seen in upstream.requests]
    assert len(bodies) == 4
    for before, after in itertools.pairwise(bodies[1:]):
        assert json.dumps(after).startswith(json.dumps(before)[:-1])
    assert "One local endpoint." in tool_result_text(
        upstream.requests[reads_search_at].body, "/v1/chat/completions"
    )


def tool_result_text(body: dict[str, Any], path: str) -> str:
    """The search result the model was sent (in any upstream API)."""
    if path.endswith("/chat/completions"):
        return str([m for m in body["messages"] if m["role"] == "tool"][-1]["content"])
    if path.endswith("/responses"):
        outputs = [i for i in body["input"] if i.get("type") == "function_call_output"]
        return str(outputs[-1]["output"])
    blocks = [
        b
        for m in body["messages"]
        if isinstance(m["content"], list)
        for b in m["content"]
        if b.get("type") == "tool_result"
    ]
    content = blocks[-1]["content"]
    return content if isinstance(content, str) else content[0]["text"]


def offered(body: dict[str, Any]) -> list[str]:
    names = []
    for tool in body.get("tools") or []:
        names.append(tool.get("name") or tool.get("function", {}).get("name"))
    return names


# ------------------------------------------------------------ Anthropic door


@pytest.mark.parametrize("api", ["chat", "responses", "messages"])
@pytest.mark.parametrize("stream", [True, False])
async def test_claude_search_runs_and_the_answer_goes_on(
    fake_upstream: FakeOpenAIUpstream, fake_search: FakeSearch, api: str, stream: bool
) -> None:
    model_searches_then_answers(fake_upstream)
    answer, record = await ask_claude(
        searching(fake_upstream, fake_search, api),
        messages=[{"role": "user", "content": "what is new?"}],
        stream=stream,
    )
    kinds = [block.type for block in answer.content]
    assert kinds == ["server_tool_use", "web_search_tool_result", "text"]
    call, result, text = answer.content
    assert isinstance(call, anthropic.types.ServerToolUseBlock)
    assert call.name == "web_search" and call.input == {"query": "lm bridge release"}
    assert call.id == "call_s1"  # the model's: a chained upstream knows it
    assert isinstance(result, anthropic.types.WebSearchToolResultBlock)
    assert result.tool_use_id == call.id
    assert isinstance(result.content, list)
    assert [hit.url for hit in result.content][:2] == [
        "https://lmbridge.example/docs",
        "https://news.example.org/a",
    ]
    assert result.content[0].page_age == "2 days ago"
    assert isinstance(text, anthropic.types.TextBlock)
    assert text.text == "LM Bridge 2 is out."
    assert answer.stop_reason == "end_turn"
    assert answer.usage.server_tool_use is not None
    assert answer.usage.server_tool_use.web_search_requests == 1
    # Both upstream calls' tokens are counted.
    assert answer.usage.output_tokens == 14
    assert fake_search.queries() == ["lm bridge release"]
    first, second = fake_upstream.requests
    assert "web_search" in offered(first.body)
    assert "One local endpoint." in tool_result_text(second.body, second.path)
    assert any(
        "web search 'lm bridge release': 3 results" in n for n in record.note_texts
    )
    assert record.status == 200


async def test_allowed_and_blocked_domains_filter_the_hits(
    fake_upstream: FakeOpenAIUpstream, fake_search: FakeSearch
) -> None:
    model_searches_then_answers(fake_upstream)
    tool: Any = {**WEB_SEARCH_TOOL, "blocked_domains": ["blocked.example.net"]}
    answer, _ = await ask_claude(searching(fake_upstream, fake_search), [tool])
    result = answer.content[1]
    assert isinstance(result, anthropic.types.WebSearchToolResultBlock)
    assert isinstance(result.content, list)
    assert "https://blocked.example.net/x" not in [h.url for h in result.content]
    fake_upstream.scripts = [Script(text="", tool_calls=[SEARCH]), Script(text="ok")]
    tool = {**WEB_SEARCH_TOOL, "allowed_domains": ["example.org"]}
    answer, _ = await ask_claude(searching(fake_upstream, fake_search), [tool])
    result = answer.content[1]
    assert isinstance(result, anthropic.types.WebSearchToolResultBlock)
    assert isinstance(result.content, list)
    assert [h.url for h in result.content] == ["https://news.example.org/a"]
    assert fake_search.queries()[-1] == "lm bridge release (site:example.org)"


@pytest.mark.parametrize("fault", ["status", "delay", "garbage"])
async def test_a_failed_search_is_a_result_the_model_reads(
    fake_upstream: FakeOpenAIUpstream, fake_search: FakeSearch, fault: str
) -> None:
    if fault == "status":
        fake_search.status = 500
    elif fault == "delay":
        fake_search.delay = 2.0
    else:
        fake_search.garbage = True
    model_searches_then_answers(fake_upstream, "I could not search.")
    settings = searching(fake_upstream, fake_search, extra="timeout = 0.3")
    answer, record = await ask_claude(settings, stream=True)
    result = answer.content[1]
    assert isinstance(result, anthropic.types.WebSearchToolResultBlock)
    assert isinstance(result.content, anthropic.types.WebSearchToolResultError)
    assert result.content.error_code == "unavailable"
    assert answer.content[2].type == "text"
    second = fake_upstream.requests[1]
    assert "The web search failed" in tool_result_text(second.body, second.path)
    assert record.status == 200
    assert any("failed" in note for note in record.note_texts)


async def test_searches_past_the_limit_are_refused_to_the_model(
    fake_upstream: FakeOpenAIUpstream, fake_search: FakeSearch
) -> None:
    again = ToolCallScript("web_search", '{"query": "more"}', "call_s2")
    fake_upstream.scripts = [
        Script(text="", tool_calls=[SEARCH]),
        Script(text="", tool_calls=[again]),
        Script(text="done"),
    ]
    settings = searching(fake_upstream, fake_search, extra="max_searches = 3")
    tool: Any = {**WEB_SEARCH_TOOL, "max_uses": 1}  # the client's limit is lower
    answer, _ = await ask_claude(settings, [tool])
    kinds = [block.type for block in answer.content]
    assert kinds == [
        "server_tool_use",
        "web_search_tool_result",
        "server_tool_use",
        "web_search_tool_result",
        "text",
    ]
    refused = answer.content[3]
    assert isinstance(refused, anthropic.types.WebSearchToolResultBlock)
    assert isinstance(refused.content, anthropic.types.WebSearchToolResultError)
    assert refused.content.error_code == "max_uses_exceeded"
    assert fake_search.queries() == ["lm bridge release"]
    third = fake_upstream.requests[2]
    assert "No more web searches" in tool_result_text(third.body, third.path)
    assert answer.usage.server_tool_use is not None
    assert answer.usage.server_tool_use.web_search_requests == 1


async def test_without_a_provider_the_tool_is_dropped_with_a_note(
    fake_upstream: FakeOpenAIUpstream,
) -> None:
    answer, record = await ask_claude(searching(fake_upstream, None))
    assert answer.content[0].type == "text"
    assert offered(fake_upstream.requests[0].body) == []
    assert any(
        "dropped: tool web_search" in n and "no [web_search] provider" in n
        for n in record.note_texts
    )


async def test_client_tool_calls_beside_a_search_are_left_out(
    fake_upstream: FakeOpenAIUpstream, fake_search: FakeSearch
) -> None:
    read = ToolCallScript("read", '{"path": "a"}', "call_r")
    fake_upstream.scripts = [
        Script(text="", tool_calls=[SEARCH, read]),
        Script(text="", tool_calls=[read]),
    ]
    read_tool = {"name": "read", "input_schema": {"type": "object"}}
    answer, record = await ask_claude(
        searching(fake_upstream, fake_search), [WEB_SEARCH_TOOL, read_tool]
    )
    kinds = [block.type for block in answer.content]
    assert kinds == ["server_tool_use", "web_search_tool_result", "tool_use"]
    assert answer.stop_reason == "tool_use"
    assert any("1 tool calls beside a search left out" in n for n in record.note_texts)


# ------------------------------------------------------------ Responses door


@pytest.mark.parametrize("api", ["chat", "responses", "messages"])
@pytest.mark.parametrize("stream", [True, False])
async def test_responses_search_shows_as_web_search_call(
    fake_upstream: FakeOpenAIUpstream, fake_search: FakeSearch, api: str, stream: bool
) -> None:
    model_searches_then_answers(fake_upstream)
    async with (
        running(searching(fake_upstream, fake_search, api)) as proxy,
        oai(proxy) as client,
    ):
        response: Any
        if stream:
            types = []
            async with client.responses.stream(
                model="claude-x",
                input="what is new?",
                tools=[{"type": "web_search"}],
            ) as events:
                async for event in events:
                    types.append(event.type)
                response = await events.get_final_response()
            assert types.index("response.web_search_call.searching") < types.index(
                "response.web_search_call.completed"
            )
        else:
            response = await client.responses.create(
                model="claude-x",
                input="what is new?",
                tools=[{"type": "web_search_preview"}],
            )
    kinds = [item.type for item in response.output]
    assert kinds == ["web_search_call", "message"]
    call = response.output[0]
    assert call.type == "web_search_call"
    assert call.status == "completed"
    assert call.action.type == "search"
    assert call.action.query == "lm bridge release"
    assert response.output_text == "LM Bridge 2 is out."
    assert fake_search.queries() == ["lm bridge release"]


async def test_responses_upstream_gets_the_search_as_a_function(
    fake_upstream: FakeOpenAIUpstream, fake_search: FakeSearch
) -> None:
    """A Responses client to a (local) Responses server: not relayed, so
    the server never sees a hosted tool it cannot run."""
    model_searches_then_answers(fake_upstream)
    async with (
        running(searching(fake_upstream, fake_search, "responses")) as proxy,
        oai(proxy) as client,
    ):
        response = await client.responses.create(
            model="claude-x", input="q", tools=[{"type": "web_search"}]
        )
    assert [item.type for item in response.output] == ["web_search_call", "message"]
    first, second = fake_upstream.requests
    assert [t["type"] for t in first.body["tools"]] == ["function"]
    assert "One local endpoint." in tool_result_text(second.body, second.path)


# ------------------------------------------------------------ sessions


async def test_claude_three_turns_carry_the_search_back_unchanged(
    fake_upstream: FakeOpenAIUpstream, fake_search: FakeSearch
) -> None:
    """Turn 2 sends turn 1's search blocks back: the upstream reads the same
    call and result it read in turn 1, byte for byte, before the new turn."""
    search_session(fake_upstream, 3, opening="Let me look.")
    history: list[Any] = []
    async with (
        running(searching(fake_upstream, fake_search)) as proxy,
        claude(proxy) as client,
    ):
        for turn in range(3):
            history.append({"role": "user", "content": f"question {turn}"})
            async with client.messages.stream(
                model="claude-x",
                max_tokens=100,
                tools=[WEB_SEARCH_TOOL],
                messages=history,
            ) as events:
                answer = await events.get_final_message()
            history.append(
                {
                    "role": "assistant",
                    "content": [
                        b.model_dump(exclude_none=True) for b in answer.content
                    ],
                }
            )
    assert [b["type"] for b in history[1]["content"]] == [
        "text",
        "server_tool_use",
        "web_search_tool_result",
        "text",
    ]
    assert_session_only_grew(fake_upstream, reads_search_at=2)
    assert fake_search.queries() == ["lm bridge release"]


async def test_codex_three_turns_carry_the_search_back_unchanged(
    fake_upstream: FakeOpenAIUpstream, fake_search: FakeSearch
) -> None:
    """Codex sends a search back without its id or results: the upstream
    still reads the same call and result every turn."""
    search_session(fake_upstream, 3)
    items: list[Any] = []
    async with (
        running(searching(fake_upstream, fake_search)) as proxy,
        oai(proxy) as client,
    ):
        for turn in range(3):
            items.append(
                {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": f"q{turn}"}],
                }
            )
            response = await client.responses.create(
                model="claude-x",
                input=items,
                tools=[{"type": "web_search"}],
                store=False,
            )
            for item in response.output:
                kept = item.model_dump(exclude_none=True)
                if kept["type"] == "web_search_call":
                    kept.pop("id")  # as Codex sends it back
                items.append(kept)
    assert_session_only_grew(fake_upstream, reads_search_at=3)


async def test_an_old_search_without_a_provider_is_left_out(
    fake_upstream: FakeOpenAIUpstream,
) -> None:
    history: Any = [
        {"role": "user", "content": "q"},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "server_tool_use",
                    "id": "srvtoolu_1",
                    "name": "web_search",
                    "input": {"query": "x"},
                },
                {
                    "type": "web_search_tool_result",
                    "tool_use_id": "srvtoolu_1",
                    "content": [
                        {
                            "type": "web_search_result",
                            "url": "https://a.example",
                            "title": "A",
                            "encrypted_content": "opaque",
                        }
                    ],
                },
                {"type": "text", "text": "found"},
            ],
        },
        {"role": "user", "content": "next"},
    ]
    _, record = await ask_claude(searching(fake_upstream, None), (), history)
    sent = fake_upstream.requests[0].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert "tool_calls" not in sent[1]
    assert any("1 earlier web searches" in n for n in record.note_texts)


# ------------------------------------------------------------ providers


@pytest.mark.parametrize("provider", ["brave", "tavily"])
async def test_keyed_providers_send_their_key(
    fake_upstream: FakeOpenAIUpstream,
    fake_search: FakeSearch,
    provider: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEST_SEARCH_KEY", "sk-search-123")
    model_searches_then_answers(fake_upstream)
    settings = searching(
        fake_upstream,
        fake_search,
        extra='api_key_env = "TEST_SEARCH_KEY"',
        provider=provider,
    )
    answer, _ = await ask_claude(settings)
    result = answer.content[1]
    assert isinstance(result, anthropic.types.WebSearchToolResultBlock)
    assert isinstance(result.content, list) and len(result.content) == 3
    seen = fake_search.requests[0]
    if provider == "brave":
        assert seen.headers["X-Subscription-Token"] == "sk-search-123"
        assert seen.query["q"] == "lm bridge release"
    else:
        assert seen.headers["Authorization"] == "Bearer sk-search-123"
        assert seen.body["query"] == "lm bridge release"


async def test_a_keyed_provider_without_a_key_fails_the_search_not_the_answer(
    fake_upstream: FakeOpenAIUpstream, fake_search: FakeSearch
) -> None:
    model_searches_then_answers(fake_upstream)
    settings = searching(fake_upstream, fake_search, provider="brave")
    answer, record = await ask_claude(settings)
    assert answer.content[-1].type == "text"
    assert fake_search.requests == []
    assert any("lmbridge keys set web-search" in n for n in record.note_texts)


@pytest.mark.parametrize(
    ("table", "needle"),
    [
        ('provider = "searxng"', "web_search.url is required"),
        ('provider = "brave"\nurl = "ftp://x"', "must start with http"),
        ('provider = "tavily"\nmax_searches = 0', "max_searches"),
        ('provider = "bing"', "web_search.provider"),
    ],
)
def test_bad_web_search_settings_name_the_key(table: str, needle: str) -> None:
    with pytest.raises(config.ConfigError, match=needle):
        config.parse(f"[web_search]\n{table}\n")


async def test_the_cli_sets_up_web_search(
    fake_upstream: FakeOpenAIUpstream,
    fake_search: FakeSearch,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`lmbridge config set web_search.*` and `lmbridge keys set web-search`
    (the keyring): then a proxy searches with that key."""
    path = tmp_path / "config.toml"
    path.write_text(
        "# my settings\n" + config.dump(settings_for(fake_upstream.url)).decode()
    )
    base = ["--config", str(path)]
    assert (
        await asyncio.to_thread(
            cli.main, [*base, "config", "set", "web_search.provider", "brave"]
        )
        == 0
    )
    assert (
        await asyncio.to_thread(
            cli.main, [*base, "config", "set", "web_search.url", fake_search.url]
        )
        == 0
    )
    assert (
        await asyncio.to_thread(
            cli.main, [*base, "config", "set", "web_search.max_searches", "0"]
        )
        == 1
    )
    monkeypatch.setattr(sys, "stdin", io.StringIO("sk-brave-secret\n"))
    assert await asyncio.to_thread(cli.main, [*base, "keys", "set", "web-search"]) == 0
    out = capsys.readouterr()
    assert "the web search provider is in the keyring" in out.out
    assert "web_search.max_searches" in out.err
    text = path.read_text()
    assert text.startswith("# my settings") and "sk-brave-secret" not in text
    settings = config.load(path)
    assert settings.web_search.provider == "brave"

    model_searches_then_answers(fake_upstream)
    await ask_claude(settings)
    assert fake_search.requests[0].headers["X-Subscription-Token"] == "sk-brave-secret"
    assert (
        await asyncio.to_thread(cli.main, [*base, "keys", "delete", "web-search"]) == 0
    )


# ------------------------------------------------------------ codecs


def test_an_anthropic_history_search_is_the_call_and_result_the_model_read() -> None:
    hit = {
        "type": "web_search_result",
        "url": "https://a.example/x",
        "title": "A",
        "encrypted_content": websearch.sealed("the text read"),
        "page_age": "1 day",
    }
    search = [
        {
            "type": "server_tool_use",
            "id": "srvtoolu_1",
            "name": "web_search",
            "input": {"query": "q1"},
        },
        {
            "type": "web_search_tool_result",
            "tool_use_id": "srvtoolu_1",
            "content": [hit],
        },
    ]
    body = {
        "model": "m",
        "max_tokens": 10,
        "messages": [
            {"role": "user", "content": "ask"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "looking"},
                    *search,
                    {"type": "text", "text": "found"},
                ],
            },
            {"role": "user", "content": "more"},
            {"role": "assistant", "content": search},  # ends the turn
            {"role": "user", "content": "next"},
            # a call whose result never came: the model never read it
            {
                "role": "assistant",
                "content": [search[0], {"type": "text", "text": "x"}],
            },
            {"role": "user", "content": "last"},
        ],
    }
    req = parse_request(json.dumps(body).encode())
    expected = ir.WebSearch(
        "srvtoolu_1",
        "q1",
        (ir.SearchHit("https://a.example/x", "A", "the text read", "1 day"),),
    )
    call, result = websearch.as_call_and_result(expected)
    assert call.arguments == '{"query":"q1"}'
    assert "the text read" in result.text() and "Age: 1 day" in result.text()
    assert [(m.role, m.parts) for m in req.messages] == [
        (ir.Role.USER, (ir.Text("ask"),)),
        (ir.Role.ASSISTANT, (ir.Text("looking"), call)),
        (ir.Role.USER, (result,)),
        (ir.Role.ASSISTANT, (ir.Text("found"),)),
        (ir.Role.USER, (ir.Text("more"),)),
        (ir.Role.ASSISTANT, (call,)),
        (ir.Role.USER, (result, ir.Text("next"))),
        (ir.Role.ASSISTANT, (ir.Text("x"),)),
        (ir.Role.USER, (ir.Text("last"),)),
    ]
    assert req.searches == ("srvtoolu_1", "srvtoolu_1")
    assert any("without its result" in line for line in req.dropped)


def test_a_responses_history_search_gets_an_id_from_its_query() -> None:
    from lmbridge.protocols.openai_responses import RESPONSES

    body = {
        "model": "m",
        "tools": [
            {"type": "web_search", "filters": {"allowed_domains": ["a.example"]}}
        ],
        "input": [
            {"role": "user", "content": "ask"},
            {
                "type": "web_search_call",
                "status": "completed",
                "action": {"type": "search", "query": "q1"},
            },
            {"type": "web_search_call", "action": {"type": "open_page", "url": "u"}},
            {"role": "assistant", "content": "found"},
        ],
    }
    req = RESPONSES.parse_request(json.dumps(body).encode())
    call_id = websearch.search_id("q1")
    assert req.web_search == ir.WebSearchTool("web_search", ("a.example",))
    assert req.searches == (call_id,)
    assert [(m.role, m.parts) for m in req.messages] == [
        (ir.Role.USER, (ir.Text("ask"),)),
        (ir.Role.ASSISTANT, (ir.ToolCall(call_id, "web_search", '{"query":"q1"}'),)),
        (ir.Role.USER, (ir.ToolResult(call_id),)),
        (ir.Role.ASSISTANT, (ir.Text("found"),)),
    ]


async def test_a_vendor_upstream_runs_the_tool_itself(
    fake_upstream: FakeOpenAIUpstream, fake_search: FakeSearch
) -> None:
    """Anthropic's API (kind anthropic) gets the client's body as it is, the
    server tool in it; LM Bridge searches nothing."""
    table = f'\n[web_search]\nprovider = "searxng"\nurl = "{fake_search.url}"\n'
    settings = settings_for(
        fake_upstream.url, kind="anthropic", upstream_extra="", routes=table
    )
    await ask_claude(settings)
    assert fake_upstream.requests[0].body["tools"] == [WEB_SEARCH_TOOL]
    assert fake_search.requests == []


async def test_previous_response_id_carries_the_search(
    fake_upstream: FakeOpenAIUpstream, fake_search: FakeSearch
) -> None:
    search_session(fake_upstream, 2)
    async with running(searching(fake_upstream, fake_search)) as proxy, oai(proxy) as c:
        first = await c.responses.create(
            model="claude-x", input="q0", tools=[{"type": "web_search"}]
        )
        second = await c.responses.create(
            model="claude-x",
            input="q1",
            tools=[{"type": "web_search"}],
            previous_response_id=first.id,
        )
    assert second.output_text == "Turn two."
    turn2 = fake_upstream.requests[2]
    assert "One local endpoint." in tool_result_text(turn2.body, turn2.path)
    before = fake_upstream.requests[1].body["messages"]
    assert turn2.body["messages"][: len(before)] == before


async def test_a_chained_session_to_a_responses_upstream_keeps_its_chain(
    fake_upstream: FakeOpenAIUpstream, fake_search: FakeSearch
) -> None:
    """A keyed Claude Code session to a Responses upstream: the search's
    follow-up call and the next turns each continue the chain."""
    search_session(fake_upstream, 2)
    history: list[Any] = []
    settings = searching(fake_upstream, fake_search, "responses")
    async with running(settings) as proxy, claude(proxy) as client:
        for turn in range(2):
            history.append({"role": "user", "content": f"question {turn}"})
            answer = await client.messages.create(
                model="claude-x",
                max_tokens=100,
                tools=[WEB_SEARCH_TOOL],
                messages=history,
                extra_headers={"X-Claude-Code-Session-Id": "sess-ws"},
            )
            history.append(
                {
                    "role": "assistant",
                    "content": [
                        b.model_dump(exclude_none=True) for b in answer.content
                    ],
                }
            )
        records = [await proxy.record(2)]
    bodies = [seen.body for seen in fake_upstream.requests]
    assert len(bodies) == 3
    assert "previous_response_id" not in bodies[0]
    # The follow-up and turn 2 send only what is new after the chain.
    assert bodies[1].get("previous_response_id")
    assert bodies[2].get("previous_response_id")
    # The server has the model's call: only its output, under the model's id.
    assert [(i.get("type"), i.get("call_id")) for i in bodies[1]["input"]] == [
        ("function_call_output", "call_s1")
    ]
    assert not any("diverged" in n for r in proxy.records for n in r.note_texts), [
        r.note_texts for r in records
    ]


_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
_hit = st.builds(
    ir.SearchHit,
    st.from_regex(r"https://[a-z]{1,8}\.example/[a-z0-9]{0,6}", fullmatch=True),
    _text,
    _text,
    st.none() | _text.filter(bool),
)
_search = st.builds(
    ir.WebSearch,
    st.from_regex(r"srvtoolu_[0-9a-f]{6}", fullmatch=True),
    _text,
    st.tuples() | st.lists(_hit, max_size=4).map(tuple),
    st.none() | st.sampled_from(sorted(websearch.ERROR_TEXTS)),
)


@settings(max_examples=150, deadline=None)
@given(search=_search, before=_text, after=_text)
def test_a_search_sent_back_reads_as_the_model_read_it(
    search: ir.WebSearch, before: str, after: str
) -> None:
    """Whatever a search found (or how it failed), the blocks a client got
    for it, sent back, are the call and result the model read: the
    upstream prefix of the next turn is the same."""
    blocks = [
        {"type": "text", "text": before},
        json.loads(msgspec.json.encode(search_call(search))),
        json.loads(msgspec.json.encode(search_result(search))),
        {"type": "text", "text": after},
    ]
    body = {
        "model": "m",
        "max_tokens": 5,
        "messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": blocks},
            {"role": "user", "content": "next"},
        ],
    }
    req = parse_request(json.dumps(body).encode())
    call, result = websearch.as_call_and_result(search)
    said = [m.parts for m in req.messages]
    assert call in said[1] and said[2][0] == result
    assert req.searches == (search.call_id,)


async def test_a_model_that_keeps_searching_is_stopped(
    fake_upstream: FakeOpenAIUpstream, fake_search: FakeSearch
) -> None:
    fake_upstream.script = Script(text="", tool_calls=[SEARCH])  # every call
    settings = searching(fake_upstream, fake_search, extra="max_searches = 1")
    answer, record = await ask_claude(settings)
    kinds = [block.type for block in answer.content]
    assert kinds == ["server_tool_use", "web_search_tool_result"] * 3
    assert answer.stop_reason == "end_turn"
    assert len(fake_upstream.requests) == 4
    assert fake_search.queries() == ["lm bridge release"]
    assert "web search: the model kept searching" in record.note_texts


def test_a_tool_result_in_an_assistant_message_is_no_search() -> None:
    """Found by the fuzzer: a client's own `tool_result` block where it
    does not belong is not taken for a search's result."""
    body = {
        "model": "m",
        "max_tokens": 5,
        "messages": [
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_result", "tool_use_id": "t", "content": "x"}
                ],
            },
            {"role": "user", "content": "q"},
        ],
    }
    req = parse_request(json.dumps(body).encode())
    assert req.searches == ()
    assert [m.role for m in req.messages] == [ir.Role.ASSISTANT, ir.Role.USER]
