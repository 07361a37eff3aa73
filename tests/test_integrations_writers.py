"""Merging into Claude Code's, Codex's and Continue's config files.

Each writer previews (the new text and a diff), writes only when asked,
keeps a timestamped backup, leaves everything it does not own alone, and
changes nothing when run twice. A temporary home directory stands in for
the user's.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from lmbridge import cli, config, integrations
from lmbridge.integrations import IntegrationError, ModelChoice, WritePlan
from lmbridge.integrations.files import BACKUP_MARK


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("CLAUDE_CONFIG_DIR", "CODEX_HOME", "CONTINUE_GLOBAL_DIR"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "home"
    path.mkdir()
    return path


def plan(
    tool: str, home: Path, choice: ModelChoice | None = None, **server: Any
) -> WritePlan:
    settings = config.Settings()
    for key, value in server.items():
        setattr(settings.server, key, value)
    return integrations.plan_write(tool, settings, choice, home=home)


def backups(path: Path) -> list[Path]:
    return sorted(path.parent.glob(path.name + BACKUP_MARK + "*"))


# -- Claude Code -------------------------------------------------------------


def test_claude_code_creates_settings_with_the_env_block(home: Path) -> None:
    p = plan("claude-code", home, ModelChoice(sonnet="qwen/qwen3-coder-30b"))
    assert p.path == home / ".claude" / "settings.json"
    assert p.old_text is None
    assert p.changed
    assert not p.path.exists()  # a plan writes nothing
    assert p.diff().startswith("--- /dev/null\n")
    result = integrations.write(p)
    assert result.changed
    assert result.backup is None  # nothing to back up
    data = json.loads(p.path.read_text())
    assert data == {
        "env": {
            "ANTHROPIC_BASE_URL": "http://127.0.0.1:4680",
            "ANTHROPIC_AUTH_TOKEN": "lmbridge",
            "ANTHROPIC_DEFAULT_SONNET_MODEL": "qwen/qwen3-coder-30b",
            "CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY": "1",
            "CLAUDE_CODE_AUTO_COMPACT_WINDOW": "32768",
        }
    }


def test_claude_code_merge_keeps_unrelated_keys_and_backs_up(home: Path) -> None:
    path = home / ".claude" / "settings.json"
    path.parent.mkdir()
    original = {
        "permissions": {"allow": ["Bash(npm run lint)"]},
        "env": {"DISABLE_TELEMETRY": "1", "ANTHROPIC_BASE_URL": "https://old"},
        "model": "sonnet",
    }
    old_text = json.dumps(original, indent=4) + "\n"
    path.write_text(old_text)
    path.chmod(0o600)
    p = plan("claude-code", home, port=4700)
    assert '-        "ANTHROPIC_BASE_URL": "https://old"' in p.diff()
    result = integrations.write(p)
    assert result.backup is not None
    assert result.backup.read_text() == old_text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert data["permissions"] == original["permissions"]
    assert data["model"] == "sonnet"
    assert data["env"] == {
        "DISABLE_TELEMETRY": "1",
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:4700",
        "ANTHROPIC_AUTH_TOKEN": "lmbridge",
        "CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY": "1",
        "CLAUDE_CODE_AUTO_COMPACT_WINDOW": "32768",
    }
    assert path.read_text().startswith('{\n    "permissions"')  # its 4-space indent
    again = plan("claude-code", home, port=4700)
    assert not again.changed
    assert integrations.write(again).backup is None
    assert len(backups(path)) == 1


def test_claude_code_refuses_broken_json(home: Path) -> None:
    path = home / ".claude" / "settings.json"
    path.parent.mkdir()
    path.write_text('{"env": {,}')
    with pytest.raises(IntegrationError, match="not valid JSON"):
        plan("claude-code", home)
    path.write_text('{"env": ["a"]}')
    with pytest.raises(IntegrationError, match="env"):
        plan("claude-code", home)


def test_claude_config_dir_is_honoured(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(home / "elsewhere"))
    settings = config.Settings()
    assert integrations.plan_write("claude-code", settings).path == (
        home / "elsewhere" / "settings.json"
    )


def test_a_write_refuses_a_file_changed_since_the_preview(home: Path) -> None:
    p = plan("claude-code", home)
    p.path.parent.mkdir(parents=True)
    p.path.write_text("{}\n")
    with pytest.raises(IntegrationError, match="changed since the preview"):
        integrations.write(p)


def test_crlf_files_keep_their_line_endings(home: Path) -> None:
    path = home / ".claude" / "settings.json"
    path.parent.mkdir()
    path.write_bytes(b'{\r\n  "model": "opus"\r\n}\r\n')
    integrations.write(plan("claude-code", home))
    raw = path.read_bytes()
    assert b"\r\n" in raw
    assert b"\n" not in raw.replace(b"\r\n", b"")


# -- Codex ---------------------------------------------------------------------

CODEX_CONFIG = """\
# my Codex settings
model = "gpt-5-codex"   # the usual one
model_provider = "openai"
approval_policy = "on-request"

