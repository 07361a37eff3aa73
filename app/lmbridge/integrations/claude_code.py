"""Claude Code: the `env` block of ~/.claude/settings.json.

Claude Code speaks Anthropic Messages and appends /v1/messages to
ANTHROPIC_BASE_URL itself, so the base URL is the proxy's root. The key goes
in ANTHROPIC_AUTH_TOKEN (sent as `Authorization: Bearer`), which Claude Code
uses without the one-time approval prompt that ANTHROPIC_API_KEY triggers.
The opus / sonnet / haiku aliases map to models through
ANTHROPIC_DEFAULT_{OPUS,SONNET,HAIKU}_MODEL; ANTHROPIC_SMALL_FAST_MODEL is
the older name of the background (haiku-class) model.

CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY=1 makes Claude Code's `/model`
picker list the gateway's `GET /v1/models` (it keeps the ids naming claude
or anthropic; LM Bridge offers every other model as `claude/<id>`).
CLAUDE_CODE_AUTO_COMPACT_WINDOW, when the models' context window is known,
is the window Claude Code compacts within (capped at what it believes the
model's window is, 200K or more), so it compacts before a local model
overflows.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from lmbridge.integrations import files, json_edit
from lmbridge.integrations.base import (
    Configured,
    Endpoint,
    Integration,
    IntegrationError,
    ModelChoice,
    Snippet,
    WritePlan,
    env_snippets,
)

ID = "claude-code"
GATEWAY_DISCOVERY = "CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY"
COMPACT_WINDOW = "CLAUDE_CODE_AUTO_COMPACT_WINDOW"
# What Claude Code asks for when no model is configured (for its window).
DEFAULT_MODELS = ("claude-sonnet-5-5", "claude-opus-5-5")


def config_path(home: Path | None = None, env: Mapping[str, str] | None = None) -> Path:
    """~/.claude/settings.json, or under $CLAUDE_CONFIG_DIR when that is set."""
    env = os.environ if env is None else env
    if home is None and env.get("CLAUDE_CONFIG_DIR"):
        return Path(env["CLAUDE_CONFIG_DIR"]) / "settings.json"
    return (home or Path.home()) / ".claude" / "settings.json"


def env_vars(endpoint: Endpoint, choice: ModelChoice) -> dict[str, str]:
    """The variables pointing Claude Code at the proxy, in a stable order."""
    result = {
        "ANTHROPIC_BASE_URL": endpoint.root,
        "ANTHROPIC_AUTH_TOKEN": endpoint.key,
    }
    tiers = {
        "ANTHROPIC_MODEL": choice.model,
        "ANTHROPIC_DEFAULT_OPUS_MODEL": choice.opus,
        "ANTHROPIC_DEFAULT_SONNET_MODEL": choice.sonnet,
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": choice.haiku,
        "ANTHROPIC_SMALL_FAST_MODEL": choice.small_fast or choice.haiku,
    }
    result.update({name: value for name, value in tiers.items() if value})
    result[GATEWAY_DISCOVERY] = "1"
    if choice.context_window:
        result[COMPACT_WINDOW] = str(choice.context_window)
    return result


def describe(
    endpoint: Endpoint, choice: ModelChoice, home: Path | None = None
) -> Integration:
    env = env_vars(endpoint, choice)
    path = config_path(home)
    block = json.dumps({"env": env}, indent=2) + "\n"
    return Integration(
        id=ID,
        name="Claude Code",
        protocols=("anthropic",),
        base_url=endpoint.root,
        env=env,
        snippets=(
            *env_snippets(env),
            Snippet(f"{path} (merged into its env block)", "json", block),
        ),
        steps=(
            f"Write the env block into {path} (`lmbridge integrate {ID} --write`), "
            "or export the variables in the shell that runs `claude`.",
            "Start `claude`; `/status` shows the base URL it uses.",
            "Without model variables Claude Code asks for its own model names "
            '(claude-sonnet-…); route them with a `[[route]] model = "claude-*"`.',
            "`/model` lists LM Bridge's models (others than claude-… as "
            "claude/<model>).",
        ),
        config_path=path,
    )


def merge(text: str | None, env: Mapping[str, str], path: Path) -> str:
    """`text` (settings.json, or None) with `env` merged into its env block.

    Only the variables that change are written (json_edit): every other
    value keeps the user's formatting, one-line arrays included.
    """
    if text is None or not text.strip():
        return json.dumps({"env": dict(env)}, indent=2, ensure_ascii=False) + "\n"
    hint = "fix it, or move it away to start afresh"
    json_edit.load_object(text, path, members={"env": dict}, hint=hint)
    for name, value in env.items():
        text = json_edit.set_member(text, ("env",), name, value)
    return text if text.endswith("\n") else text + "\n"


def current(home: Path | None = None) -> Configured | None:
    """What settings.json's env block points Claude Code at now (None
    without a file, or with no base URL nor model in it)."""
    path = config_path(home)
    try:
        data = json_edit.load_object(files.read_text(path), path)
    except IntegrationError:
        return None
    env = data.get("env")
    if not isinstance(env, dict):
        return None
    values = {k: str(v) for k, v in env.items() if isinstance(v, str | int)}
    window = values.get(COMPACT_WINDOW, "")
    choice = ModelChoice(
        model=values.get("ANTHROPIC_MODEL", ""),
        opus=values.get("ANTHROPIC_DEFAULT_OPUS_MODEL", ""),
        sonnet=values.get("ANTHROPIC_DEFAULT_SONNET_MODEL", ""),
        haiku=values.get("ANTHROPIC_DEFAULT_HAIKU_MODEL", ""),
        small_fast=values.get("ANTHROPIC_SMALL_FAST_MODEL", ""),
        context_window=int(window) if window.isdigit() else 0,
    )
    base_url = values.get("ANTHROPIC_BASE_URL", "")
    if not base_url and choice == ModelChoice():
        return None
    return Configured(tool=ID, path=path, base_url=base_url, choice=choice)


def plan(
    endpoint: Endpoint, choice: ModelChoice, home: Path | None = None
) -> WritePlan:
    path = config_path(home)
    old = files.read_text(path)
    env = env_vars(endpoint, choice)
    notes: list[str] = []
    if old:
        try:
            existing = json.loads(old).get("env", {})
        except (json.JSONDecodeError, AttributeError):
            existing = {}
        if isinstance(existing, dict) and existing.get("ANTHROPIC_API_KEY"):
            notes.append(
                "the env block also sets ANTHROPIC_API_KEY; Claude Code then "
                "sends both headers (LM Bridge accepts either)"
            )
    return WritePlan(
        tool=ID,
        path=path,
        old_text=old,
        new_text=merge(old, env, path),
        notes=tuple(notes),
        newline=files.detect_newline(path),
    )
