"""What a long Claude Code session needs from the pipeline, turn after turn:
the billing block that changes every turn never reaches a local server, and
a `max_tokens` that the server refuses is lowered instead of failing."""

from __future__ import annotations

import itertools
import json
from typing import Any

import anthropic
import pytest

from fakes.openai_upstream import FakeOpenAIUpstream, Script
from support import RunningProxy, oai, running, settings_for


def claude(proxy: RunningProxy) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=proxy.url, api_key="x", max_retries=0)


def billing(turn: int) -> anthropic.types.TextBlockParam:
    return {
        "type": "text",
        "text": f"x-anthropic-billing-header: cc_version=2.1.332.{turn:03x};"
        " cc_entrypoint=sdk-cli;",
    }


SYSTEM_TEXT = "You are Claude Code."


async def claude_turns(
    proxy: RunningProxy, turns: int, **create: Any
) -> list[anthropic.types.Message]:
    history: list[anthropic.types.MessageParam] = []
    answers: list[anthropic.types.Message] = []
    async with claude(proxy) as client:
        for turn in range(turns):
            history.append({"role": "user", "content": f"question {turn}"})
            # Streamed, as Claude Code asks (the SDK insists at this size).
            async with client.messages.stream(
                model="claude-sonnet-4-5",
                max_tokens=create.get("max_tokens", 32000),
                system=[billing(turn), {"type": "text", "text": SYSTEM_TEXT}],
                messages=history,
            ) as stream:
                answer = await stream.get_final_message()
            answers.append(answer)
            block = answer.content[0]
            assert isinstance(block, anthropic.types.TextBlock)
            history.append({"role": "assistant", "content": block.text})
    return answers


@pytest.mark.parametrize("api", ["chat", "responses", "messages"])
async def test_billing_block_never_reaches_a_local_upstream(
    fake_upstream: FakeOpenAIUpstream, api: str
) -> None:
    settings = settings_for(fake_upstream.url, upstream_extra=f'api = "{api}"')
    async with running(settings) as proxy:
        await claude_turns(proxy, 3)
        record = await proxy.record(3)
    bodies = [seen.raw for seen in fake_upstream.requests]
    assert len(bodies) == 3
    for raw in bodies:
        assert b"x-anthropic-billing-header" not in raw
        assert SYSTEM_TEXT.encode() in raw
    assert any("billing block" in note for note in record.note_texts)


async def test_billing_block_is_kept_where_configured(
    fake_upstream: FakeOpenAIUpstream,
) -> None:
    extra = 'api = "messages"\nkeep_billing_header = true'
    async with running(settings_for(fake_upstream.url, upstream_extra=extra)) as proxy:
        await claude_turns(proxy, 1)
    assert b"x-anthropic-billing-header" in fake_upstream.requests[0].raw


async def test_turns_differ_only_by_what_is_new(
    fake_upstream: FakeOpenAIUpstream,
) -> None:
    """With the billing block gone, each turn's upstream messages begin with
    the previous turn's, and everything before them is the same."""
    async with running(settings_for(fake_upstream.url)) as proxy:
        await claude_turns(proxy, 4)
    bodies = [seen.body for seen in fake_upstream.requests]
    for before, after in itertools.pairwise(bodies):
        assert after["messages"][: len(before["messages"])] == before["messages"]
        rest = {k: v for k, v in after.items() if k != "messages"}
        assert rest == {k: v for k, v in before.items() if k != "messages"}
        # Serialized the same way too: the text before the new messages.
        head = json.dumps(before["messages"])[:-1]
        assert json.dumps(after["messages"]).startswith(head)


