"""What the Integrations panel tells each tool, checked against the proxy.

The descriptions are data; the proof that they are right is a real client
configured from them: the official SDKs read the environment variables the
descriptions give, and each tool's test request goes through the running
proxy to the fake upstream and comes back in the tool's protocol.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import anthropic
import openai
import pytest

from fakes.openai_upstream import FakeOpenAIUpstream
from lmbridge import config, integrations
from lmbridge.integrations import (
    Endpoint,
    IntegrationError,
    ModelChoice,
    build_test_request,
    describe,
)
from support import RunningProxy


def settings(text: str = "") -> config.Settings:
    return config.parse(text)


def test_every_tool_is_described_with_its_protocol() -> None:
    found = {i.id: i for i in integrations.describe_all(settings())}
    assert list(found) == list(integrations.TOOL_IDS)
    assert found["claude-code"].protocol == "anthropic"
    assert found["codex"].protocol == "responses"
    assert found["anthropic-sdk"].protocol == "anthropic"
    assert found["gemini-cli"].protocol == "gemini"
    for tool in ("continue", "opencode", "cline-cli", "qwen-code", "void", "cline"):
        assert found[tool].protocol == "openai"
    assert found["openai-sdk"].protocol == "openai"
    assert found["openai-sdk"].protocols == ("openai", "responses")
    assert {i.id for i in found.values() if i.writable} == {
        "claude-code",
        "codex",
        "continue",
        "opencode",
        "cline-cli",
        "qwen-code",
        "gemini-cli",
    }
    for item in found.values():
        assert item.snippets, item.id
        assert item.steps, item.id


def test_base_urls_follow_the_server_settings() -> None:
    s = settings('[server]\nhost = "127.0.0.1"\nport = 4711\n')
    assert describe("claude-code", s).base_url == "http://127.0.0.1:4711"
    assert describe("anthropic-sdk", s).base_url == "http://127.0.0.1:4711"
    for tool in ("codex", "continue", "cline", "openai-sdk"):
        assert describe(tool, s).base_url == "http://127.0.0.1:4711/v1", tool


def test_a_wildcard_bind_address_is_reached_on_loopback() -> None:
    s = config.Settings()
    s.server.host = "0.0.0.0"
    assert Endpoint.from_settings(s).root == "http://127.0.0.1:4680"
    s.server.host = "::"
    assert Endpoint.from_settings(s).root == "http://[::1]:4680"
    s.server.host = "::1"
    assert Endpoint.from_settings(s).root == "http://[::1]:4680"


def test_claude_code_env_has_the_tier_variables_only_when_chosen() -> None:
    plain = describe("claude-code", settings())
    assert dict(plain.env) == {
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:4680",
        "ANTHROPIC_AUTH_TOKEN": "lmbridge",
        "CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY": "1",
        # The default LM Studio upstream loads models with a 32K context.
        "CLAUDE_CODE_AUTO_COMPACT_WINDOW": "32768",
    }
    tiers = describe(
        "claude-code",
        settings(),
        ModelChoice(opus="big", sonnet="mid", haiku="small", model="main"),
    )
    assert dict(tiers.env) == {
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:4680",
        "ANTHROPIC_AUTH_TOKEN": "lmbridge",
        "ANTHROPIC_MODEL": "main",
        "ANTHROPIC_DEFAULT_OPUS_MODEL": "big",
        "ANTHROPIC_DEFAULT_SONNET_MODEL": "mid",
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": "small",
        "ANTHROPIC_SMALL_FAST_MODEL": "small",
        "CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY": "1",
        "CLAUDE_CODE_AUTO_COMPACT_WINDOW": "32768",
    }
    own = describe("claude-code", settings(), ModelChoice(small_fast="tiny"))
    assert own.env["ANTHROPIC_SMALL_FAST_MODEL"] == "tiny"
    shell = next(s for s in tiers.snippets if s.language == "sh").text
    assert "export ANTHROPIC_BASE_URL=http://127.0.0.1:4680\n" in shell
    block = next(s for s in tiers.snippets if s.language == "json").text
    assert json.loads(block) == {"env": dict(tiers.env)}


def test_the_access_token_replaces_the_placeholder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MY_PROXY_TOKEN", "s3cret-token")
    s = settings('[server]\naccess_token_env = "MY_PROXY_TOKEN"\n')
    assert describe("claude-code", s).env["ANTHROPIC_AUTH_TOKEN"] == "s3cret-token"
    assert describe("openai-sdk", s).env["OPENAI_API_KEY"] == "s3cret-token"
    codex = describe("codex", s)
    assert dict(codex.env) == {"MY_PROXY_TOKEN": "s3cret-token"}
    assert 'env_key = "MY_PROXY_TOKEN"' in codex.snippets[0].text
    void = describe("void", s)
    assert void.base_url.endswith("/v1")  # OpenAI-Compatible, which sends a key


def test_void_uses_its_lm_studio_provider_without_a_token() -> None:
    void = describe("void", settings())
    assert void.base_url == "http://127.0.0.1:4680"  # Void appends /v1 itself
    assert any("LM Studio" in step for step in void.steps)


def test_tools_without_a_file_have_no_writer() -> None:
    for tool in ("void", "cline", "openai-sdk", "anthropic-sdk"):
        with pytest.raises(IntegrationError, match="own settings"):
            integrations.plan_write(tool, settings())
    with pytest.raises(IntegrationError, match="unknown tool"):
        describe("emacs", settings())


def test_a_test_request_needs_a_model_where_the_tool_has_no_default() -> None:
    with pytest.raises(IntegrationError, match="choose a model"):
        build_test_request("cline", settings())
    claude = build_test_request("claude-code", settings())
    assert claude.body["model"] == "claude-sonnet-5-5"
    tiered = build_test_request("claude-code", settings(), ModelChoice(sonnet="m"))
    assert tiered.body["model"] == "m"


@pytest.mark.parametrize("tool", integrations.TOOL_IDS)
async def test_each_tools_test_request_is_answered_in_its_protocol(
    tool: str, proxy: RunningProxy
) -> None:
    s = config.Settings()
    s.server.port = proxy.server.port
    request = build_test_request(tool, s, ModelChoice(model="fake-model"))
    protocol = describe(tool, s).protocol
    prefix = "/v1beta/" if protocol == "gemini" else "/v1/"
    assert request.url(proxy.url).startswith(proxy.url + prefix)
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            request.method,
            request.url(proxy.url),
            headers=request.headers,
            json=request.body,
        ) as response,
    ):
        body: dict[str, Any] = await response.json(content_type=None)
    if protocol == "gemini" and response.status == 404:
        pytest.skip("LM Bridge has no Gemini API front door yet (404)")
    assert response.status == 200, body
    if protocol == "anthropic":
        assert body["type"] == "message"
        assert body["content"][0]["text"] == "Hello from the fake upstream."
    elif protocol == "responses":
        assert body["object"] == "response"
        assert body["status"] == "completed"
    elif protocol == "gemini":
        assert body["candidates"][0]["content"]["parts"][0]["text"]
    else:
        assert body["object"] == "chat.completion"
        assert body["choices"][0]["message"]["content"]
    record = await proxy.record()
    assert record.client.startswith("lmbridge-test/")


async def test_the_test_request_streams_when_asked(proxy: RunningProxy) -> None:
    s = config.Settings()
    s.server.port = proxy.server.port
    request = build_test_request("claude-code", s, stream=True)
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            request.url(proxy.url), headers=request.headers, json=request.body
        ) as response,
    ):
        text = await response.text()
    assert response.status == 200
    assert "event: message_stop" in text


def _apply_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name in (
        "OPENAI_BASE_URL",
        "OPENAI_API_KEY",
        "ANTHROPIC_BASE_URL",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


async def test_the_openai_sdk_works_from_the_described_environment(
    proxy: RunningProxy,
    fake_upstream: FakeOpenAIUpstream,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = config.Settings()
    s.server.port = proxy.server.port
    _apply_env(monkeypatch, dict(describe("openai-sdk", s).env))
    async with openai.AsyncOpenAI(max_retries=0) as client:
        chat = await client.chat.completions.create(
            model="fake-model", messages=[{"role": "user", "content": "Hi"}]
        )
        reply = await client.responses.create(model="fake-model", input="Hi")
    assert chat.choices[0].message.content == "Hello from the fake upstream."
    assert reply.output_text == "Hello from the fake upstream."


async def test_the_anthropic_sdk_works_from_the_described_environment(
    proxy: RunningProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = config.Settings()
    s.server.port = proxy.server.port
    _apply_env(monkeypatch, dict(describe("anthropic-sdk", s).env))
    async with anthropic.AsyncAnthropic(max_retries=0) as client:
        message = await client.messages.create(
            model="claude-sonnet-5-5",
            max_tokens=64,
            messages=[{"role": "user", "content": "Hi"}],
        )
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hello from the fake upstream."


async def test_claude_codes_variables_work_with_the_anthropic_sdk(
    proxy: RunningProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Claude Code sends ANTHROPIC_AUTH_TOKEN as a bearer token, as the SDK does."""
    s = config.Settings()
    s.server.port = proxy.server.port
    _apply_env(monkeypatch, dict(describe("claude-code", s).env))
    async with anthropic.AsyncAnthropic(max_retries=0) as client:
        message = await client.messages.create(
            model="claude-sonnet-5-5",
            max_tokens=64,
            messages=[{"role": "user", "content": "Hi"}],
        )
    assert message.content[0].type == "text"
