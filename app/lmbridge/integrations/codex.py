"""Codex CLI: a model provider in ~/.codex/config.toml.

Codex speaks the Responses API to a provider defined as a
`[model_providers.<id>]` table (name, base_url with /v1, wire_api =
"responses", env_key naming the variable that holds the key, if any) and
selected by the root key `model_provider`. The ids openai, ollama and
lmstudio are built in and cannot be redefined, hence `lmbridge`. When the
model's context window is known, the root keys `model_context_window` and
`model_auto_compact_token_limit` (80% of it) make Codex compact before a
local model overflows; for a model it has no metadata for, Codex otherwise
assumes a far larger window.

The merge edits the file with tomlkit: only our root keys and our provider
table change; the user's comments, order, quoting and other tables stay as
they were, inline tables and dotted keys included.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError
from tomlkit.toml_document import TOMLDocument

from lmbridge.integrations import files
from lmbridge.integrations.base import (
    Configured,
    Endpoint,
    Integration,
    IntegrationError,
    ModelChoice,
    Snippet,
    WritePlan,
    env_snippets,
    json_str,
)
from lmbridge.integrations.context import compact_limit

ID = "codex"
PROVIDER_ID = "lmbridge"


def config_path(home: Path | None = None, env: Mapping[str, str] | None = None) -> Path:
    """~/.codex/config.toml, or $CODEX_HOME/config.toml when that is set."""
    env = os.environ if env is None else env
    if home is None and env.get("CODEX_HOME"):
        return Path(env["CODEX_HOME"]) / "config.toml"
    return (home or Path.home()) / ".codex" / "config.toml"


def provider_table(endpoint: Endpoint) -> dict[str, str | None]:
    """Our provider's managed keys; None means "remove the key"."""
    return {
        "name": "LM Bridge",
        "base_url": endpoint.v1,
        "wire_api": "responses",
        "env_key": endpoint.key_env or None,
    }


def root_keys(choice: ModelChoice) -> dict[str, str | int]:
    keys: dict[str, str | int] = {"model_provider": PROVIDER_ID}
    if choice.model:
        keys["model"] = choice.model
    if choice.context_window:
        keys["model_context_window"] = choice.context_window
        keys["model_auto_compact_token_limit"] = compact_limit(choice.context_window)
    return keys


def _value(value: str | int) -> str:
    """A root key's value as TOML."""
    return str(value) if isinstance(value, int) else json_str(value)


def fragment(endpoint: Endpoint, choice: ModelChoice) -> str:
    """The TOML that `merge` puts into config.toml, as a snippet."""
    lines = [f"{k} = {_value(v)}" for k, v in root_keys(choice).items()]
    lines += ["", f"[model_providers.{PROVIDER_ID}]"]
    lines += [f"{k} = {json_str(v)}" for k, v in provider_table(endpoint).items() if v]
    return "\n".join(lines) + "\n"


def describe(
    endpoint: Endpoint, choice: ModelChoice, home: Path | None = None
) -> Integration:
    path = config_path(home)
    env = {endpoint.key_env: endpoint.key} if endpoint.key_env else {}
    steps = [
        f"Merge the provider into {path} (`lmbridge integrate {ID} --write`).",
        "Run `codex`; with `-m MODEL` (or `model` in config.toml) it asks LM "
        "Bridge for that model, routed like any other name.",
    ]
    if env:
        steps.insert(1, f"Export {endpoint.key_env} (the proxy's access token).")
    return Integration(
        id=ID,
        name="Codex CLI",
        protocols=("responses",),
        base_url=endpoint.v1,
        env=env,
        snippets=(
            Snippet(str(path), "toml", fragment(endpoint, choice)),
            *env_snippets(env),
        ),
        steps=tuple(steps),
        config_path=path,
    )


def _parse(text: str | None, path: Path) -> TOMLDocument:
    try:
        return tomlkit.parse(text or "")
    except TOMLKitError as exc:
        raise IntegrationError(f"{path} is not valid TOML ({exc})") from exc


def _provider(document: TOMLDocument, path: Path) -> Any:
    """Our `[model_providers.lmbridge]` table, created if missing."""
    providers: Any = document.get("model_providers")
    if providers is None:
        providers = tomlkit.table(is_super_table=True)
        document["model_providers"] = providers
    if not isinstance(providers, MutableMapping):
        raise IntegrationError(f"{path}: model_providers must be a table")
    ours = providers.get(PROVIDER_ID)
    if ours is None:
        ours = tomlkit.table()
        providers[PROVIDER_ID] = ours
    if not isinstance(ours, Mapping):
        raise IntegrationError(f"{path}: model_providers.{PROVIDER_ID} must be a table")
    return ours


def merge(
    text: str | None, endpoint: Endpoint, choice: ModelChoice, path: Path
) -> tuple[str, tuple[str, ...]]:
    """The merged config.toml and notes for the user."""
    document = _parse(text, path)
    for key, value in root_keys(choice).items():
        if document.get(key) != value:
            document[key] = value
    ours = _provider(document, path)
    for key, wanted in provider_table(endpoint).items():
        if wanted is None:
            if key in ours:
                del ours[key]
        elif ours.get(key) != wanted:
            ours[key] = wanted
    return document.as_string(), ()


def current(home: Path | None = None) -> Configured | None:
    """What Codex's config.toml points at now: the selected provider's
    base_url ("" for a built-in one) and model; None without a file."""
    path = config_path(home)
    try:
        text = files.read_text(path)
        data = tomllib.loads(text or "")
    except (tomllib.TOMLDecodeError, IntegrationError):
        return None
    if text is None:
        return None
    providers = data.get("model_providers", {})
    selected = data.get("model_provider", "openai")
    provider = providers.get(selected) if isinstance(providers, dict) else None
    base_url = provider.get("base_url", "") if isinstance(provider, dict) else ""
    window = data.get("model_context_window", 0)
    choice = ModelChoice(
        model=str(data.get("model", "")),
        context_window=window if isinstance(window, int) else 0,
    )
    return Configured(tool=ID, path=path, base_url=str(base_url), choice=choice)


def plan(
    endpoint: Endpoint, choice: ModelChoice, home: Path | None = None
) -> WritePlan:
    path = config_path(home)
    old = files.read_text(path)
    new, notes = merge(old, endpoint, choice, path)
    previous = tomllib.loads(old).get("model_provider") if old else None
    if previous not in (None, PROVIDER_ID):
        notes += (
            f"model_provider changes from {previous!r}: Codex will use LM Bridge "
            f"by default (`codex -c model_provider={previous}` for the old one)",
        )
    return WritePlan(
        tool=ID,
        path=path,
        old_text=old,
        new_text=new,
        notes=notes,
        newline=files.detect_newline(path),
    )
