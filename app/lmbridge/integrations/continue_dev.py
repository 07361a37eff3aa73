"""Continue: a model entry in ~/.continue/config.yaml.

The IDE extension and the Continue CLI (`cn`, npm `@continuedev/cli`) read
the same file: `cn` without `--config` uses its models too.

Continue reaches OpenAI-compatible servers through `provider: openai` with
`apiBase` (the /v1 URL). `model: AUTODETECT` makes it list the proxy's
/v1/models and offer each. The entry is found again by its name, so running
the merge twice changes nothing and another model adds another entry.

The YAML is edited round-trip with ruamel.yaml: only our entry of the
`models:` list changes, the user's comments, key order, quoting and
indentation stay. The old config.json format, if that is the file Continue
uses here, is edited in place as JSON (json_edit).
"""

from __future__ import annotations

import io
import itertools
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

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

ID = "continue"
AUTODETECT = "AUTODETECT"
ROLES = ("chat", "edit", "apply")


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


def fragment(item: Mapping[str, Any]) -> str:
    """The `models:` block holding `item`, as YAML to copy."""
    out = io.StringIO()
    yaml = YAML(typ="rt")
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.dump({"models": [dict(item)]}, out)
    return out.getvalue()


def describe(
    endpoint: Endpoint, choice: ModelChoice, home: Path | None = None
) -> Integration:
    path = config_path(home)
    return Integration(
        id=ID,
        name="Continue",
        protocols=("openai",),
        base_url=endpoint.v1,
        snippets=(Snippet(str(path), "yaml", fragment(entry(endpoint, choice))),),
        steps=(
            f"Add the entry to {path} (`lmbridge integrate {ID} --write`).",
            "Continue reloads the file on save; pick the LM Bridge model in "
            "its model menu. AUTODETECT lists every model LM Bridge offers.",
            'The Continue CLI reads the same file: run `cn` (or `cn -p "..."`).',
        ),
        config_path=path,
    )


def _yaml(text: str) -> YAML:
    """A round-trip YAML that writes sequences indented as `text` does."""
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a user's long line
    mapping, sequence, offset = 2, 4, 2
    lines = [
        ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")
    ]
    dash_found = mapping_found = False
    for parent, child in itertools.pairwise(lines):
        if not re.match(r"^\s*[^\s#-][^:]*:\s*(#.*)?$", parent):
            continue
        depth = len(parent) - len(parent.lstrip())
        dash = re.match(r"^(\s*)-(\s+)", child)
        if dash and not dash_found:
            offset = len(dash.group(1)) - depth
            sequence = offset + 1 + len(dash.group(2))
            dash_found = True
        elif not dash and not mapping_found:
            step = len(child) - len(child.lstrip()) - depth
            if step > 0:
                mapping, mapping_found = step, True
        if dash_found and mapping_found:
            break
    yaml.indent(mapping=mapping, sequence=max(sequence, offset + 2), offset=offset)
    return yaml


def merge_yaml(text: str | None, item: Mapping[str, Any], path: Path) -> str:
    """`text` with `item` in its top-level `models:` list (replacing by name)."""
    if text is None or not text.strip():
        head = ["name: Local Config", "version: 1.0.0", "schema: v1", "models:"]
        text = "\n".join(head) + "\n"
    yaml = _yaml(text)
    try:
        data = yaml.load(text)
    except YAMLError as exc:
        raise IntegrationError(f"{path} is not valid YAML ({exc})") from exc
    if not isinstance(data, CommentedMap):
        raise IntegrationError(f"{path} must hold a YAML mapping")
    models = data.get("models")
    if models is None:
        models = data["models"] = CommentedSeq()
    if not isinstance(models, CommentedSeq):
        raise IntegrationError(f"{path}: `models` must be a list")
    if models.fa.flow_style() and not models:  # Continue's `models: []`
        models.fa.set_block_style()
    for existing in models:
        if isinstance(existing, CommentedMap) and existing.get("name") == item["name"]:
            for key in [k for k in existing if k not in item]:
                del existing[key]
            for key, value in item.items():
                if existing.get(key) != value:
                    existing[key] = value
            break
    else:
        models.append(CommentedMap(item))
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def merge_json(text: str | None, item: Mapping[str, Any], path: Path) -> str:
    """config.json (the deprecated format): the entry in its `models` list,
    edited in place (json_edit) so the rest keeps its formatting."""
    data = json_edit.load_object(text, path, members={"models": list})
    legacy = {
        "title": item["name"],
        "provider": item["provider"],
        "model": item["model"],
        "apiBase": item["apiBase"],
        "apiKey": item["apiKey"],
    }
    text = text if text and text.strip() else "{}\n"
    if "models" not in data:
        text = json_edit.set_member(text, (), "models", [legacy])
    else:
        models: list[Any] = data["models"]
        found = next(
            (
                i
                for i, existing in enumerate(models)
                if isinstance(existing, dict)
                and existing.get("title") == legacy["title"]
            ),
            None,
        )
        if found is None:
            text = json_edit.append_item(text, ("models",), legacy)
        else:
            text = json_edit.replace_item(text, ("models",), found, legacy)
    return text if text.endswith("\n") else text + "\n"


def current(home: Path | None = None) -> Configured | None:
    """The LM Bridge entry in Continue's config now (the first one, by its
    name), or None: no file, no entry, unreadable."""
    path = config_path(home)
    try:
        text = files.read_text(path)
        if text is None:
            return None
        data = (
            json.loads(text) if path.suffix == ".json" else YAML(typ="safe").load(text)
        )
    except (IntegrationError, YAMLError, json.JSONDecodeError):
        return None
    models = data.get("models") if isinstance(data, dict) else None
    for entry in models if isinstance(models, list) else []:
        if not isinstance(entry, dict):
            continue
        name = str(entry.get("name") or entry.get("title") or "")
        if name == "LM Bridge" or name.startswith("LM Bridge: "):
            model = str(entry.get("model", ""))
            return Configured(
                tool=ID,
                path=path,
                base_url=str(entry.get("apiBase", "")),
                choice=ModelChoice(model="" if model == AUTODETECT else model),
            )
    return None


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
