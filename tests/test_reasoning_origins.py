"""Encrypted reasoning goes back only to the upstream that produced it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic
import pytest

from fakes.openai_upstream import FakeOpenAIUpstream, Script
from lmbridge import config
from lmbridge.core import ir
from lmbridge.server.origins import ReasoningOrigins, anthropic_platform
from support import oai, running, settings_for


@pytest.fixture
async def other_upstream() -> AsyncIterator[FakeOpenAIUpstream]:
    fake = FakeOpenAIUpstream()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
async def test_encrypted_reasoning_only_reaches_its_own_upstream(
    fake_upstream: FakeOpenAIUpstream, other_upstream: FakeOpenAIUpstream, stream: bool
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
        items: list[Any] = []
        if stream:
            events = await client.responses.create(
                model="claude-x", input="hi", stream=True, store=False
            )
            async for event in events:
                if event.type == "response.output_item.done":
                    items.append(event.item.model_dump(exclude_none=True))
        else:
            # A whole answer records the origin of its reasoning too.
            whole = await client.responses.create(
                model="claude-x", input="hi", store=False
            )
            items = [item.model_dump(exclude_none=True) for item in whole.output]
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
        "encrypted reasoning made by another upstream (1)" in n
        for n in record.note_texts
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


MESSAGES_TWO = """
[server]
port = 0

[[upstream]]
name = "first"
kind = "anthropic"
api = "messages"
base_url = "{first}"

[[upstream]]
name = "second"
kind = "anthropic"
api = "messages"
base_url = "{second}"

[[route]]
model = "claude-first"
upstream = "first"
target = "m1"

[[route]]
model = "claude-second"
upstream = "second"
target = "m2"
"""


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
async def test_signed_thinking_goes_back_only_to_its_signer(
    fake_upstream: FakeOpenAIUpstream, other_upstream: FakeOpenAIUpstream, stream: bool
) -> None:
    """Thinking signed by one Messages upstream (LM Studio's) is not sent to
    another (Azure Foundry's, which refuses it); its signer gets it back."""
    settings = config.parse(
        MESSAGES_TWO.format(first=fake_upstream.url, second=other_upstream.url)
    )
    fake_upstream.script = Script(text="first answer", reasoning="my plan")
    other_upstream.script = Script(text="second answer")
    async with (
        running(settings) as proxy,
        anthropic.AsyncAnthropic(
            base_url=proxy.url, api_key="k", max_retries=0
        ) as client,
    ):
        hello: list[anthropic.types.MessageParam] = [{"role": "user", "content": "hi"}]
        first: anthropic.types.Message
        if stream:
            async with client.messages.stream(
                model="claude-first", max_tokens=100, messages=hello
            ) as events:
                first = await events.get_final_message()
        else:
            first = await client.messages.create(
                model="claude-first", max_tokens=100, messages=hello
            )
        blocks = [b.model_dump(exclude_none=True) for b in first.content]
        assert any(b.get("signature") == "sig-fake" for b in blocks)
        history: list[Any] = [
            *hello,
            {"role": "assistant", "content": blocks},
            {"role": "user", "content": "again"},
        ]
        # Its signer gets it back, relayed unchanged.
        await client.messages.create(
            model="claude-first", max_tokens=100, messages=history
        )
        assert b"sig-fake" in fake_upstream.requests[-1].raw
        # The other Messages upstream never sees it; the record says so.
        reply = await client.messages.create(
            model="claude-second", max_tokens=100, messages=history
        )
        assert reply.content[0].type == "text"
        sent = other_upstream.requests[-1]
        assert b"sig-fake" not in sent.raw and b"my plan" not in sent.raw
        record = await proxy.record(3)
    assert any(
        "thinking signed by another upstream (1 blocks)" in n for n in record.note_texts
    )


def test_anthropic_platform_shares_signatures() -> None:
    """Claude on Foundry and Anthropic's API take each other's signatures;
    an Anthropic-compatible server elsewhere does not."""
    platform = anthropic_platform(
        [
            ("foundry", "azure-foundry", ""),
            ("claude", "anthropic", "https://api.anthropic.com"),
            ("claude-default", "anthropic", ""),
            ("gateway", "anthropic", "https://llm.example.com"),
            ("local", "lmstudio", "http://127.0.0.1:1234"),
        ]
    )
    assert platform == {"foundry", "claude", "claude-default"}
    origins = ReasoningOrigins(platform=platform)
    origins.remember(["SIG-CLAUDE"], "claude")
    origins.remember(["SIG-LOCAL"], "local")

    def signed(signature: str) -> ir.Request:
        thinking = ir.Thinking(text="plan", signature=signature)
        return ir.Request(
            model="m",
            messages=(
                ir.Message(ir.Role.USER, (ir.Text("hi"),)),
                ir.Message(ir.Role.ASSISTANT, (thinking, ir.Text("ok"))),
            ),
        )

    assert origins.foreign(signed("SIG-CLAUDE"), "foundry", True) == 0
    assert origins.foreign(signed("SIG-CLAUDE"), "gateway", True) == 1
    assert origins.foreign(signed("SIG-LOCAL"), "foundry", True) == 1
    assert origins.foreign(signed("SIG-LOCAL"), "local", True) == 0
    # Of unknown origin (Claude Code's own, from before): the platform only.
    assert origins.foreign(signed("SIG-NEVER-SEEN"), "foundry", True) == 0
    assert origins.foreign(signed("SIG-NEVER-SEEN"), "local", True) == 1
    # Other APIs ignore signatures; unsigned thinking never goes to Messages.
    assert origins.foreign(signed("SIG-LOCAL"), "gateway", False) == 0
    assert origins.foreign(signed(""), "claude", True) == 1
    kept = origins.without_foreign(signed("SIG-LOCAL"), "gateway", True)
    [thinking] = [p for p in kept.messages[1].parts if isinstance(p, ir.Thinking)]
    assert thinking.signature is None and thinking.text == "plan"
