"""Editing a `.env` file in place: only our variables' lines change.

Qwen Code and Gemini CLI read `~/.qwen/.env` and `~/.gemini/.env` when the
project has no .env of its own. A line `NAME=value` (or `export NAME=...`)
of ours is rewritten where it is; missing names are appended; comments,
blank lines and every other variable stay as the user wrote them.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping

_LINE = re.compile(r"^(\s*(?:export\s+)?)([A-Za-z_][A-Za-z0-9_]*)(\s*=\s*)(.*)$")


def _quoted(value: str) -> str:
    """`value` as a .env value: bare when that is unambiguous."""
    if re.fullmatch(r"[A-Za-z0-9_./:@+\-]*", value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unquoted(raw: str) -> str:
    raw = raw.strip()
    if raw[:1] in ("'", '"'):
        try:
            parts = shlex.split(raw)
        except ValueError:
            return raw.strip("'\"")
        return parts[0] if parts else ""
    return raw.split(" #", 1)[0].strip()


def read(text: str | None) -> dict[str, str]:
    """The variables a .env text sets (the last line of a name wins)."""
    values: dict[str, str] = {}
    for line in (text or "").splitlines():
        if match := _LINE.match(line):
            values[match.group(2)] = _unquoted(match.group(4))
    return values


def merge(text: str | None, wanted: Mapping[str, str]) -> str:
    """`text` with each of `wanted` set, in place where it is already."""
    lines = (text or "").splitlines()
    left = dict(wanted)
    for index, line in enumerate(lines):
        match = _LINE.match(line)
        if match is None or match.group(2) not in wanted:
            continue
        name = match.group(2)
        if _unquoted(match.group(4)) != wanted[name]:
            head, _, eq, _ = match.groups()
            lines[index] = f"{head}{name}{eq}{_quoted(wanted[name])}"
        left.pop(name, None)
    lines += [f"{name}={_quoted(value)}" for name, value in left.items()]
    return "\n".join(lines) + "\n"
