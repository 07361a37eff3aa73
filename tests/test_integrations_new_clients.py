"""Merging into OpenCode's, the Cline CLI's, Qwen Code's and Gemini CLI's files.

Each starts from a file the user already has, with their own comments,
formatting and other entries: after the write everything they had is still
there byte for byte but for our values, a backup holds the old file, a
second run changes nothing, and `integrations.current` reads back what the
tool now points at. A temporary home directory stands in for the user's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lmbridge import cli, config, integrations
from lmbridge.integrations import Endpoint, IntegrationError, ModelChoice
from lmbridge.integrations.files import BACKUP_MARK

CHOICE = ModelChoice(model="qwen/qwen3-coder-30b")
ENDPOINT = Endpoint("http://127.0.0.1:4680")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in (
        "OPENCODE_CONFIG",
        "XDG_CONFIG_HOME",
        "CLINE_PROVIDER_SETTINGS_PATH",
        "CLINE_DATA_DIR",
    ):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "home"
    path.mkdir()
    return path


def write(tool: str, home: Path, choice: ModelChoice = CHOICE) -> Path:
    """Plan and write; check the backup and that a second plan is a no-op."""
    settings = config.Settings()
    plan = integrations.plan_write(tool, settings, choice, home=home)
    old = plan.old_text
    result = integrations.write(plan)
    assert result.changed
    if old is not None:
        assert result.backup is not None and result.backup.read_text() == old
        assert BACKUP_MARK in result.backup.name
    again = integrations.plan_write(tool, settings, choice, home=home)
    assert not again.changed, again.diff()
    return plan.path


def pointed(tool: str, home: Path) -> integrations.Configured:
    found = integrations.current(tool, home=home)
    assert found is not None
    assert found.points_at(ENDPOINT)
    assert found.choice.model == CHOICE.model
    return found


# -- OpenCode ------------------------------------------------------------------

OPENCODE_USER = """{
  "$schema": "https://opencode.ai/config.json",
  "theme": "tokyonight",
  "provider": {
    "ollama": {"npm": "@ai-sdk/openai-compatible", "options": {"baseURL": "http://localhost:11434/v1"}, "models": {"llama3": {}}}
  },
  "model": "ollama/llama3",
  "keybinds": {"leader": "ctrl+x"}
}
"""


def test_opencode_adds_its_provider_and_keeps_the_users(home: Path) -> None:
    path = home / ".config" / "opencode" / "opencode.json"
    path.parent.mkdir(parents=True)
    path.write_text(OPENCODE_USER)
    assert integrations.current("opencode", home=home) is None
    write("opencode", home)
    text = path.read_text()
    data = json.loads(text)
    # The user's one-line provider is kept as it was written.
    assert OPENCODE_USER.splitlines()[4] in text
    assert data["theme"] == "tokyonight"
    assert data["keybinds"] == {"leader": "ctrl+x"}
    ours = data["provider"]["lmbridge"]
    assert ours["npm"] == "@ai-sdk/openai-compatible"
    assert ours["options"] == {"baseURL": ENDPOINT.v1, "apiKey": "lmbridge"}
    assert CHOICE.model in ours["models"]
    assert data["model"] == f"lmbridge/{CHOICE.model}"
    pointed("opencode", home)


def test_opencode_new_file_has_the_schema_opencode_would_add(home: Path) -> None:
    path = write("opencode", home)
    assert json.loads(path.read_text())["$schema"] == "https://opencode.ai/config.json"


def test_opencode_keeps_the_models_the_user_added_to_our_provider(
    home: Path,
) -> None:
    write("opencode", home)
    path = home / ".config" / "opencode" / "opencode.json"
    data = json.loads(path.read_text())
    data["provider"]["lmbridge"]["models"]["other/model"] = {"name": "Other"}
    path.write_text(json.dumps(data, indent=4))
    write("opencode", home, ModelChoice(model="third/model"))
    models = json.loads(path.read_text())["provider"]["lmbridge"]["models"]
    assert set(models) == {CHOICE.model, "other/model", "third/model"}


def test_opencode_refuses_jsonc_with_a_clear_error(home: Path) -> None:
    path = home / ".config" / "opencode" / "opencode.json"
    path.parent.mkdir(parents=True)
    path.write_text('{\n  // my theme\n  "theme": "x"\n}\n')
    with pytest.raises(IntegrationError, match="comments"):
        integrations.plan_write("opencode", config.Settings(), CHOICE, home=home)


# -- Cline CLI -----------------------------------------------------------------

CLINE_USER = """{
    "version": 1,
    "lastUsedProvider": "anthropic",
    "modes": {},
    "providers": {
        "anthropic": {"settings": {"provider": "anthropic", "apiKey": "sk-ant-user", "model": "claude-sonnet-4-5"}, "updatedAt": "2026-01-02T03:04:05.000Z"}
    }
}
"""


def test_cline_cli_sets_the_openai_compatible_provider(home: Path) -> None:
    path = home / ".cline" / "data" / "settings" / "providers.json"
    path.parent.mkdir(parents=True)
    path.write_text(CLINE_USER)
    plan = integrations.plan_write("cline-cli", config.Settings(), CHOICE, home=home)
    assert any("'anthropic'" in note for note in plan.notes)
    write("cline-cli", home)
    text = path.read_text()
    assert CLINE_USER.splitlines()[5] in text  # the user's provider, untouched
    data = json.loads(text)
    assert data["lastUsedProvider"] == "openai-compatible"
    ours = data["providers"]["openai-compatible"]
    assert ours["settings"] == {
        "provider": "openai-compatible",
        "apiKey": "lmbridge",
        "model": CHOICE.model,
        "baseUrl": ENDPOINT.v1,
    }
    assert ours["updatedAt"]  # without it Cline ignores the entry
    pointed("cline-cli", home)


# -- what every JSON writer does with a broken or odd file ----------------------

JSON_FILES = {
    "opencode": (".config/opencode/opencode.json", "provider"),
    "cline-cli": (".cline/data/settings/providers.json", "providers"),
    "claude-code": (".claude/settings.json", "env"),
}


@pytest.mark.parametrize("tool", sorted(JSON_FILES))
def test_json_writers_share_one_reading_of_the_file(tool: str, home: Path) -> None:
    """A blank file is a new one; bad JSON names the file and the line; a
    member of ours of the wrong kind is refused by name; `current` reads a
    broken file as pointing nowhere rather than failing."""
    relative, member = JSON_FILES[tool]
    path = home / relative
    path.parent.mkdir(parents=True)
    path.write_text("  \n")
    plan = integrations.plan_write(tool, config.Settings(), CHOICE, home=home)
    assert json.loads(plan.new_text)[member]
    path.write_text('{\n  "a": 1,\n  oops\n}\n')
    with pytest.raises(IntegrationError, match=r"not valid JSON \(line 3") as bad:
        integrations.plan_write(tool, config.Settings(), CHOICE, home=home)
    assert str(path) in str(bad.value)
    assert integrations.current(tool, home=home) is None
    path.write_text(json.dumps({member: ["not", "an", "object"]}))
    with pytest.raises(IntegrationError, match=f'"{member}" must be an object'):
        integrations.plan_write(tool, config.Settings(), CHOICE, home=home)
    path.write_text("[1, 2]")
    with pytest.raises(IntegrationError, match="must hold a JSON object"):
        integrations.plan_write(tool, config.Settings(), CHOICE, home=home)


# -- Qwen Code and Gemini CLI (.env files) -------------------------------------

ENV_USER = """# my keys
export OPENAI_BASE_URL=https://api.example.com/v1   # old
SOMETHING_ELSE="keep me"

