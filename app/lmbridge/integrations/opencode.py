"""OpenCode: a provider in ~/.config/opencode/opencode.json.

OpenCode reaches OpenAI-compatible servers through a provider entry that
names the `@ai-sdk/openai-compatible` package (bundled with OpenCode), its
`options.baseURL` (the /v1 URL) and `apiKey`, and the models it offers;
`model` ("provider/model") is the default. Ours is `provider.lmbridge`.
The file is edited in place (json_edit): only our provider's values and
the root `model` change, the user's other providers and formatting stay.
OpenCode itself adds a `$schema` key to a config file without one, so a
new file gets it from us.
"""

from __future__ import annotations

import json
import os
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

ID = "opencode"
PROVIDER_ID = "lmbridge"
SCHEMA = "https://opencode.ai/config.json"
EXAMPLE_MODEL = "qwen/qwen3-coder-30b"


def config_path(home: Path | None = None, env: Mapping[str, str] | None = None) -> Path:
    """opencode.json in $XDG_CONFIG_HOME/opencode (~/.config/opencode), or
    the file $OPENCODE_CONFIG names."""
    env = os.environ if env is None else env
    if home is None and env.get("OPENCODE_CONFIG"):
        return Path(env["OPENCODE_CONFIG"])
    if home is None and env.get("XDG_CONFIG_HOME"):
        return Path(env["XDG_CONFIG_HOME"]) / "opencode" / "opencode.json"
    return (home or Path.home()) / ".config" / "opencode" / "opencode.json"


def provider(endpoint: Endpoint, choice: ModelChoice) -> dict[str, Any]:
    """Our provider entry."""
    model = choice.model or EXAMPLE_MODEL
    return {
        "npm": "@ai-sdk/openai-compatible",
        "name": "LM Bridge",
        "options": {"baseURL": endpoint.v1, "apiKey": endpoint.key},
        "models": {model: {"name": model}},
    }


def describe(
    endpoint: Endpoint, choice: ModelChoice, home: Path | None = None
) -> Integration:
    path = config_path(home)
    block = {"provider": {PROVIDER_ID: provider(endpoint, choice)}}
    if choice.model:
        block["model"] = f"{PROVIDER_ID}/{choice.model}"  # type: ignore[assignment]
    return Integration(
        id=ID,
        name="OpenCode",
        protocols=("openai",),
        base_url=endpoint.v1,
        snippets=(Snippet(str(path), "json", json.dumps(block, indent=2) + "\n"),),
        steps=(
            f"Add the provider to {path} (`lmbridge integrate {ID} --write`).",
            f'Run `opencode`, or `opencode run -m {PROVIDER_ID}/MODEL "..."`; '
            "`/models` lists the LM Bridge models named in the file.",
        ),
        config_path=path,
    )


def _load(text: str | None, path: Path) -> dict[str, Any]:
    return json_edit.load_object(
        text,
        path,
        members={"provider": dict},
        hint="OpenCode's comments (JSONC) are not supported here: "
        "add the provider by hand",
    )


def _merge(
    text: str | None, endpoint: Endpoint, choice: ModelChoice, path: Path
) -> str:
    """`text` with our provider (and the default model, if chosen) set."""
    ours = provider(endpoint, choice)
    if text is None or not text.strip():
        data: dict[str, Any] = {"$schema": SCHEMA, "provider": {PROVIDER_ID: ours}}
        if choice.model:
            data["model"] = f"{PROVIDER_ID}/{choice.model}"
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    data = _load(text, path)
    existing = (data.get("provider") or {}).get(PROVIDER_ID)
    if existing is not None and not isinstance(existing, dict):
        raise IntegrationError(f"{path}: provider.{PROVIDER_ID} must be an object")
    where = ("provider", PROVIDER_ID)
    for key in ("npm", "name"):
        text = json_edit.set_member(text, where, key, ours[key])
    for key, value in ours["options"].items():
        text = json_edit.set_member(text, (*where, "options"), key, value)
    for name, entry in ours["models"].items():
        known = ((existing or {}).get("models") or {}).get(name)
        if known is None:
            text = json_edit.set_member(text, (*where, "models"), name, entry)
    if choice.model:
        text = json_edit.set_member(text, (), "model", f"{PROVIDER_ID}/{choice.model}")
    return text if text.endswith("\n") else text + "\n"


def merge(text: str | None, endpoint: Endpoint, choice: ModelChoice, path: Path) -> str:
    """`text` with our provider (and the default model, if chosen) set."""
    try:
        return _merge(text, endpoint, choice, path)
    except ValueError as exc:  # json_edit: a value of ours has the wrong kind
        raise IntegrationError(f"{path}: {exc}") from exc


def current(home: Path | None = None) -> Configured | None:
    """Our provider's base URL and the default model when it is ours; None
    without a file or without our provider."""
    path = config_path(home)
    try:
        data = _load(files.read_text(path), path)
    except IntegrationError:
        return None
    entry = (data.get("provider") or {}).get(PROVIDER_ID)
    if not isinstance(entry, dict):
        return None
    options = entry.get("options") or {}
    default = str(data.get("model", ""))
    model = (
        default.removeprefix(f"{PROVIDER_ID}/")
        if default.startswith(f"{PROVIDER_ID}/")
        else ""
    )
    return Configured(
        tool=ID,
        path=path,
        base_url=str(options.get("baseURL", "")),
        choice=ModelChoice(model=model),
    )


def plan(
    endpoint: Endpoint, choice: ModelChoice, home: Path | None = None
) -> WritePlan:
    path = config_path(home)
    old = files.read_text(path)
    notes: tuple[str, ...] = ()
    if not choice.model:
        notes = (
            f"no model chosen: the provider offers {EXAMPLE_MODEL}; add the "
            "names LM Bridge routes under its `models`",
        )
    return WritePlan(
        tool=ID,
        path=path,
        old_text=old,
        new_text=merge(old, endpoint, choice, path),
        notes=notes,
        newline=files.detect_newline(path),
    )