[mcp_servers.docs]
command = "npx"
args = ["-y", "docs-mcp"]

# keep this comment
[model_providers.lmbridge]
name = "old name"
stream_idle_timeout_ms = 900000

[profiles.fast]
model = "o4-mini"
"""


def test_codex_creates_the_provider(home: Path) -> None:
    p = plan("codex", home)
    assert p.path == home / ".codex" / "config.toml"
    integrations.write(p)
    data = tomllib.loads(p.path.read_text())
    assert data == {
        "model_provider": "lmbridge",
        "model_providers": {
            "lmbridge": {
                "name": "LM Bridge",
                "base_url": "http://127.0.0.1:4680/v1",
                "wire_api": "responses",
            }
        },
    }


def test_codex_merge_keeps_comments_and_other_tables(home: Path) -> None:
    path = home / ".codex" / "config.toml"
    path.parent.mkdir()
    path.write_text(CODEX_CONFIG)
    p = plan("codex", home, ModelChoice(model="qwen/qwen3-coder-30b"))
    assert any("model_provider changes from 'openai'" in n for n in p.notes)
    result = integrations.write(p)
    assert result.backup is not None
    assert result.backup.read_text() == CODEX_CONFIG
    text = path.read_text()
    for kept in ("# my Codex settings", "# keep this comment", "[profiles.fast]"):
        assert kept in text
    data = tomllib.loads(text)
    assert data["model"] == "qwen/qwen3-coder-30b"
    assert data["model_provider"] == "lmbridge"
    assert data["approval_policy"] == "on-request"
    assert data["mcp_servers"] == {
        "docs": {"command": "npx", "args": ["-y", "docs-mcp"]}
    }
    assert data["profiles"] == {"fast": {"model": "o4-mini"}}
    assert data["model_providers"]["lmbridge"] == {
        "name": "LM Bridge",
        "base_url": "http://127.0.0.1:4680/v1",
        "wire_api": "responses",
        "stream_idle_timeout_ms": 900000,
    }
    again = plan("codex", home, ModelChoice(model="qwen/qwen3-coder-30b"))
    assert not again.changed


def test_codex_root_keys_go_after_multiline_values(home: Path) -> None:
    path = home / ".codex" / "config.toml"
    path.parent.mkdir()
    path.write_text(
        '# comment\nnotify = [\n  "notify-send",\n  "codex",\n]\n\n[tui]\nx = 1\n'
    )
    p = plan("codex", home)
    assert p.notes == ()  # edited line by line, the comment stays
    assert "# comment" in p.new_text
    data = tomllib.loads(p.new_text)
    assert data["notify"] == ["notify-send", "codex"]
    assert data["model_provider"] == "lmbridge"
    assert data["tui"] == {"x": 1}


def test_codex_env_key_follows_the_access_token(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROXY_TOKEN", "t0ken-value")
    integrations.write(plan("codex", home, access_token_env="PROXY_TOKEN"))
    path = home / ".codex" / "config.toml"
    provider = tomllib.loads(path.read_text())["model_providers"]["lmbridge"]
    assert provider["env_key"] == "PROXY_TOKEN"
    assert "t0ken-value" not in path.read_text()  # the key stays in the environment
    integrations.write(plan("codex", home))
    provider = tomllib.loads(path.read_text())["model_providers"]["lmbridge"]
    assert "env_key" not in provider


def test_codex_inline_tables_are_edited_where_they_are(home: Path) -> None:
    path = home / ".codex" / "config.toml"
    path.parent.mkdir()
    path.write_text(
        '# mine\nmodel_providers = { lmbridge = { name = "x" } }  # inline\nfoo = 1\n'
    )
    p = plan("codex", home)
    assert p.notes == ()
    assert p.new_text.startswith("# mine\nmodel_providers = { lmbridge = { name = ")
    assert "}  # inline\n" in p.new_text
    data = tomllib.loads(p.new_text)
    assert data["foo"] == 1
    assert data["model_providers"]["lmbridge"]["wire_api"] == "responses"


def test_codex_refuses_broken_toml(home: Path) -> None:
    path = home / ".codex" / "config.toml"
    path.parent.mkdir()
    path.write_text("model = \n")
    with pytest.raises(IntegrationError, match="not valid TOML"):
        plan("codex", home)


# -- Continue ------------------------------------------------------------------


def load_yaml(text: str) -> Any:
    """Parse with PyYAML (LM Bridge itself has no YAML library)."""
    return pytest.importorskip("yaml").safe_load(text)


CONTINUE_CONFIG = """\
name: Local Config
version: 1.0.0
schema: v1
models:
  - name: GPT-4o
    provider: openai
    model: gpt-4o
    apiKey: sk-xxx # mine
    roles:
      - chat

