"""The tools' files LM Bridge writes keep what the user wrote: comments,
quoting, one-line arrays and layout survive a write and a second write;
files holding a token are private; temp files are never links; and the
files are read back (`integrations.current`)."""

from __future__ import annotations

import difflib
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lmbridge import config, integrations
from lmbridge.integrations import Endpoint, ModelChoice, json_edit


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("CLAUDE_CONFIG_DIR", "CODEX_HOME", "CONTINUE_GLOBAL_DIR"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "home"
    path.mkdir()
    return path


def settings(port: int = 4680, token: str = "") -> config.Settings:
    s = config.Settings()
    s.server.port = port
    s.server.access_token = token
    return s


def write(
    tool: str, home: Path, choice: ModelChoice | None = None, **kw: Any
) -> integrations.WriteResult:
    plan = integrations.plan_write(tool, settings(**kw), choice, home=home)
    return integrations.write(plan)


def changed_lines(old: str, new: str) -> list[str]:
    return [
        line
        for line in difflib.ndiff(old.splitlines(), new.splitlines())
        if line.startswith(("- ", "+ "))
    ]


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


CLAUDE_SETTINGS = """\
{
    "permissions": { "allow": ["Bash(npm run lint)", "Read(~/notes)"],   "deny": [] },
    "env": {
        "DISABLE_TELEMETRY": "1",
        "ANTHROPIC_BASE_URL": "https://old.example"
    },
    "hooks": {"PostToolUse": [{"matcher": "Edit", "hooks": [{"type": "command", "command": "make fmt"}]}]},
    "model":"sonnet"
}
"""


def test_claude_code_settings_keep_the_users_formatting_over_two_writes(
    home: Path,
) -> None:
    path = home / ".claude" / "settings.json"
    path.parent.mkdir()
    path.write_text(CLAUDE_SETTINGS)
    write("claude-code", home, ModelChoice(sonnet="qwen3"))
    first = path.read_text()
    assert (
        '"permissions": { "allow": ["Bash(npm run lint)", "Read(~/notes)"],   "deny": [] },'
        in first
    )
    assert '"model":"sonnet"' in first
    assert (
        '"hooks": {"PostToolUse": [{"matcher": "Edit", "hooks": [{"type": '
        '"command", "command": "make fmt"}]}]},' in first
    )
    assert '        "ANTHROPIC_BASE_URL": "http://127.0.0.1:4680",\n' in first
    assert '        "ANTHROPIC_DEFAULT_SONNET_MODEL": "qwen3",\n' in first
    assert json.loads(first)["env"]["DISABLE_TELEMETRY"] == "1"

    write("claude-code", home, ModelChoice(sonnet="qwen3"), port=4690)
    second = path.read_text()
    assert changed_lines(first, second) == [
        '-         "ANTHROPIC_BASE_URL": "http://127.0.0.1:4680",',
        '+         "ANTHROPIC_BASE_URL": "http://127.0.0.1:4690",',
    ]


CODEX_CONFIG = """\
# Codex -- my settings
model = 'gpt-5-codex'   # single quotes, my comment
approval_policy = "on-request"
tui = { theme = "dark" }  # an inline table

[profiles.fast]   # the quick one
model = "o4-mini"

# providers I use
[model_providers.ollama]
name = "Ollama"
base_url = "http://localhost:11434/v1"
"""


def test_codex_config_keeps_comments_quotes_and_inline_tables_over_two_writes(
    home: Path,
) -> None:
    path = home / ".codex" / "config.toml"
    path.parent.mkdir()
    path.write_text(CODEX_CONFIG)
    write("codex", home, ModelChoice(model="qwen3"))
    first = path.read_text()
    for line in CODEX_CONFIG.splitlines():
        if not line.startswith("model ="):
            assert line in first
    assert "model = 'qwen3'   # single quotes, my comment" in first  # quotes kept
    assert "[model_providers.lmbridge]" in first

    write("codex", home, ModelChoice(model="qwen3-coder"), port=4690)
    second = path.read_text()
    assert sorted(changed_lines(first, second)) == sorted(
        [
            "- model = 'qwen3'   # single quotes, my comment",
            "+ model = 'qwen3-coder'   # single quotes, my comment",
            '- base_url = "http://127.0.0.1:4680/v1"',
            '+ base_url = "http://127.0.0.1:4690/v1"',
        ]
    )


CONTINUE_CONFIG = """\
# Continue -- mine
name: "Local Config"   # double quotes
version: '1.0.0'
schema: v1
models:
    # my cloud model
    -   name: GPT-4o
        provider: openai
        model: gpt-4o
        roles: [chat, edit]   # flow list
context:
    -   provider: code
"""


def test_continue_yaml_keeps_comments_quotes_and_indentation_over_two_writes(
    home: Path,
) -> None:
    path = home / ".continue" / "config.yaml"
    path.parent.mkdir()
    path.write_text(CONTINUE_CONFIG)
    write("continue", home, ModelChoice(model="qwen3"))
    first = path.read_text()
    assert first.startswith(CONTINUE_CONFIG.split("context:")[0])
    assert first.endswith("context:\n    -   provider: code\n")
    assert "    -   name: 'LM Bridge: qwen3'\n" in first
    write("continue", home, ModelChoice(model="qwen3"), port=4690)
    second = path.read_text()
    assert changed_lines(first, second) == [
        "-         apiBase: http://127.0.0.1:4680/v1",
        "+         apiBase: http://127.0.0.1:4690/v1",
    ]


def test_continue_legacy_json_is_edited_in_place(home: Path) -> None:
    path = home / ".continue" / "config.json"
    path.parent.mkdir()
    text = '{\n  "models": [{"title": "Mine", "provider": "ollama", "model": "m"}],\n  "tabAutocompleteModel": {"title": "x"}\n}\n'
    path.write_text(text)
    write("continue", home, ModelChoice(model="qwen3"))
    first = path.read_text()
    assert first.startswith(
        '{\n  "models": [{"title": "Mine", "provider": "ollama", "model": "m"}, '
    )
    assert first.endswith('],\n  "tabAutocompleteModel": {"title": "x"}\n}\n')
    titles = [m["title"] for m in json.loads(first)["models"]]
    assert titles == ["Mine", "LM Bridge: qwen3"]
    write("continue", home, ModelChoice(model="qwen3"), port=4690)
    second = json.loads(path.read_text())
    assert [m["apiBase"] for m in second["models"][1:]] == ["http://127.0.0.1:4690/v1"]
    assert len(second["models"]) == 2


@pytest.mark.parametrize("tool", ["claude-code", "codex", "continue"])
def test_new_files_are_private_and_existing_modes_are_kept(
    home: Path, tool: str
) -> None:
    first = write(tool, home, ModelChoice(model="m1"), token="t" * 24)
    assert mode(first.path) == 0o600
    first.path.chmod(0o640)
    second = write(tool, home, ModelChoice(model="m2"), token="t" * 24)
    assert mode(second.path) == 0o640
    assert second.backup is not None and mode(second.backup) == 0o600
    assert not [p for p in first.path.parent.iterdir() if "lmbridge-tmp" in p.name]


def test_a_link_at_the_temp_name_is_not_written_through(home: Path) -> None:
    path = home / ".claude" / "settings.json"
    path.parent.mkdir()
    path.write_text('{"model": "sonnet"}\n')
    victim = home / "victim"
    victim.write_text("untouched\n")
    (path.parent / ".settings.json.lmbridge-tmp").symlink_to(victim)
    write("claude-code", home)
    assert victim.read_text() == "untouched\n"
    assert json.loads(path.read_text())["env"]["ANTHROPIC_BASE_URL"]


def test_current_reads_what_the_tools_files_point_at(home: Path) -> None:
    endpoint = Endpoint.from_settings(settings())
    for tool in ("claude-code", "codex", "continue", "void"):
        assert integrations.current(tool, home=home) is None
    write("claude-code", home, ModelChoice(opus="big", sonnet="qwen3", haiku="small"))
    write("codex", home, ModelChoice(model="qwen3-coder", context_window=65536))
    write("continue", home, ModelChoice(model="qwen3"))

    claude = integrations.current("claude-code", home=home)
    assert claude is not None and claude.points_at(endpoint)
    assert (claude.choice.opus, claude.choice.sonnet, claude.choice.haiku) == (
        "big",
        "qwen3",
        "small",
    )
    codex = integrations.current("codex", home=home)
    assert codex is not None and codex.points_at(endpoint)
    assert codex.choice.model == "qwen3-coder" and codex.choice.context_window == 65536
    cont = integrations.current("continue", home=home)
    assert cont is not None and cont.points_at(endpoint)
    assert cont.choice.model == "qwen3"
    # Pointed elsewhere: read, but not LM Bridge.
    assert not codex.points_at(Endpoint.from_settings(settings(port=4999)))
    other = home / ".codex" / "config.toml"
    other.write_text(
        other.read_text().replace(
            'model_provider = "lmbridge"', 'model_provider = "ollama"'
        )
    )
    other.write_text(
        other.read_text()
        + '\n[model_providers.ollama]\nbase_url = "http://localhost:11434/v1"\n'
    )
    elsewhere = integrations.current("codex", home=home)
    assert elsewhere is not None and elsewhere.base_url == "http://localhost:11434/v1"
    assert not elsewhere.points_at(endpoint)


# -- json_edit: any JSON object, any edit: the data is right, the rest stays --

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-1000, 1000), st.text(max_size=8)
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(
    doc=st.dictionaries(st.text(max_size=5), _values, max_size=4),
    indent=st.sampled_from([None, 2, 4, "\t"]),
    key=st.text(max_size=5),
    value=_values,
    nested=st.booleans(),
)
def test_json_edits_change_only_their_value(
    doc: dict[str, Any], indent: int | str | None, key: str, value: Any, nested: bool
) -> None:
    text = json.dumps(doc, indent=indent)
    path: tuple[str | int, ...] = ("env",) if nested else ()
    expected = json.loads(text)
    if nested and "env" in expected and not isinstance(expected["env"], dict):
        with pytest.raises(ValueError, match="not an object"):
            json_edit.set_member(text, path, key, value)
        return
    edited = json_edit.set_member(text, path, key, value)
    target = expected.setdefault("env", {}) if nested else expected
    target[key] = value
    assert json.loads(edited) == expected
    # Every other member's text is still in the file as it was.
    if indent is None:
        for name, old in doc.items():
            if name != key and not nested:
                assert json.dumps({name: old})[1:-1] in edited


def test_integrate_says_what_the_tool_points_at_now(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from lmbridge import cli

    NO_LOOKUP = ["--context-window", "32768"]  # no look-up of LM Studio's models
    assert cli.main(["integrate", "codex", "--home", str(home), *NO_LOOKUP]) == 0
    assert "Now:" not in capsys.readouterr().out
    write("codex", home, ModelChoice(model="qwen3"))
    assert cli.main(["integrate", "codex", "--home", str(home), *NO_LOOKUP]) == 0
    out = capsys.readouterr().out
    assert (
        f"Now: {home / '.codex' / 'config.toml'} points it at LM Bridge, model qwen3."
        in out
    )
    write("codex", home, ModelChoice(model="qwen3"), port=4999)
    assert cli.main(["integrate", "codex", "--home", str(home), *NO_LOOKUP]) == 0
    assert (
        "points it at http://127.0.0.1:4999/v1, model qwen3." in capsys.readouterr().out
    )
