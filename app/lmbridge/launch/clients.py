"""What each coding CLI needs to run on LM Bridge, for one run only.

One `LaunchClient` per CLI: its binary, the protocol it speaks, the
context it needs at least, and a function that turns the endpoint and
the models (`LaunchModels`) into the environment and leading arguments of
this run (`ClientRun`). Nothing here writes a file of the user's: a client
that reads some settings only from a file gets one in the run's private
temporary directory (`scratch`), named by a variable or a flag, and
`lmbridge launch` removes it afterwards.

What each client is given (researched from each CLI's own source, pinned
versions in docs/launch.md):

- claude (Claude Code): ANTHROPIC_BASE_URL / ANTHROPIC_AUTH_TOKEN, every
  model tier, the subagent model, CLAUDE_CODE_AUTO_COMPACT_WINDOW and
  CLAUDE_CODE_MAX_CONTEXT_TOKENS (the window of a model it does not know),
  and CLAUDE_CODE_ATTRIBUTION_HEADER=0: the attribution block it puts at
  the head of the system prompt differs per conversation and per subagent,
  which defeats a local server's prompt cache across them.
- codex (Codex CLI): `-c` overrides defining a `lmbridge` provider
  (Responses), the model, `model_context_window` and the auto-compaction
  limit; the key in LMBRIDGE_API_KEY.
- gemini (Gemini CLI): GOOGLE_GEMINI_BASE_URL / GEMINI_API_KEY /
  GEMINI_MODEL; the compression threshold, as a fraction of the 1,048,576
  tokens it assumes for a model it does not know, in a system settings file.
- opencode: a `lmbridge` provider (@ai-sdk/openai-compatible) with the
  model's context limit, and model / small_model, in OPENCODE_CONFIG_CONTENT.
- cline (Cline CLI 3): an openai-compatible provider with the context
  window in a providers file (CLINE_PROVIDER_SETTINGS_PATH), `-P`/`-m`.
- qwen (Qwen Code): OPENAI_BASE_URL / OPENAI_API_KEY / OPENAI_MODEL, and
  the context window and fast model in a system settings file.
- continue (Continue CLI, `cn`): a config.yaml with one OpenAI model entry
  (contextLength), given with `--config`.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from lmbridge.integrations.base import ClientProtocol, Endpoint
from lmbridge.integrations.context import compact_limit

# The variable Codex reads the key from (its provider's env_key).
CODEX_KEY_ENV = "LMBRIDGE_API_KEY"
# The window Gemini CLI assumes for a model it has no entry for.
GEMINI_ASSUMED_WINDOW = 1_048_576
# Claude Code refuses a smaller context (its system prompt and tools alone
# take about 20K tokens).
CLAUDE_MIN_CONTEXT = 32768


@dataclass(frozen=True)
class LaunchModels:
    """The models of one run: `model` for the main conversation and
    subagents, `small` for background work (titles, summaries), `window`
    the context window they share (0: unknown)."""

    model: str
    small: str = ""
    window: int = 0

    @property
    def fast(self) -> str:
        """The small model, or the main one when none is chosen."""
        return self.small or self.model


@dataclass(frozen=True)
class ClientRun:
    """What to add for one run: arguments before the user's own, variables
    to set, and variables to remove from the inherited environment."""

    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    unset: tuple[str, ...] = ()


Builder = Callable[[Endpoint, LaunchModels, Path], ClientRun]


@dataclass(frozen=True)
class LaunchClient:
    """One coding CLI `lmbridge launch` can start."""

    id: str  # what `lmbridge launch` takes
    name: str
    binary: str
    package: str  # where it comes from (npm)
    protocol: ClientProtocol | str  # "gemini" for Gemini CLI
    build: Builder
    integration: str  # its id on the Integrations page (`lmbridge integrate`)
    min_context: int = 0  # the least context it works with (0: LM Bridge's)

    def find(self, path: str | None = None) -> str | None:
        """The client's executable on PATH (or `path`), None if not installed."""
        return shutil.which(self.binary, path=path)


