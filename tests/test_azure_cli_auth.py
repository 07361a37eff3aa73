"""Tokens and sign-in through the Azure CLI, against the fake `az`."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from fakes.azure_fixtures import *  # noqa: F403 - the pytest fixtures
from fakes.azure_fixtures import FakeAz
from lmbridge.auth.azure_cli import AzureCli, find_az
from lmbridge.auth.tokens import REFRESH_MARGIN, AccessToken
from lmbridge.core import errors

SCOPE = "https://ai.azure.com/.default"


def test_az_is_found_on_path(fake_az: FakeAz) -> None:
    found = find_az()
    assert found is not None and Path(found).parent.name == "fakes"


def test_a_configured_az_path_that_does_not_exist_says_so(fake_az: FakeAz) -> None:
    cli = AzureCli("/nonexistent/bin/az")
    with pytest.raises(errors.AuthenticationFailed) as info:
        cli.executable()
    assert (
        "az_path" in info.value.message and "/nonexistent/bin/az" in info.value.message
    )


async def test_token_comes_from_az_with_scope_and_tenant(fake_az: FakeAz) -> None:
    cli = AzureCli()
    token = await cli.tokens(SCOPE, "contoso.onmicrosoft.com").token()
    assert token.token == "fake-az|https://ai.azure.com|1"
    assert token.tenant == "contoso.onmicrosoft.com"
    assert token.expires_on == pytest.approx(time.time() + 3600, abs=5)
    assert fake_az.calls("account", "get-access-token") == [
        [
            "account",
            "get-access-token",
            "--scope",
            SCOPE,
            "--output",
            "json",
            "--tenant",
            "contoso.onmicrosoft.com",
        ]
    ]
    assert "fake-az" not in repr(token)


async def test_tokens_are_cached_per_tenant_and_scope(fake_az: FakeAz) -> None:
    cli = AzureCli()
    first = await cli.tokens(SCOPE).token()
    assert await cli.tokens(SCOPE).token() is first
    other = await cli.tokens("https://cognitiveservices.azure.com/.default").token()
    await cli.tokens(SCOPE, "fabrikam.onmicrosoft.com").token()
    assert other.token.startswith("fake-az|https://cognitiveservices.azure.com|")
    assert fake_az.token_calls() == 3


async def test_a_token_is_refreshed_five_minutes_before_it_expires(
    fake_az: FakeAz,
) -> None:
    fake_az.update(lifetimes=[REFRESH_MARGIN - 1, REFRESH_MARGIN + 60])
    tokens = AzureCli().tokens(SCOPE)
    expiring = await tokens.token()
    renewed = await tokens.token()
    assert renewed is not expiring
    assert await tokens.token() is renewed
    assert fake_az.token_calls() == 2


async def test_many_waiters_share_one_refresh(fake_az: FakeAz) -> None:
    fake_az.update(delay=0.3)
    tokens = AzureCli().tokens(SCOPE)
    got = await asyncio.gather(*(tokens.token() for _ in range(10)))
    assert len({t.token for t in got}) == 1
    assert fake_az.token_calls() == 1


async def test_refresh_after_a_rejection_happens_once(fake_az: FakeAz) -> None:
    fake_az.update(delay=0.2)
    tokens = AzureCli().tokens(SCOPE)
    rejected = await tokens.token()
    renewed = await asyncio.gather(*(tokens.refresh(rejected) for _ in range(5)))
    assert len({t.token for t in renewed}) == 1
    assert renewed[0].token != rejected.token
    assert fake_az.token_calls() == 2


async def test_a_cancelled_waiter_does_not_cancel_the_shared_refresh(
    fake_az: FakeAz,
) -> None:
    fake_az.update(delay=0.3)
    tokens = AzureCli().tokens(SCOPE)
    impatient = asyncio.create_task(tokens.token())
    patient = asyncio.create_task(tokens.token())
    await asyncio.sleep(0.1)
    impatient.cancel()
    token = await patient
    assert token.token.startswith("fake-az|")
    assert fake_az.token_calls() == 1


async def test_not_signed_in_says_how_to_sign_in(fake_az: FakeAz) -> None:
    fake_az.update(logged_in=False)
    with pytest.raises(errors.AuthenticationFailed) as info:
        await AzureCli().tokens(SCOPE).token()
    message = info.value.message
    assert "Please run 'az login' to setup account." in message
    assert "az login" in message and "tray" in message


async def test_concurrent_requests_while_signed_out_run_az_once(
    fake_az: FakeAz,
) -> None:
    fake_az.update(logged_in=False, delay=0.3)
    tokens = AzureCli().tokens(SCOPE)
    results = await asyncio.gather(
        *(tokens.token() for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, errors.AuthenticationFailed) for r in results)
    assert fake_az.token_calls() == 1


async def test_other_az_failures_keep_az_s_reason(fake_az: FakeAz) -> None:
    fake_az.update(fail="ERROR: The command failed with an unexpected error.")
    with pytest.raises(errors.AuthenticationFailed) as info:
        await AzureCli().tokens(SCOPE).token()
    assert "unexpected error" in info.value.message


async def test_an_older_cli_without_expires_on_uses_expiresOn(
    fake_az: FakeAz,
) -> None:
    fake_az.update(old_cli=True, lifetimes=[1800])
    token = await AzureCli().tokens(SCOPE).token()
    assert token.expires_on == pytest.approx(time.time() + 1800, abs=5)


async def test_device_code_login_reports_the_code_and_the_account(
    fake_az: FakeAz,
) -> None:
    fake_az.update(logged_in=False)
    messages: list[str] = []
    info = await AzureCli().login(device_code=True, on_message=messages.append)
    assert any("FAKE-CODE1" in m and "devicelogin" in m for m in messages)
    assert info.account == "dev@contoso.example"
    assert info.subscription == "Contoso Dev"
    assert info.tenant == fake_az.state()["tenant"]
    assert fake_az.calls("login") == [
        ["login", "--output", "json", "--use-device-code"]
    ]
    assert fake_az.state()["logged_in"]


async def test_login_forgets_cached_tokens(fake_az: FakeAz) -> None:
    cli = AzureCli()
    before = await cli.tokens(SCOPE).token()
    await cli.login(tenant="0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d")
    assert [
        "login",
        "--output",
        "json",
        "--tenant",
        "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d",
    ] in fake_az.calls("login")
    after = await cli.tokens(SCOPE).token()
    assert after.token != before.token


async def test_failed_login_says_why(fake_az: FakeAz) -> None:
    fake_az.update(logged_in=False, login_fails="AADSTS50076: MFA is required.")
    with pytest.raises(errors.AuthenticationFailed) as info:
        await AzureCli().login()
    assert "AADSTS50076" in info.value.message


async def test_account_and_logout(fake_az: FakeAz) -> None:
    cli = AzureCli()
    account = await cli.account()
    assert account is not None and account.account == "dev@contoso.example"
    assert "Contoso Dev" in account.describe()
    await cli.logout()
    assert await cli.account() is None
    await cli.logout()  # nobody signed in: not a failure


def test_access_token_repr_hides_the_token() -> None:
    token = AccessToken("secret-token-value", time.time() + 60)
    assert "secret-token-value" not in repr(token)
    assert "secret-token-value" not in str(token)
