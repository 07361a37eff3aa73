"""Continue: a model entry in ~/.continue/config.yaml.

Continue reaches OpenAI-compatible servers through `provider: openai` with
`apiBase` (the /v1 URL). `model: AUTODETECT` makes it list the proxy's
/v1/models and offer each. The entry is found again by its name, so running
the merge twice changes nothing and another model adds another entry.

The YAML is edited as text (LM Bridge has no YAML library): only the
`models:` block changes, every other line stays as it was. The old
config.json format, if that is the file Continue uses here, is merged as
JSON.
"""

from __future__ import annotations

import json
import os
import re
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
    json_str,
)

ID = "continue"
AUTODETECT = "AUTODETECT"
ROLES = ("chat", "edit", "apply")

_TOP_KEY = re.compile(r"^([A-Za-z_][\w-]*)\s*:(.*)$")


def config_dir(home: Path | None = None, env: Mapping[str, str] | None = None) -> Path:
    """~/.continue, or $CONTINUE_GLOBAL_DIR when that is set."""
    env = os.environ if env is None else env
    if home is None and env.get("CONTINUE_GLOBAL_DIR"):
        return Path(env["CONTINUE_GLOBAL_DIR"])
    return (home or Path.home()) / ".continue"


def config_path(home: Path | None = None) -> Path:
    """config.yaml; config.json only where that is the file in use."""
    folder = config_dir(home)
    yaml_path = folder / "config.yaml"
    json_path = folder / "config.json"
    if not yaml_path.exists() and json_path.exists():
        return json_path
    return yaml_path


def entry(endpoint: Endpoint, choice: ModelChoice) -> dict[str, Any]:
    """Our model entry, in config.yaml's keys."""
    model = choice.model or AUTODETECT
    return {
        "name": "LM Bridge" if model == AUTODETECT else f"LM Bridge: {model}",
        "provider": "openai",
        "model": model,
        "apiBase": endpoint.v1,
        "apiKey": endpoint.key,
        "roles": list(ROLES),
    }


_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_./:@+-]*")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def yaml_str(value: str) -> str:
    """`value` as a YAML scalar: plain where that reads back as the same
    string, else double-quoted."""
    if (
        _PLAIN.fullmatch(value)
        and value.lower() not in _RESERVED
        and not value.endswith(":")
    ):
        return value
    return json_str(value)


def entry_lines(item: Mapping[str, Any], indent: str) -> list[str]:
    """`item` as one block-sequence entry at `indent`."""
    lines: list[str] = []
    for key, value in item.items():
        lead = f"{indent}- " if not lines else f"{indent}  "
        if isinstance(value, list):
            lines.append(f"{lead}{key}:")
            lines += [f"{indent}    - {yaml_str(str(v))}" for v in value]
        else:
            lines.append(f"{lead}{key}: {yaml_str(str(value))}")
    return lines


def describe(
    endpoint: Endpoint, choice: ModelChoice, home: Path | None = None
) -> Integration:
    path = config_path(home)
    fragment = "models:\n" + "\n".join(entry_lines(entry(endpoint, choice), "  "))
    return Integration(
        id=ID,
        name="Continue",
        protocols=("openai",),
        base_url=endpoint.v1,
        snippets=(Snippet(str(path), "yaml", fragment + "\n"),),
        steps=(
            f"Add the entry to {path} (`lmbridge integrate {ID} --write`).",
            "Continue reloads the file on save; pick the LM Bridge model in "
            "its model menu. AUTODETECT lists every model LM Bridge offers.",
        ),
        config_path=path,
    )


def _scalar(text: str) -> str:
    """The string value of a plain or quoted YAML scalar on one line."""
    text = re.sub(r"\s+#.*$", "", text.strip())
    if text.startswith('"'):
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return text.strip('"')
        return str(value)
    if text.startswith("'") and text.endswith("'") and len(text) >= 2:
        return text[1:-1].replace("''", "'")
    return text


def _is_top_level(line: str) -> bool:
    return bool(line) and not line[0].isspace() and not line.startswith("#")


