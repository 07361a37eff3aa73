"""`lmbridge azure ...` and `lmbridge keys ...` as a user runs them."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from fakes.azure_fixtures import *  # noqa: F403 - the pytest fixtures
from fakes.azure_fixtures import FakeAz
from fakes.memory_keyring import MemoryKeyring
from lmbridge import cli

CONFIG = """
[[upstream]]
name = "foundry"
kind = "azure-foundry"
resource = "contoso"
project = "p1"

[[upstream]]
name = "claude"
kind = "azure-foundry"
resource = "contoso"
api = "messages"
auth = "api-key"
"""


def lmbridge(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lmbridge", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    return path


def test_login_with_a_device_code_shows_the_code_then_the_account(
    fake_az: FakeAz,
) -> None:
    fake_az.update(logged_in=False)
    result = lmbridge("azure", "login", "--device-code")
    assert result.returncode == 0, result.stderr
    assert "FAKE-CODE1" in result.stderr and "devicelogin" in result.stderr
    assert "signed in as dev@contoso.example" in result.stdout
    assert "subscription Contoso Dev" in result.stdout
    assert fake_az.calls("login") == [
        ["login", "--output", "json", "--use-device-code"]
    ]


def test_status_and_logout_per_upstream(fake_az: FakeAz, config_file: Path) -> None:
    status = lmbridge("--config", str(config_file), "azure", "status")
    assert "upstream foundry (azure-cli): signed in as dev@contoso.example" in (
        status.stdout
    )
    assert "upstream claude (api-key):" in status.stdout
    out = lmbridge("--config", str(config_file), "azure", "logout")
    assert out.returncode == 0, out.stderr
    assert "signed out of the Azure CLI" in out.stdout
    status = lmbridge(
        "--config", str(config_file), "azure", "status", "--upstream", "foundry"
    )
    assert status.returncode == 1
    assert "not signed in — run `lmbridge azure login --upstream foundry`" in (
        status.stdout
    )


def test_status_without_an_azure_upstream_reports_the_cli_account(
    fake_az: FakeAz,
) -> None:
    result = lmbridge("azure", "status")
    assert result.returncode == 0, result.stderr
    assert "no azure-foundry upstream is configured" in result.stdout
    assert "signed in as dev@contoso.example" in result.stdout


def test_login_for_an_api_key_upstream_points_at_keys_set(
    fake_az: FakeAz, config_file: Path
) -> None:
    result = lmbridge(
        "--config", str(config_file), "azure", "login", "--upstream", "claude"
    )
    assert result.returncode == 1
    assert "lmbridge keys set claude" in result.stderr
    assert fake_az.calls() == []


def test_unknown_upstream_is_named(fake_az: FakeAz, config_file: Path) -> None:
    result = lmbridge(
        "--config", str(config_file), "azure", "status", "--upstream", "nope"
    )
    assert result.returncode == 2
    assert "'nope'" in result.stderr and "foundry, claude" in result.stderr


def test_keys_set_and_delete_use_the_keyring(
    memory_keyring: MemoryKeyring,
    config_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("sk-foundry-secret\n"))
    assert cli.main(["--config", str(config_file), "keys", "set", "claude"]) == 0
    assert memory_keyring.passwords[("lmbridge", "claude")] == "sk-foundry-secret"
    assert cli.main(["--config", str(config_file), "keys", "delete", "claude"]) == 0
    assert memory_keyring.passwords == {}
    assert cli.main(["--config", str(config_file), "keys", "delete", "claude"]) == 1
    out = capsys.readouterr()
    assert "sk-foundry-secret" not in out.out + out.err
    assert "is in the keyring" in out.out and "no key stored" in out.err


def test_keys_set_without_a_keyring_says_so_and_writes_nothing(
    no_keyring: None,
    config_file: Path,
    lmbridge_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("sk-foundry-secret\n"))
    assert cli.main(["--config", str(config_file), "keys", "set", "claude"]) == 1
    err = capsys.readouterr().err
    assert "NOT saved" in err and "no keyring" in err and "never writes keys" in err
    for path in [*lmbridge_home.rglob("*"), *config_file.parent.rglob("*")]:
        if path.is_file():
            assert b"sk-foundry-secret" not in path.read_bytes()
