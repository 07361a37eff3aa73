"""Azure's error answers, through the proxy, as each client sees them."""

from __future__ import annotations

from pathlib import Path

import anthropic
import openai
import pytest

from fakes.azure_fixtures import *  # noqa: F403 - the pytest fixtures
from fakes.azure_fixtures import FakeAz, foundry_settings
from fakes.foundry import FakeFoundry
from fakes.memory_keyring import MemoryKeyring
from lmbridge.auth.secrets import SECRETS
from lmbridge.upstreams.azure_errors import retry_hint
from support import RunningProxy, oai, running

MESSAGES: list[dict[str, str]] = [{"role": "user", "content": "Hi"}]


def claude(proxy: RunningProxy) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=proxy.url, api_key="x", max_retries=0)


async def ask_claude(proxy: RunningProxy) -> anthropic.types.Message:
    async with claude(proxy) as c:
        return await c.messages.create(
            model="claude-house",
            max_tokens=50,
            messages=[{"role": "user", "content": "Hi"}],
        )


def _files_holding(root: Path, secret: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and secret in p.read_bytes()]


# ------------------------------------------------------------------ 429


@pytest.mark.parametrize(
    ("fault", "retry_after"), [("429", "7"), ("429-ms", "2"), ("429-text", "12")]
)
@pytest.mark.parametrize("client", ["anthropic", "openai"])
async def test_rate_limits_are_429_with_retry_after(
    fake_az: FakeAz,
    fake_foundry: FakeFoundry,
    fault: str,
    retry_after: str,
    client: str,
) -> None:
    fake_foundry.faults = [fault]
    async with running(foundry_settings(fake_foundry)) as proxy:
        if client == "anthropic":
            with pytest.raises(anthropic.RateLimitError) as a_info:
                await ask_claude(proxy)
            error: anthropic.APIStatusError | openai.APIStatusError = a_info.value
        else:
            async with oai(proxy) as c:
                with pytest.raises(openai.RateLimitError) as o_info:
                    await c.chat.completions.create(
                        model="claude-sonnet-4-5",
                        messages=MESSAGES,  # type: ignore[arg-type]
                    )
            error = o_info.value
    assert error.status_code == 429
    assert error.response.headers["retry-after"] == retry_after
    assert "claude-deploy" in str(error) and "retry after" in str(error)


def test_retry_hints_in_text() -> None:
    assert retry_hint("Please retry after 6 seconds.") == 6
    assert retry_hint("Rate limit reached. Try again in 20 seconds") == 20
    assert retry_hint("retry after 1.5 s") == 1.5
    assert retry_hint("slow down") is None


# ------------------------------------------------------------------ 401 / 403


async def test_missing_role_is_a_permission_error_naming_the_role(
    fake_az: FakeAz, fake_foundry: FakeFoundry
) -> None:
    fake_foundry.faults = ["401-role"]
    async with running(foundry_settings(fake_foundry)) as proxy:
        with pytest.raises(anthropic.PermissionDeniedError) as info:
            await ask_claude(proxy)
    message = str(info.value)
    assert "Azure AI User" in message and "lacks the required data action" in message
    assert info.value.body["error"]["type"] == "permission_error"  # type: ignore[index]
    assert len(fake_foundry.attempts) == 1  # a new token would not help
    assert fake_az.token_calls() == 1


async def test_a_token_for_the_wrong_audience_names_the_scope(
    fake_az: FakeAz, fake_foundry: FakeFoundry
) -> None:
    settings = foundry_settings(
        fake_foundry,
        api="chat",
        upstream_extra='scope = "https://ai.azure.com/.default"',
    )
    async with running(settings) as proxy, oai(proxy) as c:
        with pytest.raises(openai.AuthenticationError) as info:
            await c.chat.completions.create(model="gpt-5", messages=MESSAGES)  # type: ignore[arg-type]
    message = str(info.value)
    assert "audience" in message
    assert "https://cognitiveservices.azure.com/.default" in message


async def test_api_key_goes_in_the_route_s_header_and_az_is_not_used(
    fake_az: FakeAz, fake_foundry: FakeFoundry, memory_keyring: MemoryKeyring
) -> None:
    fake_foundry.api_key = "foundry-key-1"
    memory_keyring.set_password("lmbridge", "foundry", "foundry-key-1")
    settings = foundry_settings(fake_foundry, auth="api-key")
    async with running(settings) as proxy:
        await ask_claude(proxy)
    responses = foundry_settings(fake_foundry, auth="api-key", api="responses")
    async with running(responses) as proxy, oai(proxy) as c:
        await c.chat.completions.create(model="gpt-5", messages=MESSAGES)  # type: ignore[arg-type]
    claude_headers, responses_headers = (a.headers for a in fake_foundry.attempts)
    assert claude_headers["x-api-key"] == "foundry-key-1"
    assert "Authorization" not in claude_headers
    assert responses_headers["api-key"] == "foundry-key-1"
    assert fake_az.token_calls() == 0