def _write_private(path: Path, text: str) -> Path:
    """A file only this user can read (it may hold the access token)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    return path


def claude(endpoint: Endpoint, models: LaunchModels, scratch: Path) -> ClientRun:
    env = {
        "ANTHROPIC_BASE_URL": endpoint.root,
        "ANTHROPIC_AUTH_TOKEN": endpoint.key,
        "ANTHROPIC_MODEL": models.model,
        "ANTHROPIC_DEFAULT_OPUS_MODEL": models.model,
        "ANTHROPIC_DEFAULT_SONNET_MODEL": models.model,
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": models.fast,
        "ANTHROPIC_SMALL_FAST_MODEL": models.fast,
        "CLAUDE_CODE_SUBAGENT_MODEL": models.model,
        "CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY": "1",
        "CLAUDE_CODE_ATTRIBUTION_HEADER": "0",
    }
    if models.window:
        env["CLAUDE_CODE_AUTO_COMPACT_WINDOW"] = str(models.window)
        env["CLAUDE_CODE_MAX_CONTEXT_TOKENS"] = str(models.window)
    # A key of the user's own would be sent to LM Bridge too, and makes
    # Claude Code ask once whether to use it.
    return ClientRun(env=env, unset=("ANTHROPIC_API_KEY",))


def _toml(value: str) -> str:
    return json.dumps(value)


def codex(endpoint: Endpoint, models: LaunchModels, scratch: Path) -> ClientRun:
    provider = "model_providers.lmbridge"
    overrides = [
        f"model_provider={_toml('lmbridge')}",
        f"{provider}.name={_toml('LM Bridge')}",
        f"{provider}.base_url={_toml(endpoint.v1)}",
        f"{provider}.wire_api={_toml('responses')}",
        f"{provider}.env_key={_toml(CODEX_KEY_ENV)}",
        f"model={_toml(models.model)}",
    ]
    if models.window:
        overrides += [
            f"model_context_window={models.window}",
            f"model_auto_compact_token_limit={compact_limit(models.window)}",
        ]
    args = tuple(arg for item in overrides for arg in ("-c", item))
    return ClientRun(args=args, env={CODEX_KEY_ENV: endpoint.key})


def gemini(endpoint: Endpoint, models: LaunchModels, scratch: Path) -> ClientRun:
    env = {
        "GOOGLE_GEMINI_BASE_URL": endpoint.root,
        "GEMINI_API_KEY": endpoint.key,
        "GEMINI_MODEL": models.model,
        "GEMINI_DEFAULT_AUTH_TYPE": "gemini-api-key",
    }
    settings: dict[str, object] = {
        "security": {"auth": {"selectedType": "gemini-api-key"}}
    }
    if models.window:
        fraction = compact_limit(models.window) / GEMINI_ASSUMED_WINDOW
        settings["model"] = {"compressionThreshold": round(min(fraction, 0.9), 4)}
    path = _write_private(scratch / "gemini-settings.json", json.dumps(settings))
    env["GEMINI_CLI_SYSTEM_SETTINGS_PATH"] = str(path)
    return ClientRun(env=env)


def _output_limit(window: int) -> int:
    """The answer length a client reserves within `window`."""
    return min(32768, max(1024, window // 4))


def opencode(endpoint: Endpoint, models: LaunchModels, scratch: Path) -> ClientRun:
    entries: dict[str, dict[str, object]] = {}
    for name in dict.fromkeys((models.model, models.fast)):
        entry: dict[str, object] = {"name": name}
        if models.window:
            entry["limit"] = {
                "context": models.window,
                "output": _output_limit(models.window),
            }
        entries[name] = entry
    config = {
        "provider": {
            "lmbridge": {
                "npm": "@ai-sdk/openai-compatible",
                "name": "LM Bridge",
                "options": {"baseURL": endpoint.v1, "apiKey": endpoint.key},
                "models": entries,
            }
        },
        "model": f"lmbridge/{models.model}",
        "small_model": f"lmbridge/{models.fast}",
    }
    return ClientRun(env={"OPENCODE_CONFIG_CONTENT": json.dumps(config)})


def cline(endpoint: Endpoint, models: LaunchModels, scratch: Path) -> ClientRun:
    settings: dict[str, object] = {
        "provider": "openai-compatible",
        "apiKey": endpoint.key,
        "model": models.model,
        "baseUrl": endpoint.v1,
    }
    if models.window:
        settings["contextWindow"] = models.window
    document = {
        "version": 1,
        "lastUsedProvider": "openai-compatible",
        "modes": {},
        "providers": {
            "openai-compatible": {
                "settings": settings,
                "updatedAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "tokenSource": "manual",
            }
        },
    }
    path = _write_private(scratch / "cline-providers.json", json.dumps(document))
    return ClientRun(
        args=("-P", "openai-compatible", "-m", models.model),
        env={"CLINE_PROVIDER_SETTINGS_PATH": str(path)},
    )


def qwen(endpoint: Endpoint, models: LaunchModels, scratch: Path) -> ClientRun:
    settings: dict[str, object] = {
        "security": {"auth": {"selectedType": "openai"}},
        "model": {"name": models.model},
    }
    if models.small:
        settings["fastModel"] = models.small
    if models.window:
        settings["model"] = {
            "name": models.model,
            "generationConfig": {"contextWindowSize": models.window},
        }
    path = _write_private(scratch / "qwen-settings.json", json.dumps(settings))
    return ClientRun(
        env={
            "OPENAI_BASE_URL": endpoint.v1,
            "OPENAI_API_KEY": endpoint.key,
            "OPENAI_MODEL": models.model,
            "QWEN_DEFAULT_AUTH_TYPE": "openai",
            "QWEN_CODE_SYSTEM_SETTINGS_PATH": str(path),
        }
    )


def continue_cli(endpoint: Endpoint, models: LaunchModels, scratch: Path) -> ClientRun:
    entry: dict[str, object] = {
        "name": f"LM Bridge: {models.model}",
        "provider": "openai",
        "model": models.model,
        "apiBase": endpoint.v1,
        "apiKey": endpoint.key,
        "roles": ["chat", "edit", "apply"],
    }
    if models.window:
        entry["defaultCompletionOptions"] = {"contextLength": models.window}
    config = {"name": "LM Bridge", "version": "1.0.0", "schema": "v1"}
    # JSON is YAML: no YAML writer needed for a file nobody edits.
    text = json.dumps({**config, "models": [entry]}, indent=2) + "\n"
    path = _write_private(scratch / "continue-config.yaml", text)
    return ClientRun(args=("--config", str(path)))


CLIENTS: dict[str, LaunchClient] = {
    client.id: client
    for client in (
        LaunchClient(
            "claude",
            "Claude Code",
            "claude",
            "@anthropic-ai/claude-code",
            "anthropic",
            claude,
            "claude-code",
            min_context=CLAUDE_MIN_CONTEXT,
        ),
        LaunchClient(
            "codex", "Codex CLI", "codex", "@openai/codex", "responses", codex, "codex"
        ),
        LaunchClient(
            "gemini",
            "Gemini CLI",
            "gemini",
            "@google/gemini-cli",
            "gemini",
            gemini,
            "gemini-cli",
        ),
        LaunchClient(
            "opencode",
            "OpenCode",
            "opencode",
            "opencode-ai",
            "openai",
            opencode,
            "opencode",
        ),
        LaunchClient(
            "cline", "Cline CLI", "cline", "cline", "openai", cline, "cline-cli"
        ),
        LaunchClient(
            "qwen",
            "Qwen Code",
            "qwen",
            "@qwen-code/qwen-code",
            "openai",
            qwen,
            "qwen-code",
        ),
        LaunchClient(
            "continue",
            "Continue CLI",
            "cn",
            "@continuedev/cli",
            "openai",
            continue_cli,
            "continue",
        ),
    )
}
CLIENT_IDS: tuple[str, ...] = tuple(CLIENTS)


def installed(path: str | None = None) -> list[tuple[LaunchClient, str]]:
    """The clients found on PATH (or `path`), with their executables."""
    found = []
    for client in CLIENTS.values():
        where = client.find(path)
        if where is not None:
            found.append((client, where))
    return found
