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
from typing import Any

from lmbridge.integrations import files
from lmbridge.integrations.base import (
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


def _indent_of(text: str) -> int | str:
    for line in text.splitlines()[1:]:
        stripped = line.lstrip(" \t")
        if stripped and stripped != line:
            lead = line[: len(line) - len(stripped)]
            return "\t" if lead.startswith("\t") else len(lead)
    return 2


def merge(text: str | None, env: Mapping[str, str], path: Path) -> str:
    """`text` (settings.json, or None) with `env` merged into its env block."""
    data: dict[str, Any] = {}
    if text is not None and text.strip():
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as exc:
            raise IntegrationError(
                f"{path} is not valid JSON (line {exc.lineno}: {exc.msg}); "
                "fix it, or move it away to start afresh"
            ) from exc
        if not isinstance(loaded, dict):
            raise IntegrationError(f"{path} must hold a JSON object")
        data = loaded
    block = data.setdefault("env", {})
    if not isinstance(block, dict):
        raise IntegrationError(f'{path}: "env" must be an object')
    block.update(env)
    indent = _indent_of(text) if text else 2
    return json.dumps(data, indent=indent, ensure_ascii=False) + "\n"


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