async def test_a_bad_key_is_an_authentication_error_about_the_key(
    fake_foundry: FakeFoundry, memory_keyring: MemoryKeyring
) -> None:
    fake_foundry.api_key = "right"
    memory_keyring.set_password("lmbridge", "foundry", "wrong")
    settings = foundry_settings(fake_foundry, auth="api-key")
    async with running(settings) as proxy:
        with pytest.raises(anthropic.AuthenticationError) as info:
            await ask_claude(proxy)
        assert len(fake_foundry.attempts) == 1  # the keyring holds the same key
        # A new key in the keyring is picked up on the next 401.
        memory_keyring.set_password("lmbridge", "foundry", "right")
        reply = await ask_claude(proxy)
    message = str(info.value)
    assert "API key" in message and "lmbridge keys set foundry" in message
    assert "invalid subscription key" in message
    assert reply.content
    assert [a.headers["x-api-key"] for a in fake_foundry.attempts] == [
        "wrong",
        "wrong",
        "right",
    ]


async def test_without_a_keyring_an_api_key_upstream_says_so_and_keeps_a_session_key(
    fake_foundry: FakeFoundry, no_keyring: None, lmbridge_home: Path
) -> None:
    fake_foundry.api_key = "session-key-123"
    settings = foundry_settings(fake_foundry, auth="api-key")
    async with running(settings) as proxy:
        with pytest.raises(anthropic.AuthenticationError) as info:
            await ask_claude(proxy)
        assert fake_foundry.attempts == []
        stored = await SECRETS.set("foundry", "session-key-123")
        assert stored.where == "session" and "no keyring" in stored.reason
        reply = await ask_claude(proxy)
    message = str(info.value)
    assert "no API key" in message and "no keyring" in message
    assert reply.content
    assert not _files_holding(lmbridge_home, b"session-key-123")


# ------------------------------------------------------------------ 404


async def test_unknown_deployment_is_404_naming_it(
    fake_az: FakeAz, fake_foundry: FakeFoundry
) -> None:
    fake_foundry.deployments = {"some-other-deployment"}
    async with running(foundry_settings(fake_foundry)) as proxy:
        with pytest.raises(anthropic.NotFoundError) as a_info:
            await ask_claude(proxy)
        async with oai(proxy) as c:
            with pytest.raises(openai.NotFoundError) as o_info:
                await c.chat.completions.create(
                    model="claude-sonnet-4-5",
                    messages=MESSAGES,  # type: ignore[arg-type]
                )
    for message in (str(a_info.value), str(o_info.value)):
        assert "'claude-deploy'" in message and "deploy" in message
        assert "does not exist" in message


# ------------------------------------------------------------------ content filter


async def test_content_filter_is_an_anthropic_refusal_on_pass_through(
    fake_az: FakeAz, fake_foundry: FakeFoundry
) -> None:
    fake_foundry.faults = ["content-filter", "content-filter"]
    async with running(foundry_settings(fake_foundry)) as proxy:
        reply = await ask_claude(proxy)
        async with (
            claude(proxy) as c,
            c.messages.stream(
                model="claude-house",
                max_tokens=50,
                messages=[{"role": "user", "content": "Hi"}],
            ) as stream,
        ):
            streamed = await stream.get_final_message()
        record = await proxy.record(2)
    for message in (reply, streamed):
        assert message.stop_reason == "refusal"
        text = "".join(b.text for b in message.content if b.type == "text")
        assert "content filter" in text and "violence: medium" in text
    assert record.status == 200


async def test_content_filter_is_finish_reason_content_filter_for_chat(
    fake_az: FakeAz, fake_foundry: FakeFoundry
) -> None:
    fake_foundry.faults = ["content-filter", "content-filter"]
    translated = foundry_settings(fake_foundry)
    passthrough = foundry_settings(fake_foundry, api="chat")
    for settings in (translated, passthrough):
        async with running(settings) as proxy, oai(proxy) as c:
            reply = await c.chat.completions.create(
                model="claude-sonnet-4-5" if settings is translated else "gpt-5",
                messages=MESSAGES,  # type: ignore[arg-type]
            )
        assert reply.choices[0].finish_reason == "content_filter"
        assert "content filter" in (reply.choices[0].message.content or "")
    assert not fake_foundry.faults
