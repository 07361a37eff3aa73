"""How each of the newer coding CLIs is run in the tests: OpenCode, the
Cline CLI, Qwen Code, the Continue CLI (`cn`) and Gemini CLI.

Each is configured only through its environment and files under the run's
own tmp HOME (never the machine's), offline but for LM Bridge: the switches
that turn off telemetry, update checks and usage statistics, and the
harness's `ProxyTrap` for whatever would still try to leave the machine.
`Cli.argv(prompt, resume)` is a non-interactive run; `resume` continues
the latest session of the working directory.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from clients import harness

OPENCODE = harness.BIN / "opencode"
CLINE = harness.BIN / "cline"
QWEN = harness.BIN / "qwen"
CONTINUE = harness.BIN / "cn"
GEMINI = harness.BIN / "gemini"


def missing(tool: Path) -> str | None:
    """Why `tool` cannot run here, or None."""
    if shutil.which("node") is None:
        return "no node on PATH (make sysdeps installs Debian's nodejs)"
    if not tool.exists():
        return f"{tool.name} is not installed in {harness.CLIENTS_DIR} (make clients; needs npm)"
    return None


@dataclass(frozen=True)
class Cli:
    """One CLI: its shell tool (name and the arguments that run `command`),
    how to set it up under `root`, and its non-interactive command line."""

    name: str
    tool: str
    tool_args: Callable[[str], dict[str, object]]
    setup: Callable[[Path, str, str, str], dict[str, str]]  # root, base, proxy, model
    argv: Callable[[str, bool], list[str]]


def _home(env: dict[str, str]) -> Path:
    return Path(env["HOME"])


# ------------------------------------------------------------------ OpenCode


def opencode_config(base_v1: str, model: str) -> dict[str, object]:
    """opencode.json with one OpenAI-compatible provider, `lmbridge`."""
    return {
        "$schema": "https://opencode.ai/config.json",
        "provider": {
            "lmbridge": {
                "npm": "@ai-sdk/openai-compatible",
                "name": "LM Bridge",
                "options": {"baseURL": base_v1, "apiKey": harness.FAKE_KEY},
                "models": {model: {"name": model}},
            }
        },
        "model": f"lmbridge/{model}",
        "autoupdate": False,
        "share": "disabled",
    }


def _opencode_setup(root: Path, base: str, proxy: str, model: str) -> dict[str, str]:
    env = harness.base_env(root, proxy)
    folder = _home(env) / ".config" / "opencode"
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(opencode_config(base + "/v1", model), indent=2)
    (folder / "opencode.json").write_text(text)
    return {
        **env,
        "OPENCODE_DISABLE_MODELS_FETCH": "1",
        "OPENCODE_DISABLE_AUTOUPDATE": "1",
        "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
        "OPENCODE_DISABLE_DEFAULT_PLUGINS": "1",
        "OPENCODE_DISABLE_SHARE": "1",
    }


OPENCODE_CLI = Cli(
    name="opencode",
    tool="bash",
    tool_args=lambda cmd: {"command": cmd, "description": "Run the command"},
    setup=_opencode_setup,
    argv=lambda prompt, resume: [
        str(OPENCODE),
        "run",
        "--auto",
        *(["--continue"] if resume else []),
        prompt,
    ],
)

# OpenCode installs its plugin package into its config folder in the
# background at every start (`@opencode-ai/plugin`, from registry.npmjs.org);
# the install fails behind the trap and the run goes on.
OPENCODE_BACKGROUND = "CONNECT registry.npmjs.org:443 HTTP/1.1"


# ------------------------------------------------------------------ Cline


def cline_providers(base_v1: str, model: str, key: str) -> dict[str, object]:
    """~/.cline/data/settings/providers.json as `cline auth -p openai` writes it."""
    return {
        "version": 1,
        "lastUsedProvider": "openai-compatible",
        "modes": {},
        "providers": {
            "openai-compatible": {
                "settings": {
                    "provider": "openai-compatible",
                    "apiKey": key,
                    "model": model,
                    "baseUrl": base_v1,
                },
                # Without it Cline takes the entry for unset and falls back
                # to its own provider (api.cline.bot).
                "updatedAt": "2026-01-01T00:00:00.000Z",
                "tokenSource": "manual",
            }
        },
    }


def _cline_setup(root: Path, base: str, proxy: str, model: str) -> dict[str, str]:
    env = harness.base_env(root, proxy)
    folder = _home(env) / ".cline" / "data" / "settings"
    folder.mkdir(parents=True, exist_ok=True)
    providers = cline_providers(base + "/v1", model, harness.FAKE_KEY)
    (folder / "providers.json").write_text(json.dumps(providers, indent=2))
    # Without the opt-out Cline sends telemetry to otel.cline.bot and data.cline.bot.
    settings = {"version": 1, "telemetryOptOut": True, "autoUpdateEnabled": False}
    (folder / "global-settings.json").write_text(json.dumps(settings))
    return env


# Even with the opt-out, Cline 3.0.65 connects to data.cline.bot once at
# start (refused by the trap; the run goes on).
CLINE_BACKGROUND = "CONNECT data.cline.bot:443 HTTP/1.1"

CLINE_CLI = Cli(
    name="cline",
    tool="run_commands",
    tool_args=lambda cmd: {"commands": [cmd]},
    setup=_cline_setup,
    # `cline --id SESSION` resumes only interactively (it needs a TTY).
    argv=lambda prompt, resume: [str(CLINE), prompt],
)


# ------------------------------------------------------------------ Qwen Code

QWEN_SETTINGS = {
    "security": {"auth": {"selectedType": "openai"}},
    "privacy": {"usageStatisticsEnabled": False},
    "telemetry": {"enabled": False},
    "general": {"disableAutoUpdate": True, "disableUpdateNag": True},
}


def _qwen_setup(root: Path, base: str, proxy: str, model: str) -> dict[str, str]:
    env = harness.base_env(root, proxy)
    folder = _home(env) / ".qwen"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "settings.json").write_text(json.dumps(QWEN_SETTINGS, indent=2))
    return {
        **env,
        "OPENAI_BASE_URL": base + "/v1",
        "OPENAI_API_KEY": harness.FAKE_KEY,
        "OPENAI_MODEL": model,
        "QWEN_CODE_SUPPRESS_YOLO_WARNING": "1",
    }


QWEN_CLI = Cli(
    name="qwen",
    tool="run_shell_command",
    tool_args=lambda cmd: {"command": cmd},
    setup=_qwen_setup,
    argv=lambda prompt, resume: [
        str(QWEN),
        "--yolo",
        *(["--continue"] if resume else []),
        prompt,
    ],
)


# ------------------------------------------------------------------ Continue


def continue_config(base_v1: str, model: str) -> str:
    """~/.continue/config.yaml with one model at `base_v1`."""
    return (
        "name: Local Config\nversion: 1.0.0\nschema: v1\nmodels:\n"
        f"  - name: LM Bridge\n    provider: openai\n    model: {model}\n"
        f"    apiBase: {base_v1}\n    apiKey: {harness.FAKE_KEY}\n"
        "    roles: [chat, edit, apply]\n"
    )


def _continue_setup(root: Path, base: str, proxy: str, model: str) -> dict[str, str]:
    env = harness.base_env(root, proxy)
    folder = _home(env) / ".continue"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(continue_config(base + "/v1", model))
    return env


CONTINUE_CLI = Cli(
    name="cn",
    tool="Bash",
    tool_args=lambda cmd: {"command": cmd},
    setup=_continue_setup,
    argv=lambda prompt, resume: [
        str(CONTINUE),
        "-p",
        "--auto",
        *(["--resume"] if resume else []),
        prompt,
    ],
)


# ------------------------------------------------------------------ Gemini

GEMINI_SETTINGS = {
    "security": {"auth": {"selectedType": "gemini-api-key"}},
    "privacy": {"usageStatisticsEnabled": False},
    "telemetry": {"enabled": False},
    "general": {"disableAutoUpdate": True, "disableUpdateNag": True},
}


def _gemini_setup(root: Path, base: str, proxy: str, model: str) -> dict[str, str]:
    env = harness.base_env(root, proxy)
    folder = _home(env) / ".gemini"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "settings.json").write_text(json.dumps(GEMINI_SETTINGS, indent=2))
    return {
        **env,
        "GOOGLE_GEMINI_BASE_URL": base,  # no /v1beta: the SDK adds it
        "GEMINI_API_KEY": harness.FAKE_KEY,
        "GEMINI_MODEL": model,
        # Headless runs refuse an untrusted folder otherwise.
        "GEMINI_CLI_TRUST_WORKSPACE": "true",
    }


GEMINI_CLI = Cli(
    name="gemini",
    tool="run_shell_command",
    tool_args=lambda cmd: {"command": cmd},
    setup=_gemini_setup,
    argv=lambda prompt, resume: [
        str(GEMINI),
        "--yolo",
        *(["--resume", "latest"] if resume else []),
        "-p",
        prompt,
    ],
)