def merge_yaml(text: str | None, item: Mapping[str, Any], path: Path) -> str:
    """`text` with `item` in its top-level `models:` list (replacing by name)."""
    if text is None or not text.strip():
        head = ["name: Local Config", "version: 1.0.0", "schema: v1", "models:"]
        return "\n".join(head + entry_lines(item, "  ")) + "\n"
    lines = text.splitlines()
    start = None
    for i, line in enumerate(lines):
        match = _TOP_KEY.match(line)
        if match and match.group(1) == "models":
            start = i
            rest = re.sub(r"\s+#.*$", "", match.group(2)).strip()
            if rest == "[]":
                lines[i] = "models:"
            elif rest:
                raise IntegrationError(
                    f"{path}: `models:` is written inline; make it a block list "
                    "(one `- name: ...` entry per model) or add the entry by hand"
                )
            break
    if start is None:
        while lines and not lines[-1].strip():
            lines.pop()
        return "\n".join([*lines, "models:", *entry_lines(item, "  ")]) + "\n"

    end = start + 1
    while end < len(lines) and not (
        _is_top_level(lines[end]) and not lines[end].startswith("-")
    ):
        end += 1
    block = lines[start + 1 : end]
    starts = [i for i, line in enumerate(block) if re.match(r"^\s*-(\s|$)", line)]
    indent = (
        block[starts[0]][: len(block[starts[0]]) - len(block[starts[0]].lstrip())]
        if starts
        else "  "
    )
    starts = [i for i in starts if re.match(rf"^{indent}-(\s|$)", block[i])]
    new_lines = entry_lines(item, indent)
    name_line = re.compile(rf"^{indent}(?:- |  )name\s*:(.*)$")
    for n, first in enumerate(starts):
        last = starts[n + 1] if n + 1 < len(starts) else len(block)
        for line in block[first:last]:
            match = name_line.match(line)
            if match and _scalar(match.group(1)) == item["name"]:
                while last > first + 1 and not _is_content(block[last - 1]):
                    last -= 1
                block[first:last] = new_lines
                lines[start + 1 : end] = block
                return "\n".join(lines) + "\n"
    tail = max((i for i, line in enumerate(block) if _is_content(line)), default=-1)
    block[tail + 1 : tail + 1] = new_lines
    lines[start + 1 : end] = block
    return "\n".join(lines) + "\n"


def _is_content(line: str) -> bool:
    """Not blank and not a comment."""
    return bool(line.strip()) and not line.lstrip().startswith("#")


def merge_json(text: str | None, item: Mapping[str, Any], path: Path) -> str:
    """config.json (the deprecated format): the entry in its `models` list."""
    try:
        data = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise IntegrationError(f"{path} is not valid JSON ({exc.msg})") from exc
    if not isinstance(data, dict) or not isinstance(
        data.setdefault("models", []), list
    ):
        raise IntegrationError(f"{path}: expected an object with a models list")
    legacy = {
        "title": item["name"],
        "provider": item["provider"],
        "model": item["model"],
        "apiBase": item["apiBase"],
        "apiKey": item["apiKey"],
    }
    models: list[Any] = data["models"]
    for i, existing in enumerate(models):
        if isinstance(existing, dict) and existing.get("title") == legacy["title"]:
            models[i] = legacy
            break
    else:
        models.append(legacy)
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def plan(
    endpoint: Endpoint, choice: ModelChoice, home: Path | None = None
) -> WritePlan:
    path = config_path(home)
    old = files.read_text(path)
    item = entry(endpoint, choice)
    if path.suffix == ".json":
        new = merge_json(old, item, path)
        notes: tuple[str, ...] = (
            f"{path.name} is Continue's deprecated format; the entry is added "
            "there because that is the file Continue reads here",
        )
    else:
        new = merge_yaml(old, item, path)
        notes = ()
    return WritePlan(
        tool=ID,
        path=path,
        old_text=old,
        new_text=new,
        notes=notes,
        newline=files.detect_newline(path),
    )
