"""Browser sign-in state and keyring detection (the parts that need no
network or desktop)."""

from __future__ import annotations

from pathlib import Path

import anthropic
import keyring
import pytest
from azure.identity import AuthenticationRecord
from keyring.backend import KeyringBackend
from keyring.compat import properties

from fakes.azure_fixtures import *  # noqa: F403 - the pytest fixtures
from fakes.azure_fixtures import foundry_settings
from fakes.foundry import FakeFoundry
from fakes.memory_keyring import MemoryKeyring
from lmbridge import config
from lmbridge.auth.browser import BrowserSignIn
from lmbridge.auth.secrets import SECRETS, keyring_status
from support import running


def _record() -> AuthenticationRecord:
    return AuthenticationRecord(
        tenant_id="72f988bf-0000-4000-8000-00000000c0de",
        client_id="04b07795-8ddb-461a-bbee-02f9e1bf7b46",
        authority="login.microsoftonline.com",
        home_account_id="uid.utid",
        username="dev@contoso.example",
    )


async def test_browser_upstream_without_sign_in_is_401_without_azure(
    fake_foundry: FakeFoundry,
) -> None:
    settings = foundry_settings(fake_foundry, auth="browser")
    async with (
        running(settings) as proxy,
        anthropic.AsyncAnthropic(base_url=proxy.url, api_key="x", max_retries=0) as c,
    ):
        with pytest.raises(anthropic.AuthenticationError) as info:
            await c.messages.create(
                model="claude-house",
                max_tokens=5,
                messages=[{"role": "user", "content": "Hi"}],
            )
    assert "not signed in to Azure in a browser" in str(info.value)
    assert "lmbridge azure login" in str(info.value)
    assert fake_foundry.attempts == []


async def test_browser_sign_in_record_is_kept_in_the_data_dir(
    lmbridge_home: Path,
) -> None:
    state = config.data_dir() / "azure"
    sign_in = BrowserSignIn("foundry", "https://ai.azure.com/.default", "", state)
    assert sign_in.account() is None
    sign_in.record_path.parent.mkdir(parents=True)
    sign_in.record_path.write_text(_record().serialize())
    account = sign_in.account()
    assert account is not None
    assert account.account == "dev@contoso.example"
    assert sign_in.record_path.is_relative_to(lmbridge_home)
    await sign_in.sign_out()
    assert sign_in.account() is None and not sign_in.record_path.exists()


class _LowPriority(KeyringBackend):
    """A backend keyring itself does not recommend (priority below 1)."""

    @properties.classproperty
    def priority(cls) -> float:
        return 0.5

    def get_password(self, service: str, username: str) -> str | None:
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        raise AssertionError("must not be written")

    def delete_password(self, service: str, username: str) -> None:
        return None


def test_keyring_detection(no_keyring: None) -> None:
    status = keyring_status()
    assert not status.secure and "no keyring" in status.reason
    assert status.backend == "keyring.backends.fail.Keyring"
    keyring.set_keyring(_LowPriority())
    status = keyring_status()
    assert not status.secure and "not a recommended, secure store" in status.reason
    keyring.set_keyring(MemoryKeyring())
    assert keyring_status().secure


async def test_an_insecure_keyring_is_never_written(no_keyring: None) -> None:
    keyring.set_keyring(_LowPriority())
    stored = await SECRETS.set("foundry", "k-123")
    assert stored.where == "session"
    assert await SECRETS.get("foundry") == "k-123"
    assert await SECRETS.delete("foundry")
    assert await SECRETS.get("foundry") is None


async def test_keys_go_to_a_secure_keyring(memory_keyring: MemoryKeyring) -> None:
    stored = await SECRETS.set("foundry", "k-456")
    assert stored.where == "keyring"
    assert memory_keyring.passwords == {("lmbridge", "foundry"): "k-456"}
    assert await SECRETS.get("foundry") == "k-456"
    assert await SECRETS.delete("foundry")
    assert not await SECRETS.delete("foundry")
