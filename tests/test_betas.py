"""`anthropic-beta` values reach a Messages upstream only where it takes them."""

from __future__ import annotations

import anthropic
import pytest

from fakes.openai_upstream import FakeOpenAIUpstream
from lmbridge import config
from lmbridge.upstreams.factory import make_upstream
from support import running, settings_for

BETAS = "interleaved-thinking-2025-05-14,claude-code-20250219,made-up-2099-01-01"


async def ask(url: str) -> None:
    async with anthropic.AsyncAnthropic(
        base_url=url,
        api_key="x",
        max_retries=0,
        default_headers={"anthropic-beta": BETAS},
    ) as client:
        await client.messages.create(
            model="claude-x",
            max_tokens=50,
            messages=[{"role": "user", "content": "hi"}],
        )


async def test_all_betas_by_default(fake_upstream: FakeOpenAIUpstream) -> None:
    settings = settings_for(fake_upstream.url, upstream_extra='api = "messages"')
    async with running(settings) as proxy:
        await ask(proxy.url)
        record = await proxy.record()
    assert fake_upstream.requests[0].headers["anthropic-beta"] == BETAS
    assert not any("anthropic-beta" in note for note in record.note_texts)


async def test_only_listed_betas_and_the_record_says_which_went(
    fake_upstream: FakeOpenAIUpstream,
) -> None:
    extra = 'api = "messages"\nanthropic_betas = ["claude-code-20250219"]'
    async with running(settings_for(fake_upstream.url, upstream_extra=extra)) as proxy:
        await ask(proxy.url)
        record = await proxy.record()
    assert fake_upstream.requests[0].headers["anthropic-beta"] == "claude-code-20250219"
    assert (
        "dropped for fake: anthropic-beta interleaved-thinking-2025-05-14,"
        " made-up-2099-01-01 (not in its anthropic_betas)"
    ) in record.note_texts


@pytest.mark.parametrize(
    ("kind", "kept"),
    [
        ("azure-foundry", "interleaved-thinking-2025-05-14"),
        ("lmstudio", BETAS),
        ("openai", BETAS),
    ],
)
def test_defaults_per_kind(kind: config.UpstreamKind, kept: str) -> None:
    up = config.UpstreamSettings(
        name="u", kind=kind, base_url="http://127.0.0.1:1", resource="r"
    )
    assert make_upstream(up).betas(BETAS)[0] == kept
