"""Pointing AI tools at LM Bridge: what to set, where, and a writer for files.

The Integrations panel and `lmbridge integrate` use these functions only:

    describe(tool, settings, choice) -> Integration   # env, snippets, steps
    describe_all(settings, choice) -> list[Integration]
    plan_write(tool, settings, choice) -> WritePlan    # old/new text, diff()
    write(plan) -> WriteResult                         # backup + atomic write
    current(tool) -> Configured | None                 # what the tool's files
                                                       # point at now
    build_test_request(tool, settings, choice) -> TestRequest

The writers edit the tools' files in place (tomlkit for Codex's TOML,
ruamel.yaml for Continue's YAML, json_edit for JSON): the user's comments
and formatting stay, only our keys change. `current` reads the files back,
so the Integrations page and the setup wizard start from what is
configured instead of defaults.

Tools: claude-code (Anthropic Messages), codex (Responses), continue
(the IDE extension and the `cn` CLI share its file), opencode, cline-cli,
qwen-code, void, cline and openai-sdk (Chat Completions), gemini-cli
(Gemini API), anthropic-sdk. Claude Code, Codex, Continue, OpenCode and the
Cline CLI have config files LM Bridge merges into, Qwen Code and Gemini
CLI a .env file (envfile.py); Void and the Cline extension are set up in
their own settings UI. `home` relocates the user's home
directory (tests); by default the tools' own variables are honoured
(CLAUDE_CONFIG_DIR, CODEX_HOME, CONTINUE_GLOBAL_DIR).

Claude Code and Codex are also told the context window of their models
(context.py): `choice.context_window` when set, else what the routes say,
with `loaded` giving LM Studio's loaded contexts (the GUI's model service,
or the CLI's look-up).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from lmbridge import config
from lmbridge.integrations import (
    catalog,
    claude_code,
    cline_cli,
    codex,
    continue_dev,
    files,
    gemini_cli,
    opencode,
    qwen_code,
)
from lmbridge.integrations.base import (
    PROTOCOL_NAMES,
    ClientProtocol,
    Configured,
    Endpoint,
    Integration,
    IntegrationError,
    ModelChoice,
    Snippet,
    WritePlan,
    WriteResult,
)
from lmbridge.integrations.context import LoadedContext, ServedWindow, smallest_window
from lmbridge.integrations.testrequest import TestRequest, build

__all__ = [
    "PROTOCOL_NAMES",
    "TOOL_IDS",
    "ClientProtocol",
    "Configured",
    "Endpoint",
    "Integration",
    "IntegrationError",
    "LoadedContext",
    "ModelChoice",
    "ServedWindow",
    "Snippet",
    "TestRequest",
    "WritePlan",
    "WriteResult",
    "build_test_request",
    "current",
    "describe",
    "describe_all",
    "plan_write",
    "with_context_window",
    "write",
]

_Describe = Callable[[Endpoint, ModelChoice, Path | None], Integration]
_Plan = Callable[[Endpoint, ModelChoice, Path | None], WritePlan]

_DESCRIBE: dict[str, _Describe] = {
    claude_code.ID: claude_code.describe,
    codex.ID: codex.describe,
    continue_dev.ID: continue_dev.describe,
    opencode.ID: opencode.describe,
    cline_cli.ID: cline_cli.describe,
    qwen_code.ID: qwen_code.TOOL.describe,
    gemini_cli.ID: gemini_cli.TOOL.describe,
    "void": lambda e, c, h: catalog.void(e, c),
    "cline": lambda e, c, h: catalog.cline(e, c),
    "openai-sdk": lambda e, c, h: catalog.openai_sdk(e, c),
    "anthropic-sdk": lambda e, c, h: catalog.anthropic_sdk(e, c),
}
_CURRENT: dict[str, Callable[[Path | None], Configured | None]] = {
    claude_code.ID: claude_code.current,
    codex.ID: codex.current,
    continue_dev.ID: continue_dev.current,
    opencode.ID: opencode.current,
    cline_cli.ID: cline_cli.current,
    qwen_code.ID: qwen_code.TOOL.current,
    gemini_cli.ID: gemini_cli.TOOL.current,
}
_PLAN: dict[str, _Plan] = {
    claude_code.ID: claude_code.plan,
    codex.ID: codex.plan,
    continue_dev.ID: continue_dev.plan,
    opencode.ID: opencode.plan,
    cline_cli.ID: cline_cli.plan,
    qwen_code.ID: qwen_code.TOOL.plan,
    gemini_cli.ID: gemini_cli.TOOL.plan,
}
# The model each tool asks for when none is chosen (what it sends by itself).
_DEFAULT_TEST_MODEL = {
    claude_code.ID: "claude-sonnet-5-5",
    "anthropic-sdk": "claude-sonnet-5-5",
}

TOOL_IDS: tuple[str, ...] = tuple(_DESCRIBE)


def _check(tool: str) -> None:
    if tool not in _DESCRIBE:
        raise IntegrationError(f"unknown tool {tool!r}; known: {', '.join(TOOL_IDS)}")


def with_context_window(
    tool: str,
    settings: config.Settings,
    choice: ModelChoice,
    loaded: LoadedContext | None = None,
    served: ServedWindow | None = None,
) -> ModelChoice:
    """`choice` with the context window of the models `tool` uses, when
    `choice` names none and the routes know it (0 otherwise)."""
    if choice.context_window:
        return choice
    if tool == claude_code.ID:
        models = [choice.model, choice.opus, choice.sonnet]
        if not any(models):
            models = list(claude_code.DEFAULT_MODELS)
    elif tool == codex.ID:
        models = [choice.model]
    else:
        return choice
    window = smallest_window(settings, models, loaded, served)
    return dataclasses.replace(choice, context_window=window)


def describe(
    tool: str,
    settings: config.Settings,
    choice: ModelChoice | None = None,
    *,
    home: Path | None = None,
    loaded: LoadedContext | None = None,
    served: ServedWindow | None = None,
) -> Integration:
    """How `tool` is pointed at the proxy that `settings` describe."""
    _check(tool)
    endpoint = Endpoint.from_settings(settings)
    choice = with_context_window(
        tool, settings, choice or ModelChoice(), loaded, served
    )
    return _DESCRIBE[tool](endpoint, choice, home)


def describe_all(
    settings: config.Settings,
    choice: ModelChoice | None = None,
    *,
    home: Path | None = None,
    loaded: LoadedContext | None = None,
    served: ServedWindow | None = None,
) -> list[Integration]:
    """Every tool, in the order the panel lists them."""
    return [
        describe(tool, settings, choice, home=home, loaded=loaded, served=served)
        for tool in TOOL_IDS
    ]


def plan_write(
    tool: str,
    settings: config.Settings,
    choice: ModelChoice | None = None,
    *,
    home: Path | None = None,
    loaded: LoadedContext | None = None,
    served: ServedWindow | None = None,
) -> WritePlan:
    """The merge of LM Bridge's settings into `tool`'s config file; nothing
    is written. Raises IntegrationError for tools without a file, or a file
    that cannot be merged (the message names it and why)."""
    _check(tool)
    if tool not in _PLAN:
        raise IntegrationError(
            f"{describe(tool, settings).name} is set up in its own settings; "
            f"`lmbridge integrate {tool}` shows what to enter"
        )
    endpoint = Endpoint.from_settings(settings)
    choice = with_context_window(
        tool, settings, choice or ModelChoice(), loaded, served
    )
    return _PLAN[tool](endpoint, choice, home)


def write(plan: WritePlan) -> WriteResult:
    """Write a plan, keeping a timestamped backup of the previous file."""
    return files.write(plan)


def current(tool: str, *, home: Path | None = None) -> Configured | None:
    """What `tool`'s own config files point at now: the base URL and models
    (`Configured.points_at(endpoint)` says whether that is LM Bridge); None
    when the tool has no file of ours or nothing is configured there."""
    _check(tool)
    reader = _CURRENT.get(tool)
    return reader(home) if reader is not None else None


def build_test_request(
    tool: str,
    settings: config.Settings,
    choice: ModelChoice | None = None,
    *,
    stream: bool = False,
) -> TestRequest:
    """A minimal real request in `tool`'s protocol, to send through the proxy.

    The model is `choice.model` (for Claude Code its sonnet tier first), else
    the name the tool asks for by itself where there is one; otherwise
    IntegrationError asks for a model.
    """
    integration = describe(tool, settings, choice)
    choice = choice or ModelChoice()
    model = choice.model
    if tool == claude_code.ID:
        model = choice.sonnet or choice.model
    model = model or _DEFAULT_TEST_MODEL.get(tool, "")
    if not model:
        raise IntegrationError(f"choose a model to test {integration.name} with")
    return build(
        integration.protocol,
        model,
        Endpoint.from_settings(settings),
        tool=tool,
        stream=stream,
    )