GEMINI_API_KEY='user-key'
"""


def test_qwen_code_edits_its_env_file_in_place(home: Path) -> None:
    path = home / ".qwen" / ".env"
    path.parent.mkdir()
    path.write_text(ENV_USER)
    write("qwen-code", home)
    lines = path.read_text().splitlines()
    assert lines[0] == "# my keys"
    assert lines[1] == f"export OPENAI_BASE_URL={ENDPOINT.v1}"
    assert lines[2] == 'SOMETHING_ELSE="keep me"'
    assert lines[4] == "GEMINI_API_KEY='user-key'"
    assert lines[5:] == ["OPENAI_API_KEY=lmbridge", f"OPENAI_MODEL={CHOICE.model}"]
    pointed("qwen-code", home)


def test_gemini_cli_points_the_sdk_at_the_root(home: Path) -> None:
    path = home / ".gemini" / ".env"
    path.parent.mkdir()
    path.write_text(ENV_USER)
    write("gemini-cli", home)
    text = path.read_text()
    assert text.startswith(ENV_USER.replace("'user-key'", "lmbridge"))
    assert f"GOOGLE_GEMINI_BASE_URL={ENDPOINT.root}\n" in text  # no /v1beta
    found = pointed("gemini-cli", home)
    assert found.base_url == ENDPOINT.root
    info = integrations.describe("gemini-cli", config.Settings())
    assert info.protocol_name == "Gemini API"


def test_gemini_test_request_is_a_gemini_api_call() -> None:
    request = integrations.build_test_request(
        "gemini-cli", config.Settings(), ModelChoice(model="gemini-2.5-pro")
    )
    assert request.path == "/v1beta/models/gemini-2.5-pro:generateContent"
    assert request.body["contents"][0]["parts"][0]["text"]


# -- lmbridge integrate --------------------------------------------------------


@pytest.mark.parametrize("tool", ["opencode", "cline-cli", "qwen-code", "gemini-cli"])
def test_cli_integrate_writes_each(
    tool: str, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["integrate", tool, "--write", "--yes", "--home", str(home)]
    argv += ["--model", CHOICE.model]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    found = integrations.current(tool, home=home)
    assert found is not None and f"wrote {found.path}" in out
    assert cli.main(argv) == 0
    assert "already points" in capsys.readouterr().out
