"""Encrypted reasoning goes back only to the upstream that produced it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from fakes.openai_upstream import FakeOpenAIUpstream, Script
from support import oai, running, settings_for


@pytest.fixture
async def other_upstream() -> AsyncIterator[FakeOpenAIUpstream]:
    fake = FakeOpenAIUpstream()
    await fake.start()
    yield fake
    await fake.stop()


async def test_encrypted_reasoning_only_reaches_its_own_upstream(
    fake_upstream: FakeOpenAIUpstream, other_upstream: FakeOpenAIUpstream
) -> None:
    extra = (
        'api = "responses"\n\n[[upstream]]\nname = "other"\nkind = "openai"\n'
        f'api = "responses"\nbase_url = "{other_upstream.url}"'
    )
    routes = '\n[[route]]\nmodel = "gpt-*"\nupstream = "other"\ntarget = "other-model"'
    settings = settings_for(fake_upstream.url, upstream_extra=extra, routes=routes)
    fake_upstream.script = Script(
        text="first", reasoning="thinking", encrypted_reasoning="ENC-FROM-FAKE"
    )
    async with running(settings) as proxy, oai(proxy) as client:
        stream = await client.responses.create(
            model="claude-x", input="hi", stream=True, store=False
        )
        items: list[Any] = []
        async for event in stream:
            if event.type == "response.output_item.done":
                items.append(event.item.model_dump(exclude_none=True))
        assert any(i.get("encrypted_content") == "ENC-FROM-FAKE" for i in items)
        history: list[Any] = [{"role": "user", "content": "hi"}, *items]
        history.append({"role": "user", "content": "again"})

        # The same upstream gets its own reasoning back, relayed unchanged.
        await client.responses.create(model="claude-x", input=history, store=False)
        assert b"ENC-FROM-FAKE" in fake_upstream.requests[-1].raw

        # Another upstream never sees it; the record says so.
        other_upstream.script = Script(text="other")
        reply = await client.responses.create(model="gpt-5", input=history, store=False)
        assert reply.output_text == "other"
        assert b"ENC-FROM-FAKE" not in other_upstream.requests[-1].raw
        record = await proxy.record(3)
    assert any(
        "encrypted reasoning made by another upstream (1)" in n for n in record.notes
    )


async def test_reasoning_of_unknown_origin_is_not_relayed(
    fake_upstream: FakeOpenAIUpstream,
) -> None:
    """Reasoning LM Bridge did not see produced (another tool, a restart)
    could be anyone's: the request is translated without it."""
    settings = settings_for(fake_upstream.url, upstream_extra='api = "responses"')
    history: list[Any] = [
        {"role": "user", "content": "hi"},
        {
            "type": "reasoning",
            "id": "rs_1",
            "summary": [{"type": "summary_text", "text": "plan"}],
            "encrypted_content": "ENC-UNKNOWN",
        },
        {"role": "user", "content": "again"},
    ]
    async with running(settings) as proxy, oai(proxy) as client:
        reply = await client.responses.create(
            model="claude-x", input=history, store=False
        )
        assert reply.output_text
    assert b"ENC-UNKNOWN" not in fake_upstream.requests[-1].raw
