"""Tokens off loopback, slowed 401s, and the Windows `az` command line
(issue 25, item 10)."""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import pytest

from fakes.azure_fixtures import FakeAz, fake_az  # noqa: F401
from fakes.openai_upstream import FakeOpenAIUpstream
from lmbridge import config
from lmbridge.auth.azure_cli import AzureCli, az_command, check_scope, check_tenant
from lmbridge.core import errors
from lmbridge.server.runner import ProxyServer
from support import running, settings_for

TOKEN = "slow-401-token-0123456789"


@pytest.mark.parametrize(
    "tenant",
    [
        "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "contoso.onmicrosoft.com",
        "login.contoso.example",
    ],
)
def test_tenants_of_the_known_shapes_pass(tenant: str) -> None:
    assert check_tenant(tenant) == tenant


@pytest.mark.parametrize(
    "tenant",
    [
        "contoso & calc",
        'x" && echo pwned',
        "a|b.com",
        "%PATH%.com",
        "contoso",
        "72f988bf-86f1-41af-91ab-2d7cd011db47 & calc",
        "--allow-no-subscriptions",
        "t.com\n",
    ],
)
def test_other_tenants_are_refused(tenant: str) -> None:
    with pytest.raises(errors.AuthenticationFailed, match="tenant"):
        check_tenant(tenant)


def test_scopes_of_the_known_shapes_pass_and_others_are_refused() -> None:
    for scope in (
        "https://ai.azure.com/.default",
        "https://cognitiveservices.azure.com/.default",
        "api://0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d/.default",
        "https://ml.azure.com:443/sub/path/.default",
    ):
        assert check_scope(scope) == scope
    for scope in (
        "https://ai.azure.com/.default & calc",
        'https://ai.azure.com/.default"',
        "http://ai.azure.com/.default",
        "https://ai.azure.com/",
    ):
        with pytest.raises(errors.AuthenticationFailed, match="scope"):
            check_scope(scope)


def test_az_cmd_runs_without_cmd_exe_when_its_python_is_there(tmp_path: Path) -> None:
    wbin = tmp_path / "CLI2" / "wbin"
    wbin.mkdir(parents=True)
    az = wbin / "az.cmd"
    az.write_text("@echo off\n")
    args = ["account", "show", "--output", "json"]
    # Without the CLI's python.exe: cmd.exe, with arguments checked.
    assert az_command(str(az), args) == ["cmd.exe", "/c", str(az), *args]
    with pytest.raises(errors.AuthenticationFailed, match=r"cmd\.exe"):
        az_command(str(az), ["login", "--tenant", "a&b"])
    python = tmp_path / "CLI2" / "python.exe"
    python.write_text("")
    assert az_command(str(az), args) == [str(python), "-IBm", "azure.cli", *args]
    assert az_command("/usr/bin/az", args) == ["/usr/bin/az", *args]


async def test_a_bad_tenant_never_reaches_az(fake_az: FakeAz) -> None:  # noqa: F811
    cli = AzureCli()
    with pytest.raises(errors.AuthenticationFailed, match="tenant"):
        await cli.tokens(azure_cli_scope(), "x & calc.exe").token()
    with pytest.raises(errors.AuthenticationFailed, match="tenant"):
        await cli.login(tenant="x|y")
    assert fake_az.calls("account", "get-access-token") == []
    assert fake_az.calls("login") == []


def azure_cli_scope() -> str:
    return "https://ai.azure.com/.default"


async def test_a_weak_token_off_loopback_does_not_start(
    fake_upstream: FakeOpenAIUpstream,
) -> None:
    settings = settings_for(fake_upstream.url)
    settings.server.host = "0.0.0.0"
    settings.server.access_token = "short"
    with pytest.raises(config.ConfigError, match="at least 16"):
        await ProxyServer(settings).start()


async def test_repeated_401s_are_slowed_and_the_right_token_is_not(
    fake_upstream: FakeOpenAIUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLOW_TOKEN", TOKEN)
    settings = settings_for(fake_upstream.url)
    settings.server.access_token_env = "SLOW_TOKEN"
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    waits = []
    async with running(settings) as proxy, aiohttp.ClientSession() as s:
        for _ in range(8):
            started = time.monotonic()
            async with s.post(
                proxy.url + "/v1/chat/completions",
                json=body,
                headers={"Authorization": "Bearer guess"},
            ) as r:
                assert r.status == 401
            waits.append(time.monotonic() - started)
        started = time.monotonic()
        async with s.post(
            proxy.url + "/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as r:
            assert r.status == 200
        right = time.monotonic() - started
    # The first five are answered at once; then 0.25 s, 0.5 s, 1 s.
    assert max(waits[:5]) < 0.2
    assert waits[5] >= 0.25 and waits[6] >= 0.5 and waits[7] >= 1.0
    assert right < waits[7]
