"""Pytest fixtures for the Azure tests: fake az, fake Foundry, keyrings.

Import them into a test module with `from fakes.azure_fixtures import *`.

- `fake_az`: the fake `az` (tests/fakes/az) first on PATH, signed in; a
  `FakeAz` to change its state and read the calls it logged.
- `fake_foundry`: a started `FakeFoundry`.
- `memory_keyring`: an in-memory keyring backend, active for the test.
- `no_keyring`: keyring's `fail` backend, as on a headless Linux.

`foundry_settings()` builds Settings with one azure-foundry upstream aimed
at a fake Foundry (through `base_url`).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keyring
import keyring.backends.fail
import pytest

from fakes.foundry import FakeFoundry
from fakes.memory_keyring import MemoryKeyring
from lmbridge import config
from lmbridge.auth.secrets import SECRETS

FAKES = Path(__file__).parent

__all__ = [
    "FakeAz",
    "fake_az",
    "fake_foundry",
    "foundry_settings",
    "memory_keyring",
    "no_keyring",
]

DEFAULT_STATE: dict[str, Any] = {
    "logged_in": True,
    "user": "dev@contoso.example",
    "tenant": "72f988bf-0000-4000-8000-00000000c0de",
    "subscription": "Contoso Dev",
    "subscription_id": "0b1f6471-0000-4000-8000-0000000005ab",
    # Seconds each issued token lives; the last one repeats.
    "lifetimes": [3600],
    "serial": 0,
    "delay": 0.0,
    "old_cli": False,
    "fail": None,
    "login_fails": None,
}


@dataclass
class FakeAz:
    """Control and observe the fake az."""

    state_path: Path
    log_path: Path

    def state(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.state_path.read_text())
        return data

    def update(self, **changes: Any) -> None:
        self.state_path.write_text(json.dumps({**self.state(), **changes}))

    def calls(self, *prefix: str) -> list[list[str]]:
        """Logged argv lists that start with `prefix`."""
        if not self.log_path.exists():
            return []
        lines = self.log_path.read_text().splitlines()
        argvs = [json.loads(line)["argv"] for line in lines if line]
        return [a for a in argvs if a[: len(prefix)] == list(prefix)]

    def token_calls(self) -> int:
        return len(self.calls("account", "get-access-token"))


@pytest.fixture
def fake_az(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeAz:
    az = FakeAz(tmp_path / "fake-az-state.json", tmp_path / "fake-az-calls.log")
    az.state_path.write_text(json.dumps(DEFAULT_STATE))
    monkeypatch.setenv("FAKE_AZ_STATE", str(az.state_path))
    monkeypatch.setenv("FAKE_AZ_LOG", str(az.log_path))
    monkeypatch.setenv("PATH", f"{FAKES}{os.pathsep}{os.environ.get('PATH', '')}")
    return az


@pytest.fixture
async def fake_foundry() -> AsyncIterator[FakeFoundry]:
    fake = FakeFoundry()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    SECRETS.forget_session()
    yield backend
    keyring.set_keyring(previous)
    SECRETS.forget_session()


@pytest.fixture
def no_keyring() -> Iterator[None]:
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    SECRETS.forget_session()
    yield
    keyring.set_keyring(previous)
    SECRETS.forget_session()


def foundry_settings(
    foundry: FakeFoundry,
    *,
    api: str = "messages",
    auth: str = "azure-cli",
    upstream_extra: str = "",
    routes: str = "",
    project: bool = True,
) -> config.Settings:
    """One azure-foundry upstream "foundry" aimed at `foundry` (with its
    project when `api` is "responses" and `project`); claude-* is routed to
    the deployment "claude-deploy", gpt-5 to "gpt-5-deploy"."""
    with_project = api == "responses" and project
    project_line = f'project = "{foundry.project}"' if with_project else ""
    text = f"""
[server]
port = 0

[[upstream]]
name = "foundry"
kind = "azure-foundry"
base_url = "{foundry.url}"
api = "{api}"
auth = "{auth}"
{project_line}
{upstream_extra}

{routes}

[[route]]
model = "claude-*"
upstream = "foundry"
target = "claude-deploy"

[[route]]
model = "gpt-5"
upstream = "foundry"
target = "gpt-5-deploy"
"""
    return config.parse(text)
