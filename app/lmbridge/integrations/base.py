"""What the Integrations panel shows for one tool, and what its writers return.

Plain frozen dataclasses, no Qt: the GUI renders them, `lmbridge integrate`
prints them, the tests compare them.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from lmbridge import config
from lmbridge.core.errors import IntegrationError as IntegrationError  # re-exported

# The inbound protocol a tool speaks (the names of protocols.registry).
ClientProtocol = Literal["anthropic", "openai", "responses", "gemini"]

PROTOCOL_NAMES: dict[ClientProtocol, str] = {
    "anthropic": "Anthropic Messages",
    "openai": "OpenAI Chat Completions",
    "responses": "OpenAI Responses",
    "gemini": "Gemini API",
}

# What tools send as their key when the proxy checks none: any value works,
# and some tools refuse to start without one.
PLACEHOLDER_KEY = "lmbridge"
# The variable a generated config names when the proxy's token is set
# literally (server.access_token) rather than through access_token_env.
TOKEN_ENV_FALLBACK = "LMBRIDGE_ACCESS_TOKEN"


@dataclass(frozen=True)
class Endpoint:
    """How a client on this machine reaches the proxy."""

    root: str  # http://127.0.0.1:4680, no trailing slash
    token: str = ""  # the access token clients must send ("" for none)
    token_env: str = ""  # the variable holding it, if configured that way

    @classmethod
    def from_settings(cls, settings: config.Settings) -> Endpoint:
        server = settings.server
        return cls(
            root=f"http://{connect_host(server.host)}:{server.port}",
            token=server.token(),
            token_env=server.access_token_env,
        )

    @property
    def v1(self) -> str:
        """The base URL of tools that want the /v1 prefix (OpenAI style)."""
        return f"{self.root}/v1"

    @property
    def key(self) -> str:
        """The value a tool sends as its API key or bearer token."""
        return self.token or PLACEHOLDER_KEY

    @property
    def key_env(self) -> str:
        """The variable a config file should read the token from ("" if none)."""
        if self.token_env:
            return self.token_env
        return TOKEN_ENV_FALLBACK if self.token else ""


def connect_host(host: str) -> str:
    """The address clients use for a bind address (0.0.0.0 -> 127.0.0.1)."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host or "127.0.0.1"
    if address.is_unspecified:
        return "127.0.0.1" if address.version == 4 else "[::1]"
    return f"[{address}]" if address.version == 6 else str(address)


@dataclass(frozen=True)
class ModelChoice:
    """Models to name in a tool's configuration; empty means "leave unset".

    `model` is the default model of tools that take one (Codex `model`,
    Continue, Cline, Void, the SDK examples; Claude Code's ANTHROPIC_MODEL).
    The tiers are Claude Code's opus / sonnet / haiku aliases;
    `small_fast` (ANTHROPIC_SMALL_FAST_MODEL, read by older Claude Code)
    defaults to `haiku`. `context_window` is the models' context window in
    tokens, which tools that compact are told (0: unknown, see context.py).
    """

    model: str = ""
    opus: str = ""
    sonnet: str = ""
    haiku: str = ""
    small_fast: str = ""
    context_window: int = 0


@dataclass(frozen=True)
class Snippet:
    """A block of text the user can copy: shell lines, a config fragment."""

    title: str
    language: str  # sh, powershell, json, toml, yaml, python, text
    text: str


@dataclass(frozen=True)
class Integration:
    """How one tool is pointed at LM Bridge."""

    id: str  # "claude-code"; what `lmbridge integrate` takes
    name: str  # "Claude Code"
    protocols: tuple[ClientProtocol, ...]  # the first is the one it uses by default
    base_url: str  # the URL the tool is given
    env: Mapping[str, str] = field(default_factory=dict)
    snippets: tuple[Snippet, ...] = ()
    steps: tuple[str, ...] = ()  # what to click or run, in order
    config_path: Path | None = None  # the file `plan_write` merges into

    @property
    def protocol(self) -> ClientProtocol:
        return self.protocols[0]

    @property
    def protocol_name(self) -> str:
        return PROTOCOL_NAMES[self.protocol]

    @property
    def writable(self) -> bool:
        """Whether LM Bridge can merge its settings into the tool's file."""
        return self.config_path is not None


@dataclass(frozen=True)
class WritePlan:
    """A merge into a tool's config file, computed but not yet written."""

    tool: str
    path: Path
    old_text: str | None  # None: the file does not exist yet
    new_text: str
    notes: tuple[str, ...] = ()  # things the user should know about the merge
    newline: str = "\n"  # the file's line ending, kept when writing

    @property
    def changed(self) -> bool:
        return self.old_text != self.new_text

    def diff(self) -> str:
        """A unified diff from the current file to the merged one."""
        old = (self.old_text or "").splitlines(keepends=True)
        new = self.new_text.splitlines(keepends=True)
        lines = difflib.unified_diff(
            old,
            new,
            fromfile=str(self.path) if self.old_text is not None else "/dev/null",
            tofile=str(self.path),
        )
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


@dataclass(frozen=True)
class Configured:
    """What a tool's own files point at now, read back from them.

    `base_url` is the URL the tool sends to ("" when the files name none,
    i.e. the tool's own default), `choice` the models they name, so the
    Integrations page and the setup wizard start from what is configured.
    """

    tool: str
    path: Path
    base_url: str
    choice: ModelChoice

    def points_at(self, endpoint: Endpoint) -> bool:
        """Whether the tool reaches the proxy at `endpoint`."""
        return self.base_url.rstrip("/") in (endpoint.root, endpoint.v1)


@dataclass(frozen=True)
class WriteResult:
    """What `write` did: the file, and the copy of the previous one."""

    path: Path
    backup: Path | None  # None when there was no previous file or no change
    changed: bool


def env_snippets(env: Mapping[str, str]) -> tuple[Snippet, ...]:
    """The variables as POSIX shell and PowerShell lines."""
    if not env:
        return ()
    sh = "\n".join(f"export {k}={shlex.quote(v)}" for k, v in env.items())
    ps = "\n".join(f"$env:{k} = {_ps_quote(v)}" for k, v in env.items())
    return (
        Snippet("Environment (bash, zsh)", "sh", sh + "\n"),
        Snippet("Environment (PowerShell)", "powershell", ps + "\n"),
    )


def _ps_quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def json_str(value: str) -> str:
    """`value` as a JSON string, which is also a TOML basic string and YAML."""
    return json.dumps(value, ensure_ascii=False)
