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

The merge edits the text, so comments and the layout of the rest of the
file stay as they were; the result is parsed back and compared with the
intended data, and if the file is shaped in a way the text edit does not
handle (inline tables, dotted keys), the file is rewritten from the data
instead, which drops its comments (the plan says so).
"""

from __future__ import annotations

import copy
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomli_w

from lmbridge.integrations import files
from lmbridge.integrations.base import (
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
# Keys of our provider table that LM Bridge manages (set, or removed).
MANAGED_KEYS = ("name", "base_url", "wire_api", "env_key")

_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]*?)\s*\]\]?\s*(#.*)?$")


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


def _is_key_line(line: str, key: str) -> bool:
    return (
        re.match(rf"^\s*(?:{re.escape(key)}|\"{re.escape(key)}\")\s*=", line)
        is not None
    )


def _table_name(line: str) -> str | None:
    match = _HEADER.match(line)
    if not match or line.lstrip().startswith("#"):
        return None
    return re.sub(r"\s*\.\s*", ".", match.group(1)).replace('"', "")


def _text_merge(
    text: str, root: Mapping[str, str | int], table: Mapping[str, str | None]
) -> str:
    lines = text.splitlines()
    headers = [i for i, line in enumerate(lines) if _table_name(line) is not None]
    first_header = headers[0] if headers else len(lines)

    # Root keys: replace in place, else add after the last root setting (its
    # value may span lines, so: after the last line of content before the
    # first table).
    content = [
        i
        for i in range(first_header)
        if lines[i].strip() and not lines[i].lstrip().startswith("#")
    ]
    last_root_key = content[-1] if content else -1
    added: list[str] = []
    for key, value in root.items():
        line = f"{key} = {_value(value)}"
        for i in range(first_header):
            if _is_key_line(lines[i], key):
                lines[i] = line
                break
        else:
            added.append(line)
    if added:
        at = last_root_key + 1 if last_root_key >= 0 else 0
        if last_root_key < 0 and at < len(lines):
            added.append("")
        lines[at:at] = added

    # Our table: edit its managed keys, else append the table.
    want = f"model_providers.{PROVIDER_ID}"
    start = next((i for i, line in enumerate(lines) if _table_name(line) == want), None)
    if start is None:
        block = [f"[{want}]"]
        block += [f"{k} = {json_str(v)}" for k, v in table.items() if v is not None]
        while lines and not lines[-1].strip():
            lines.pop()
        if lines:
            lines.append("")
        lines += block
        return "\n".join(lines) + "\n"
    end = next(
        (i for i in range(start + 1, len(lines)) if _table_name(lines[i]) is not None),
        len(lines),
    )
    body = lines[start + 1 : end]
    for key, wanted in table.items():
        index = next(
            (i for i, line in enumerate(body) if _is_key_line(line, key)), None
        )
        if wanted is None:
            if index is not None:
                del body[index]
            continue
        setting = f"{key} = {json_str(wanted)}"
        if index is not None:
            body[index] = setting
        else:
            last = max((i for i, b in enumerate(body) if b.strip()), default=-1)
            body.insert(last + 1, setting)
    lines[start + 1 : end] = body
    return "\n".join(lines) + "\n"


def merge(
    text: str | None, endpoint: Endpoint, choice: ModelChoice, path: Path
) -> tuple[str, tuple[str, ...]]:
    """The merged config.toml and notes for the user."""
    try:
        data = tomllib.loads(text or "")
    except tomllib.TOMLDecodeError as exc:
        raise IntegrationError(f"{path} is not valid TOML ({exc})") from exc
    root = root_keys(choice)
    table = provider_table(endpoint)
    expected = copy.deepcopy(data)
    expected.update(root)
    providers = expected.setdefault("model_providers", {})
    if not isinstance(providers, dict):
        raise IntegrationError(f"{path}: model_providers must be a table")
    ours: Any = providers.setdefault(PROVIDER_ID, {})
    if not isinstance(ours, dict):
        raise IntegrationError(f"{path}: model_providers.{PROVIDER_ID} must be a table")
    for key, value in table.items():
        if value is None:
            ours.pop(key, None)
        else:
            ours[key] = value
    if not text or not text.strip():
        return _text_merge("", root, table), ()
    merged = _text_merge(text, root, table)
    try:
        if tomllib.loads(merged) == expected:
            return merged, ()
    except tomllib.TOMLDecodeError:
        pass
    return tomli_w.dumps(expected), (
        f"{path} is laid out in a way LM Bridge cannot edit line by line; "
        "it is rewritten from its parsed content, without its comments",
    )


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