@pytest.mark.parametrize("api", ["chat", "messages"])
async def test_refused_max_tokens_is_lowered_and_remembered(
    fake_upstream: FakeOpenAIUpstream, api: str
) -> None:
    fake_upstream.script = Script(text="fits", max_tokens_cap=8192)
    settings = settings_for(fake_upstream.url, upstream_extra=f'api = "{api}"')
    async with running(settings) as proxy:
        answers = await claude_turns(proxy, 2, max_tokens=128000)
        record = await proxy.record(2)
        first = proxy.records[0]
    assert [a.content[0].text for a in answers] == ["fits", "fits"]  # type: ignore[union-attr]
    asked = [
        next(
            seen.body[k]
            for k in ("max_tokens", "max_completion_tokens")
            if k in seen.body
        )
        for seen in fake_upstream.requests
    ]
    # Turn 1: refused, then lowered; turn 2 is lowered before it is sent.
    assert asked == [128000, 8192, 8192]
    assert any("max_tokens lowered from 128000 to 8192" in n for n in first.note_texts)
    assert record.status == 200


async def test_refused_max_tokens_through_chat_door(
    fake_upstream: FakeOpenAIUpstream,
) -> None:
    fake_upstream.script = Script(text="ok", max_tokens_cap=4096)
    async with running(settings_for(fake_upstream.url)) as proxy, oai(proxy) as client:
        reply = await client.chat.completions.create(
            model="claude-x",
            max_tokens=100000,
            messages=[{"role": "user", "content": "hi"}],
        )
    assert reply.choices[0].message.content == "ok"
    assert [seen.body.get("max_tokens") for seen in fake_upstream.requests] == [
        100000,
        4096,
    ]


async def test_other_refusals_are_not_retried(
    fake_upstream: FakeOpenAIUpstream,
) -> None:
    fake_upstream.script = Script(status=400, error_message="bad tool schema")
    async with running(settings_for(fake_upstream.url)) as proxy, claude(proxy) as c:
        with pytest.raises(anthropic.BadRequestError):
            await c.messages.create(
                model="claude-x",
                max_tokens=1000,
                messages=[{"role": "user", "content": "hi"}],
            )
    assert len(fake_upstream.requests) == 1


async def test_max_tokens_beyond_the_window_is_lowered_then_sent_right(
    fake_upstream: FakeOpenAIUpstream,
) -> None:
    """vLLM counts max_tokens into the context: the prompt fits, the answer
    does not. Lowered to what the window leaves, and the next turn is sent
    lowered at once (the window is remembered)."""
    fake_upstream.script = Script(text="fits", context_window=8192, prompt_tokens=35)
    async with running(settings_for(fake_upstream.url)) as proxy:
        answers = await claude_turns(proxy, 2, max_tokens=32000)
        first = await proxy.record(2)
    assert [a.content[0].text for a in answers] == ["fits", "fits"]  # type: ignore[union-attr]
    asked = [seen.body["max_tokens"] for seen in fake_upstream.requests]
    assert len(asked) == 3
    assert asked[0] == 32000
    assert 35 + asked[1] <= 8192 and asked[1] > 7000
    assert asked[2] <= 8192 and asked[2] > 4000
    assert not any("prompt is too long" in (r.error or "") for r in proxy.records)
    assert first.status == 200


async def test_what_is_dropped_is_on_the_record(
    fake_upstream: FakeOpenAIUpstream,
) -> None:
    """A server tool, and thinking without a signature for a Chat upstream:
    the record (Requests pane, --log-requests) lists both."""
    async with running(settings_for(fake_upstream.url)) as proxy, claude(proxy) as c:
        await c.messages.create(
            model="claude-x",
            max_tokens=100,
            tools=[
                {"type": "web_search_20250305", "name": "web_search"},  # type: ignore[list-item]
                {"name": "read", "input_schema": {"type": "object"}},
            ],
            messages=[
                {"role": "user", "content": "a"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "hm", "signature": "sig"},
                        {"type": "text", "text": "b"},
                    ],
                },
                {"role": "user", "content": "c"},
            ],
        )
        record = await proxy.record()
    notes = "\n".join(record.note_texts)
    assert "dropped: tool web_search" in notes
    assert "dropped for openai: thinking of earlier turns (1 blocks)" in notes
    assert [t["function"]["name"] for t in fake_upstream.requests[0].body["tools"]] == [
        "read"
    ]
