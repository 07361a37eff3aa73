"""`GET /v1/models` for Claude Code's `/model` picker, and picking from it.

Claude Code keeps only the ids that contain "claude" or "anthropic", so in
Anthropic's list shape every other model is listed as `claude/<id>` (its
display name the bare id), and a request for `claude/<id>` is routed as
`<id>`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anthropic
import openai
import pytest

from fakes.openai_upstream import FakeOpenAIUpstream
from lmbridge.upstreams.router import picker_id, unalias
from support import RunningProxy, oai, settings_for, start_proxy

ROUTES = '[[route]]\nmodel = "coder"\nupstream = "fake"\ntarget = "qwen/qwen3-coder"\n'


@pytest.fixture
async def proxy(fake_upstream: FakeOpenAIUpstream) -> AsyncIterator[RunningProxy]:
    running = await start_proxy(settings_for(fake_upstream.url, routes=ROUTES))
    yield running
    await running.server.stop()


def claude(proxy: RunningProxy) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=proxy.url, api_key="k", max_retries=0)


def test_picker_ids_round_trip() -> None:
    assert picker_id("qwen/qwen3-coder") == "claude/qwen/qwen3-coder"
    assert picker_id("claude-sonnet-4-6") == "claude-sonnet-4-6"
    assert picker_id("my-Anthropic-proxy") == "my-Anthropic-proxy"
    for model in ("qwen/qwen3-coder", "claude-sonnet-4-6", "gpt-oss"):
        assert unalias(picker_id(model)) == model
    assert unalias("claude/") == "claude/"


async def test_anthropic_list_offers_every_model_to_the_picker(
    proxy: RunningProxy,
) -> None:
    async with claude(proxy) as client:
        models = [m async for m in client.models.list()]
    names = {m.id: m.display_name for m in models}
    assert all("claude" in i or "anthropic" in i for i in names)
    assert names["claude/coder"] == "coder"  # an exact route
    assert names["claude/fake-model"] == "fake-model"  # the upstream's own
    assert names["claude/other-model"] == "other-model"
    assert names["claude-sonnet-4-6"] == "claude-sonnet-4-6"  # claude-* route


async def test_openai_list_keeps_plain_ids(proxy: RunningProxy) -> None:
    async with oai(proxy) as client:
        ids = [m.id async for m in client.models.list()]
    assert {"coder", "fake-model", "other-model"} <= set(ids)
    assert not any(i.startswith("claude/") for i in ids)


@pytest.mark.parametrize(
    ("picked", "upstream_model"),
    [
        ("claude/coder", "qwen/qwen3-coder"),  # the route's target
        ("claude/other-model", "other-model"),  # unrouted: the first upstream
        ("claude-sonnet-4-6", "fake-model"),  # claude-* as before
    ],
)
async def test_a_picked_model_is_routed_as_its_id(
    proxy: RunningProxy,
    fake_upstream: FakeOpenAIUpstream,
    picked: str,
    upstream_model: str,
) -> None:
    async with claude(proxy) as client:
        message = await client.messages.create(
            model=picked,
            max_tokens=64,
            messages=[{"role": "user", "content": "hi"}],
        )
    assert message.content[0].type == "text"
    assert fake_upstream.requests[-1].body["model"] == upstream_model


async def test_picked_model_through_the_openai_door_too(
    proxy: RunningProxy, fake_upstream: FakeOpenAIUpstream
) -> None:
    client: openai.AsyncOpenAI
    async with oai(proxy) as client:
        await client.chat.completions.create(
            model="claude/coder", messages=[{"role": "user", "content": "hi"}]
        )
    assert fake_upstream.requests[-1].body["model"] == "qwen/qwen3-coder"
