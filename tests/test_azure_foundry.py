"""Azure AI Foundry through the proxy: real SDK clients, the fake Foundry
and the fake az. Routes, tokens and the original OpenAI-compatible route."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import anthropic
import openai
import pytest
from openai.types.chat import (
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageParam,
)

from fakes.azure_fixtures import *  # noqa: F403 - the pytest fixtures
from fakes.azure_fixtures import FakeAz, foundry_settings
from fakes.foundry import API_VERSION, FOUNDRY_AUDIENCE, OPENAI_AUDIENCE, FakeFoundry
from fakes.openai_upstream import Script, ToolCallScript
from lmbridge import config
from lmbridge.upstreams.azure import AzureFoundryUpstream, azure_route
from support import RunningProxy, oai, running

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Hi"}]
WEATHER_TOOL: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def claude(proxy: RunningProxy) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=proxy.url, api_key="x", max_retries=0)


# ------------------------------------------------------------------ URLs


def _settings(extra: str) -> config.UpstreamSettings:
    text = f'[[upstream]]\nname = "f"\nkind = "azure-foundry"\n{extra}\n'
    return config.parse(text).upstream[0]


@pytest.mark.parametrize(
    ("extra", "url", "scope"),
    [
        (
            'resource = "contoso"\nproject = "p1"',
            "https://contoso.services.ai.azure.com/api/projects/p1/openai/responses"
            f"?api-version={API_VERSION}",
            "https://ai.azure.com/.default",
        ),
        (
            'resource = "contoso"\nproject = "p1"\napi_version = "2025-05-01"',
            "https://contoso.services.ai.azure.com/api/projects/p1/openai/responses"
            "?api-version=2025-05-01",
            "https://ai.azure.com/.default",
        ),
        (
            'resource = "contoso"\napi = "messages"',
            "https://contoso.services.ai.azure.com/anthropic/v1/messages",
            "https://ai.azure.com/.default",
        ),
        (
            'resource = "contoso"\napi = "chat"',
            "https://contoso.openai.azure.com/openai/v1/chat/completions",
            "https://cognitiveservices.azure.com/.default",
        ),
        (
            'resource = "contoso"\napi = "responses"',
            "https://contoso.openai.azure.com/openai/v1/responses",
            "https://cognitiveservices.azure.com/.default",
        ),
        (
            'base_url = "https://contoso.services.ai.azure.us/"\napi = "messages"\n'
            'scope = "https://ai.azure.us/.default"',
            "https://contoso.services.ai.azure.us/anthropic/v1/messages",
            "https://ai.azure.us/.default",
        ),
    ],
)
def test_default_urls_and_scopes(extra: str, url: str, scope: str) -> None:
    upstream = AzureFoundryUpstream(_settings(extra))
    assert upstream.url(upstream.codec.wire.path) == url
    assert upstream.scope == scope == azure_route(upstream.settings).scope


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ("", "needs resource"),
        ('resource = "https://contoso.services.ai.azure.com"', "resource's name"),
        ('resource = "contoso"\nscope = "ai.azure.com"', "https:// scope"),
        ('resource = "contoso"\nauth = "password"', "auth"),
        ('resource = "contoso"\ntenent = "x"', "tenent"),
    ],
)
def test_bad_azure_settings_are_named(extra: str, needle: str) -> None:
    with pytest.raises(config.ConfigError) as info:
        _settings(extra)
    assert needle in str(info.value)


# ------------------------------------------------------------------ routes


async def test_claude_on_foundry_for_an_anthropic_client(
    fake_az: FakeAz, fake_foundry: FakeFoundry
) -> None:
    async with running(foundry_settings(fake_foundry)) as proxy, claude(proxy) as c:
        reply = await c.messages.create(
            model="claude-house",
            max_tokens=100,
            messages=[{"role": "user", "content": "Hi"}],
        )
    assert reply.content[0].type == "text"
    assert reply.content[0].text == "Hello from the fake upstream."
    seen = fake_foundry.attempts[-1]
    assert seen.path == "/anthropic/v1/messages"
    assert seen.body["model"] == "claude-deploy"
    assert seen.audience == FOUNDRY_AUDIENCE
    assert seen.headers["anthropic-version"]  # the SDK's own, forwarded
    record = await proxy.record()
    assert (record.upstream, record.target, record.status) == (
        "foundry",
        "claude-deploy",
        200,
    )


async def test_anthropic_version_is_forwarded_from_the_client(
    fake_az: FakeAz, fake_foundry: FakeFoundry
) -> None:
    async with (
        running(foundry_settings(fake_foundry)) as proxy,
        aiohttp.ClientSession() as s,
        s.post(
            proxy.url + "/v1/messages",
            json={"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": MESSAGES},
            headers={"anthropic-version": "2023-01-01"},
        ) as r,
    ):
        assert r.status == 200
    assert fake_foundry.attempts[-1].headers["anthropic-version"] == "2023-01-01"


async def test_openai_chat_client_gets_claude_on_foundry_with_streamed_tool_calls(
    fake_az: FakeAz, fake_foundry: FakeFoundry
) -> None:
    fake_foundry.script = Script(
        text="Let me look.",
        tool_calls=[ToolCallScript("get_weather", '{"city": "Oslo"}', "toolu_1")],
    )
    names: list[str] = []
    arguments = ""
    finish = None
    async with running(foundry_settings(fake_foundry)) as proxy, oai(proxy) as c:
        stream = await c.chat.completions.create(
            model="claude-sonnet-4-5",
            messages=MESSAGES,
            tools=[WEATHER_TOOL],
            stream=True,
        )
        async for chunk in stream:
            if not chunk.choices:
                continue
            choice = chunk.choices[0]
            for call in choice.delta.tool_calls or []:
                if call.function and call.function.name:
                    names.append(call.function.name)
                if call.function and call.function.arguments:
                    arguments += call.function.arguments
            finish = choice.finish_reason or finish
    assert names == ["get_weather"]
    assert json.loads(arguments) == {"city": "Oslo"}
    assert finish == "tool_calls"
    seen = fake_foundry.attempts[-1]
    assert seen.path == "/anthropic/v1/messages"
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert seen.body["tools"][0]["name"] == "get_weather"


async def test_project_responses_route_with_api_version(
    fake_az: FakeAz, fake_foundry: FakeFoundry
) -> None:
    settings = foundry_settings(fake_foundry, api="responses")
    async with running(settings) as proxy, oai(proxy) as c:
        reply = await c.chat.completions.create(model="gpt-5", messages=MESSAGES)
    assert reply.choices[0].message.content == "Hello from the fake upstream."
    seen = fake_foundry.attempts[-1]
    assert seen.path == "/api/projects/proj/openai/responses"
    assert seen.query == {"api-version": API_VERSION}
    assert seen.audience == FOUNDRY_AUDIENCE
    assert seen.body["model"] == "gpt-5-deploy"
    assert fake_az.calls("account", "get-access-token")[0][2:4] == [
        "--scope",
        "https://ai.azure.com/.default",
    ]


async def test_azure_openai_v1_chat_route_passes_through(
    fake_az: FakeAz, fake_foundry: FakeFoundry
) -> None:
    settings = foundry_settings(fake_foundry, api="chat")
    async with running(settings) as proxy, oai(proxy) as c:
        reply = await c.chat.completions.create(model="gpt-5", messages=MESSAGES)
    assert reply.choices[0].message.content == "Hello from the fake upstream."
    seen = fake_foundry.attempts[-1]
    assert seen.path == "/openai/v1/chat/completions"
    assert seen.audience == OPENAI_AUDIENCE
    assert seen.body["model"] == "gpt-5-deploy"


async def test_azure_openai_v1_responses_route(
    fake_az: FakeAz, fake_foundry: FakeFoundry
) -> None:
    settings = foundry_settings(fake_foundry, api="responses", project=False)
    async with running(settings) as proxy, claude(proxy) as c:
        reply = await c.messages.create(
            model="gpt-5", max_tokens=50, messages=[{"role": "user", "content": "Hi"}]
        )
    assert reply.content[0].type == "text"
    seen = fake_foundry.attempts[-1]
    assert seen.path == "/openai/v1/responses"
    assert seen.audience == OPENAI_AUDIENCE


# ------------------------------------------------------------------ tokens


async def test_not_signed_in_is_401_with_the_way_to_sign_in_and_no_upstream_call(
    fake_az: FakeAz, fake_foundry: FakeFoundry
) -> None:
    fake_az.update(logged_in=False)
    async with running(foundry_settings(fake_foundry)) as proxy:
        async with claude(proxy) as c:
            with pytest.raises(anthropic.AuthenticationError) as a_info:
                await c.messages.create(
                    model="claude-house",
                    max_tokens=5,
                    messages=[{"role": "user", "content": "Hi"}],
                )
        async with oai(proxy) as o:
            with pytest.raises(openai.AuthenticationError) as o_info:
                await o.chat.completions.create(
                    model="claude-sonnet-4-5",
                    messages=MESSAGES,
                )
    for message in (str(a_info.value), str(o_info.value)):
        assert "az login" in message and "tray" in message and "foundry" in message
    assert a_info.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    assert fake_foundry.attempts == []


async def test_a_token_is_reused_across_requests(
    fake_az: FakeAz, fake_foundry: FakeFoundry
) -> None:
    async with running(foundry_settings(fake_foundry)) as proxy, oai(proxy) as c:
        for _ in range(3):
            await c.chat.completions.create(
                model="claude-sonnet-4-5",
                messages=MESSAGES,
            )
    assert fake_az.token_calls() == 1
    assert {a.token_serial for a in fake_foundry.attempts} == {1}


async def test_two_concurrent_requests_with_an_expired_token_run_az_once(
    fake_az: FakeAz, fake_foundry: FakeFoundry
) -> None:
    fake_az.update(lifetimes=[-60, 3600])
    async with running(foundry_settings(fake_foundry)) as proxy, oai(proxy) as c:
        await c.chat.completions.create(model="claude-sonnet-4-5", messages=MESSAGES)
        assert fake_az.token_calls() == 1  # the token it got has expired
        fake_az.update(delay=0.3)
        await asyncio.gather(
            *(
                c.chat.completions.create(model="claude-sonnet-4-5", messages=MESSAGES)
                for _ in range(2)
            )
        )
    assert fake_az.token_calls() == 2
    assert [a.token_serial for a in fake_foundry.attempts] == [1, 2, 2]


async def test_a_401_refreshes_the_token_once_and_retries(
    fake_az: FakeAz, fake_foundry: FakeFoundry
) -> None:
    async with running(foundry_settings(fake_foundry)) as proxy, oai(proxy) as c:
        await c.chat.completions.create(model="claude-sonnet-4-5", messages=MESSAGES)
        fake_foundry.revoke_issued()
        fake_az.update(delay=0.2)
        replies = await asyncio.gather(
            *(
                c.chat.completions.create(model="claude-sonnet-4-5", messages=MESSAGES)
                for _ in range(2)
            )
        )
    assert all(r.choices[0].message.content for r in replies)
    assert fake_az.token_calls() == 2
    assert [a.token_serial for a in fake_foundry.attempts] == [1, 1, 1, 2, 2]
    assert "azure: token refreshed after a 401" in proxy.records[-1].note_texts


async def test_a_rejected_token_after_refresh_is_an_authentication_error(
    fake_az: FakeAz, fake_foundry: FakeFoundry
) -> None:
    fake_foundry.reject_tokens = True
    async with running(foundry_settings(fake_foundry)) as proxy, claude(proxy) as c:
        with pytest.raises(anthropic.AuthenticationError) as info:
            await c.messages.create(
                model="claude-house",
                max_tokens=5,
                messages=[{"role": "user", "content": "Hi"}],
            )
    message = str(info.value)
    assert "access token" in message and "expired" in message
    assert "audience" in message and "scope https://ai.azure.com/.default" in message
    assert len(fake_foundry.attempts) == 2
    assert fake_az.token_calls() == 2


async def test_health_reports_auth_without_signing_in(
    fake_az: FakeAz, fake_foundry: FakeFoundry
) -> None:
    async with (
        running(foundry_settings(fake_foundry)) as proxy,
        aiohttp.ClientSession() as s,
        s.get(proxy.url + "/health") as r,
    ):
        body = await r.json()
    foundry = body["upstreams"][0]
    assert foundry["auth"] == "azure-cli"
    assert foundry["signed_in"] is False
    assert foundry["reachable"] is True
    assert foundry["url"] == fake_foundry.url + "/anthropic/v1/messages"
    assert fake_az.token_calls() == 0


async def test_models_lists_routed_deployments_without_calling_azure(
    fake_az: FakeAz, fake_foundry: FakeFoundry
) -> None:
    async with running(foundry_settings(fake_foundry)) as proxy, oai(proxy) as c:
        ids = [m.id async for m in c.models.list()]
    assert "gpt-5" in ids and any(i.startswith("claude-") for i in ids)
    assert fake_az.token_calls() == 0
    assert fake_foundry.attempts == []