# context providers
context:
  - provider: code
"""


def test_continue_creates_a_config(home: Path) -> None:
    p = plan("continue", home)
    assert p.path == home / ".continue" / "config.yaml"
    integrations.write(p)
    data = load_yaml(p.path.read_text())
    assert data["schema"] == "v1"
    assert data["models"] == [
        {
            "name": "LM Bridge",
            "provider": "openai",
            "model": "AUTODETECT",
            "apiBase": "http://127.0.0.1:4680/v1",
            "apiKey": "lmbridge",
            "roles": ["chat", "edit", "apply"],
        }
    ]


def test_continue_fills_the_empty_list_continue_starts_with(home: Path) -> None:
    path = home / ".continue" / "config.yaml"
    path.parent.mkdir()
    path.write_text("name: Local Config\nversion: 1.0.0\nschema: v1\nmodels: []\n")
    integrations.write(plan("continue", home, ModelChoice(model="qwen3")))
    data = load_yaml(path.read_text())
    assert [m["name"] for m in data["models"]] == ["LM Bridge: qwen3"]


def test_continue_merge_adds_then_replaces_by_name(home: Path) -> None:
    path = home / ".continue" / "config.yaml"
    path.parent.mkdir()
    path.write_text(CONTINUE_CONFIG)
    integrations.write(plan("continue", home, ModelChoice(model="qwen3")))
    text = path.read_text()
    assert "apiKey: sk-xxx # mine" in text
    assert "# context providers" in text
    data = load_yaml(text)
    assert [m["name"] for m in data["models"]] == ["GPT-4o", "LM Bridge: qwen3"]
    assert data["context"] == [{"provider": "code"}]
    assert not plan("continue", home, ModelChoice(model="qwen3")).changed
    # The same entry, with the server moved: replaced in place.
    integrations.write(plan("continue", home, ModelChoice(model="qwen3"), port=4999))
    data = load_yaml(path.read_text())
    assert [m["name"] for m in data["models"]] == ["GPT-4o", "LM Bridge: qwen3"]
    assert data["models"][1]["apiBase"] == "http://127.0.0.1:4999/v1"
    assert data["models"][0]["apiKey"] == "sk-xxx"


def test_continue_handles_unindented_lists_and_no_models_key(home: Path) -> None:
    path = home / ".continue" / "config.yaml"
    path.parent.mkdir()
    path.write_text(
        "name: x\nversion: 1\nschema: v1\nmodels:\n- name: a\n  provider: ollama\n  model: m\nrules:\n- be brief\n"
    )
    integrations.write(plan("continue", home))
    data = load_yaml(path.read_text())
    assert [m["name"] for m in data["models"]] == ["a", "LM Bridge"]
    assert data["rules"] == ["be brief"]
    path.write_text("name: x\nversion: 1\nschema: v1\n")
    integrations.write(plan("continue", home))
    assert [m["name"] for m in load_yaml(path.read_text())["models"]] == ["LM Bridge"]


def test_continue_adds_to_an_inline_model_list_and_keeps_it_inline(
    home: Path,
) -> None:
    path = home / ".continue" / "config.yaml"
    path.parent.mkdir()
    path.write_text("name: x\nmodels: [{name: a, provider: ollama, model: m}]\n")
    p = plan("continue", home, ModelChoice(model="qwen3"))
    assert p.new_text.startswith(
        "name: x\nmodels: [{name: a, provider: ollama, model: m}, "
    )
    data = load_yaml(p.new_text)
    assert [m["name"] for m in data["models"]] == ["a", "LM Bridge: qwen3"]


def test_continue_json_config_is_merged_as_json(home: Path) -> None:
    path = home / ".continue" / "config.json"
    path.parent.mkdir()
    path.write_text(
        '{"models": [{"title": "x", "provider": "ollama", "model": "m"}], "allowAnonymousTelemetry": false}'
    )
    p = plan("continue", home)
    assert p.path == path
    integrations.write(p)
    data = json.loads(path.read_text())
    assert data["allowAnonymousTelemetry"] is False
    assert [m["title"] for m in data["models"]] == ["x", "LM Bridge"]
    assert data["models"][1]["apiBase"] == "http://127.0.0.1:4680/v1"


# -- the command line ----------------------------------------------------------


def test_cli_prints_without_writing(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["integrate", "codex", "--home", str(home)]) == 0
    out = capsys.readouterr().out
    assert "speaks OpenAI Responses" in out
    assert 'wire_api = "responses"' in out
    assert not (home / ".codex").exists()


def test_cli_lists_the_tools(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["integrate"]) == 0
    out = capsys.readouterr().out
    for tool in integrations.TOOL_IDS:
        assert tool in out


def test_cli_write_needs_a_terminal_or_yes(home: Path) -> None:
    command = [sys.executable, "-m", "lmbridge", "integrate", "claude-code", "--write"]
    command += ["--home", str(home)]
    env = {**os.environ, "LMBRIDGE_HOME": str(home / "lmbridge")}
    refused = subprocess.run(
        command,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=env,
        timeout=30,
        check=False,
    )
    assert refused.returncode == 1
    assert "--yes" in refused.stderr
    assert "+++ " in refused.stdout  # the diff was shown
    assert not (home / ".claude").exists()
    done = subprocess.run(
        [*command, "--yes"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=env,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"wrote {home / '.claude' / 'settings.json'}" in done.stdout
    again = subprocess.run(
        [*command, "--yes"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=env,
        timeout=30,
        check=False,
    )
    assert "already points Claude Code at LM Bridge" in again.stdout


def test_cli_write_prints_the_backup(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = home / ".codex" / "config.toml"
    path.parent.mkdir()
    path.write_text('model = "o3"\n')
    assert (
        cli.main(["integrate", "codex", "--write", "--yes", "--home", str(home)]) == 0
    )
    out = capsys.readouterr().out
    [backup] = backups(path)
    assert f"backup of the previous file: {backup}" in out
    assert backup.read_text() == 'model = "o3"\n'


def test_cli_tool_without_a_file_says_so(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["integrate", "cline", "--write", "--home", str(home)]) == 1
    assert "own settings" in capsys.readouterr().err
