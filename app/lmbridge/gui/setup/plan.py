"""What first-run setup changes, computed before anything is written. No Qt.

The user picks a local model for each tool (Claude Code's opus / sonnet /
haiku, Codex, the IDE plugins) and the context to load it with. From that:

- `planned_settings`: routes that send each chosen model, and Claude Code's
  own tier names (`claude-*opus*`, ...), to the LM Studio upstream, put
  first so they win; the load context, with the minimum context no higher
  than it (or LM Bridge would reload the model right away);
- `tool_plans`: the merge into each chosen tool's own config file, by the
  integration writers (shown as a diff, written only when confirmed);
- `tool_to_test`: the tool whose test request ends the setup;
- `current_choice`: what the settings and the tools' files hold now, where
  a re-run of setup starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from lmbridge import config, integrations
from lmbridge.integrations import IntegrationError, ModelChoice, WritePlan
from lmbridge.settings_service import merged

CLAUDE_TIERS = (
    ("opus", "claude-*opus*"),
    ("sonnet", "claude-*sonnet*"),
    ("haiku", "claude-*haiku*"),
)
# The tools setup configures: (integration id, what the page calls it).
TOOLS = (
    ("claude-code", "Claude Code"),
    ("codex", "Codex CLI"),
    ("continue", "IDE plugins (Continue)"),
)
DEFAULT_CONTEXT = 32768


@dataclass(frozen=True)
class SetupChoice:
    """The local model per tool ("" leaves the tool alone) and the context."""

    opus: str = ""
    sonnet: str = ""
    haiku: str = ""
    codex: str = ""
    ide: str = ""
    context_length: int = DEFAULT_CONTEXT

    def models(self) -> list[str]:
        """Every chosen model once, in the order of the page."""
        chosen = (self.opus, self.sonnet, self.haiku, self.codex, self.ide)
        return list(dict.fromkeys(m for m in chosen if m))

    def tool_choice(self, tool: str) -> ModelChoice | None:
        """What to write into `tool`'s config (None: the tool is not set up)."""
        if tool == "claude-code":
            if not (self.opus or self.sonnet or self.haiku):
                return None
            sonnet = self.sonnet or self.opus or self.haiku
            return ModelChoice(
                opus=self.opus or sonnet,
                sonnet=sonnet,
                haiku=self.haiku or sonnet,
            )
        model = {"codex": self.codex, "continue": self.ide}.get(tool, "")
        return ModelChoice(model=model) if model else None

    def tools(self) -> list[str]:
        return [tool for tool, _name in TOOLS if self.tool_choice(tool) is not None]


def tool_name(tool: str) -> str:
    """What the pages call `tool`."""
    return dict(TOOLS).get(tool, tool)


def current_choice(
    settings: config.Settings, configured: Mapping[str, ModelChoice]
) -> SetupChoice | None:
    """The choice that the settings and the tools' files hold now: Claude
    Code's tiers from its file, else from the routes of its tier names; Codex's
    and the IDE plugins' model from their files; the load context from the
    settings. None when no tool is configured (a first run)."""
    claude = configured.get("claude-code", ModelChoice())
    routes = {r.model: r.target or "" for r in settings.route}
    tiers = {
        tier: getattr(claude, tier) or claude.model or routes.get(pattern, "")
        for tier, pattern in CLAUDE_TIERS
    }
    choice = SetupChoice(
        codex=configured.get("codex", ModelChoice()).model,
        ide=configured.get("continue", ModelChoice()).model,
        context_length=settings.lmstudio.load_context_length or DEFAULT_CONTEXT,
        **tiers,
    )
    return choice if choice.models() else None


def lmstudio_upstream(settings: config.Settings) -> str | None:
    """The name of the first LM Studio upstream, if any."""
    return next((u.name for u in settings.upstream if u.kind == "lmstudio"), None)


def planned_routes(
    settings: config.Settings, upstream: str, choice: SetupChoice
) -> list[dict[str, Any]]:
    """The routes after setup: the chosen ones first, the others kept."""
    new: list[dict[str, Any]] = []
    for tier, pattern in CLAUDE_TIERS:
        model = getattr(choice, tier)
        if model:
            new.append({"model": pattern, "upstream": upstream, "target": model})
    for model in choice.models():
        new.append({"model": model, "upstream": upstream})
    patterns = {route["model"] for route in new}
    kept = [msgspec.to_builtins(r) for r in settings.route if r.model not in patterns]
    return new + kept


def planned_changes(
    settings: config.Settings, choice: SetupChoice, source: str = "<setup>"
) -> dict[tuple[str, ...], Any]:
    """Setup's change to the settings file, as key paths (the settings
    store's form): the routes, then the load context, with the minimum
    context no higher than it (only the values that differ from
    `settings`). ConfigError without an LM Studio upstream."""
    upstream = lmstudio_upstream(settings)
    if upstream is None:
        raise config.ConfigError(
            f"{source}: no LM Studio upstream is configured — add one in Settings"
        )
    lm = settings.lmstudio
    wanted = {
        "manage": True,
        "load_context_length": choice.context_length,
        "min_context": min(lm.min_context, choice.context_length),
    }
    changes: dict[tuple[str, ...], Any] = {
        ("route",): planned_routes(settings, upstream, choice)
    }
    # Only what differs: a value that already holds is not written again.
    changes.update(
        {
            ("lmstudio", key): value
            for key, value in wanted.items()
            if getattr(lm, key) != value
        }
    )
    return changes


def planned_settings(
    settings: config.Settings, choice: SetupChoice, source: str = "<setup>"
) -> config.Settings:
    """`settings` with setup's routes and load context; ConfigError if bad."""
    nested: dict[str, Any] = {}
    for path, value in planned_changes(settings, choice, source).items():
        if len(path) == 1:
            nested[path[0]] = value
        else:
            nested.setdefault(path[0], {})[path[1]] = value
    return merged(settings, nested, source)


@dataclass(frozen=True)
class ToolPlan:
    """One tool's config change, or why it cannot be written."""

    tool: str
    name: str
    plan: WritePlan | None
    problem: str = ""


def tool_plans(
    settings: config.Settings, choice: SetupChoice, home: Path | None = None
) -> list[ToolPlan]:
    """The config merge of every chosen tool (nothing is written)."""
    names = dict(TOOLS)
    plans = []
    for tool in choice.tools():
        tool_choice = choice.tool_choice(tool)
        try:
            plan = integrations.plan_write(tool, settings, tool_choice, home=home)
        except IntegrationError as exc:
            plans.append(ToolPlan(tool, names[tool], None, str(exc)))
            continue
        plans.append(ToolPlan(tool, names[tool], plan))
    return plans


def tool_to_test(choice: SetupChoice) -> str | None:
    """The tool whose request tests the setup: the first one chosen."""
    tools = choice.tools()
    return tools[0] if tools else None
