"""The Cline CLI: its OpenAI Compatible provider in providers.json.

~/.cline/data/settings/providers.json holds what `cline auth -p openai
-b URL -k KEY -m MODEL` writes: `providers["openai-compatible"].settings`
(provider, apiKey, model,
baseUrl with /v1), an `updatedAt` stamp (without one Cline takes the entry
for unset and falls back to its own provider) and `lastUsedProvider`,
which makes it the default. Edited in place (json_edit): other providers
and the user's formatting stay. $CLINE_PROVIDER_SETTINGS_PATH moves the
file, $CLINE_DATA_DIR its folder.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lmbridge.integrations import files, json_edit
from lmbridge.integrations.base import (
    Configured,
    Endpoint,
    Integration,
    IntegrationError,
    ModelChoice,
    Snippet,
    WritePlan,
)

ID = "cline-cli"
PROVIDER = "openai-compatible"
EXAMPLE_MODEL = "qwen/qwen3-coder-30b"


def config_path(home: Path | None = None, env: Mapping[str, str] | None = None) -> Path:
    """providers.json, where the Cline CLI reads it."""
    env = os.environ if env is None else env
    if home is None and env.get("CLINE_PROVIDER_SETTINGS_PATH"):
        return Path(env["CLINE_PROVIDER_SETTINGS_PATH"])
    if home is None and env.get("CLINE_DATA_DIR"):
        return Path(env["CLINE_DATA_DIR"]) / "settings" / "providers.json"
    return (home or Path.home()) / ".cline" / "data" / "settings" / "providers.json"


def settings(endpoint: Endpoint, choice: ModelChoice) -> dict[str, str]:
    """The provider's settings, as `cline auth -p openai` writes them."""
    return {
        "provider": PROVIDER,
        "apiKey": endpoint.key,
        "model": choice.model or EXAMPLE_MODEL,
        "baseUrl": endpoint.v1,
    }


def describe(
    endpoint: Endpoint, choice: ModelChoice, home: Path | None = None
) -> Integration:
    path = config_path(home)
    values = settings(endpoint, choice)
    command = (
        f"cline auth -p openai -b {values['baseUrl']} -k {values['apiKey']} "
        f"-m {values['model']}\n"
    )
    return Integration(
        id=ID,
        name="Cline CLI",
        protocols=("openai",),
        base_url=endpoint.v1,
        snippets=(Snippet("Shell", "sh", command),),
        steps=(
            f"Set the OpenAI Compatible provider in {path} "
            f"(`lmbridge integrate {ID} --write`), or run the `cline auth` line.",
            'Run `cline "your task"` (or `cline -i` for its terminal UI).',
        ),
        config_path=path,
    )


def _load(text: str | None, path: Path) -> dict[str, Any]:
    return json_edit.load_object(text, path, members={"providers": dict})


def _merge(
    text: str | None, endpoint: Endpoint, choice: ModelChoice, path: Path, now: str
) -> str:
    """`text` with our provider's settings and the default set to it."""
    values = settings(endpoint, choice)
    if text is None or not text.strip():
        data: dict[str, Any] = {
            "version": 1,
            "lastUsedProvider": PROVIDER,
            "providers": {
                PROVIDER: {
                    "settings": values,
                    "updatedAt": now,
                    "tokenSource": "manual",
                }
            },
        }
        return json.dumps(data, indent=2) + "\n"
    data = _load(text, path)
    entry = data.get("providers", {}).get(PROVIDER, {})
    if not isinstance(entry, dict):
        raise IntegrationError(f"{path}: providers.{PROVIDER} must be an object")
    where = ("providers", PROVIDER)
    for key, value in values.items():
        text = json_edit.set_member(text, (*where, "settings"), key, value)
    if entry.get("settings") != values or "updatedAt" not in entry:
        text = json_edit.set_member(text, where, "updatedAt", now)
    text = json_edit.set_member(text, (), "lastUsedProvider", PROVIDER)
    return text if text.endswith("\n") else text + "\n"


def merge(
    text: str | None, endpoint: Endpoint, choice: ModelChoice, path: Path, now: str
) -> str:
    """`text` with our provider's settings and the default set to it."""
    try:
        return _merge(text, endpoint, choice, path, now)
    except ValueError as exc:  # json_edit: a value of ours has the wrong kind
        raise IntegrationError(f"{path}: {exc}") from exc


def current(home: Path | None = None) -> Configured | None:
    """The OpenAI Compatible provider's base URL and model, or None."""
    path = config_path(home)
    try:
        data = _load(files.read_text(path), path)
    except IntegrationError:
        return None
    entry = (data.get("providers") or {}).get(PROVIDER)
    values = entry.get("settings") if isinstance(entry, dict) else None
    if not isinstance(values, dict):
        return None
    return Configured(
        tool=ID,
        path=path,
        base_url=str(values.get("baseUrl", "")),
        choice=ModelChoice(model=str(values.get("model", ""))),
    )


def plan(
    endpoint: Endpoint, choice: ModelChoice, home: Path | None = None
) -> WritePlan:
    path = config_path(home)
    old = files.read_text(path)
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    notes: list[str] = []
    previous = _load(old, path).get("lastUsedProvider")
    if previous not in (None, PROVIDER):
        notes.append(
            f"lastUsedProvider changes from {previous!r}: Cline will use LM "
            f"Bridge by default (`cline -P {previous}` for the old one)"
        )
    return WritePlan(
        tool=ID,
        path=path,
        old_text=old,
        new_text=merge(old, endpoint, choice, path, now),
        notes=tuple(notes),
        newline=files.detect_newline(path),
    )
