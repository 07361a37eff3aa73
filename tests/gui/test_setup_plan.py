"""First-run setup's plan, the settings service and the chart helpers:
pure functions, no window."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from lmbridge import config
from lmbridge.gui.setup.manager import WrittenFile, written_lines
from lmbridge.gui.setup.plan import (
    SetupChoice,
    current_choice,
    planned_changes,
    planned_settings,
    tool_to_test,
)
from lmbridge.gui.usage.charts import compact, top_keys
from lmbridge.gui.usage.data import day_labels
from lmbridge.integrations import ModelChoice
from lmbridge.settings_service import SettingsService, with_access_token

QWEN = "qwen/qwen3-coder-30b"

BASE_TEXT = """
[[upstream]]
name = "local"
kind = "lmstudio"
base_url = "http://127.0.0.1:1234"

[[upstream]]
name = "cloud"
kind = "openai"
base_url = "http://127.0.0.1:9"

[[route]]
model = "claude-*"
upstream = "cloud"

[[route]]
model = "qwen/qwen3-coder-30b"
upstream = "cloud"

[lmstudio]
min_context = 32768
"""
BASE = config.parse(BASE_TEXT)


def test_routes_for_the_chosen_models_come_first() -> None:
    choice = SetupChoice(sonnet=QWEN, codex="gemma", context_length=65536)
    planned = planned_settings(BASE, choice)
    routes = [(r.model, r.upstream, r.target) for r in planned.route]
    assert routes == [
        ("claude-*sonnet*", "local", QWEN),
        (QWEN, "local", None),  # replaces the old route of the same pattern
        ("gemma", "local", None),
        ("claude-*", "cloud", None),
    ]
    assert planned.lmstudio.load_context_length == 65536
    assert planned.lmstudio.min_context == 32768  # never above the load context


def test_only_what_differs_is_written() -> None:
    """Values that already hold (LM Studio managed, the default load
    context) are not written into the user's file again."""
    changes = planned_changes(BASE, SetupChoice(sonnet=QWEN))
    assert list(changes) == [("route",)]
    changes = planned_changes(BASE, SetupChoice(sonnet=QWEN, context_length=8192))
    assert changes[("lmstudio", "load_context_length")] == 8192
    assert changes[("lmstudio", "min_context")] == 8192
    assert ("lmstudio", "manage") not in changes


def test_claude_tiers_fill_in_from_each_other() -> None:
    choice = SetupChoice(haiku="small")
    tiers = choice.tool_choice("claude-code")
    assert tiers is not None
    assert (tiers.opus, tiers.sonnet, tiers.haiku) == ("small", "small", "small")
    assert choice.tools() == ["claude-code"]
    assert tool_to_test(SetupChoice(ide="m")) == "continue"
    assert tool_to_test(SetupChoice()) is None


def test_a_rerun_starts_from_the_files_then_the_routes() -> None:
    """The tools' files win over the routes (they name what the tool sends);
    a route of a Claude tier fills a tier the file leaves out."""
    settings = config.parse(
        BASE_TEXT + '\n[[route]]\nmodel = "claude-*haiku*"\nupstream = "local"\n'
        'target = "small"\n'
    )
    assert current_choice(settings, {}) == SetupChoice(
        haiku="small", context_length=32768
    )
    configured = {
        "claude-code": ModelChoice(sonnet=QWEN),
        "codex": ModelChoice(model="gemma"),
        "continue": ModelChoice(model="ide-model"),
    }
    assert current_choice(settings, configured) == SetupChoice(
        sonnet=QWEN, haiku="small", codex="gemma", ide="ide-model"
    )
    assert current_choice(BASE, {}) is None  # a first run: nothing configured


def test_the_files_written_are_listed_with_their_backups(tmp_path: Path) -> None:
    lines = written_lines(
        [
            WrittenFile("LM Bridge's settings", tmp_path / "c.toml", tmp_path / "b"),
            WrittenFile("Codex CLI", tmp_path / "x.toml", None),
            WrittenFile("Claude Code", tmp_path / "s.json", None, changed=False),
        ]
    )
    assert lines == [
        f"LM Bridge's settings: {tmp_path / 'c.toml'} (backup: {tmp_path / 'b'})",
        f"Codex CLI: {tmp_path / 'x.toml'} (new file)",
        f"Claude Code: {tmp_path / 's.json'} (already set up, not changed)",
    ]


def test_setup_needs_an_lmstudio_upstream() -> None:
    cloud_only = config.parse(
        '[[upstream]]\nname = "c"\nkind = "openai"\nbase_url = "http://x"\n'
    )
    with pytest.raises(config.ConfigError, match="no LM Studio upstream"):
        planned_settings(cloud_only, SetupChoice(sonnet=QWEN))


def test_settings_service_validates_backs_up_and_writes(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("# old\n")
    service = SettingsService(path)
    changed = service.merged(BASE, {"server": {"allowed_origins": ["http://a"]}})
    saved = service.save(changed)
    assert saved.backup is not None and saved.backup.read_text() == "# old\n"
    assert config.load(path).server.allowed_origins == ["http://a"]
    with pytest.raises(config.ConfigError, match="route"):
        service.merged(BASE, {"route": [{"model": "x", "upstream": "nowhere"}]})


def test_the_keyring_token_never_overrides_the_file() -> None:
    assert with_access_token(BASE, "t0ken").server.token() == "t0ken"
    assert with_access_token(BASE, "").server.token() == ""
    in_file = config.parse('[server]\naccess_token = "file"\n')
    assert with_access_token(in_file, "t0ken").server.token() == "file"


def test_chart_helpers() -> None:
    assert [compact(v) for v in (700000, 1_500_000, 2.5, 0)] == [
        "700k",
        "1.5M",
        "2.5",
        "0",
    ]
    lines = {f"m{i}": [float(i)] for i in range(10)}
    shown = top_keys(lines, limit=3)
    assert list(shown) == ["m9", "m8", "other"]
    assert shown["other"] == [float(sum(range(8)))]
    noon = datetime.datetime(2023, 11, 14, 12).timestamp()
    days = day_labels(7, now=noon)
    assert len(days) == 7 and days[-1] == "2023-11-14" and days[0] == "2023-11-08"
