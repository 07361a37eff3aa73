"""Editing JSON text in place: only the values we change are rewritten.

`json.dumps(json.loads(text))` re-formats a whole file: a user's one-line
array becomes ten lines, their key order and spacing change. These edits
find the exact span of a value in the text and replace, insert or append
just that, indented like its neighbours, so everything else stays byte for
byte as the user wrote it.

    set_member(text, ("env",), "ANTHROPIC_BASE_URL", "http://...")
    append_item(text, ("models",), {...})
    replace_item(text, ("models",), 2, {...})

A path is a tuple of object keys and array indexes from the top. Objects
on the way that do not exist are created. Raises ValueError for text that
is not JSON, or a path that crosses a value of the wrong kind.

`load_object` is the writers' one reading of a tool's JSON file: what
`files.read_text` gave (None or blank is an empty object), with an
IntegrationError naming the file and the line when it is not JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Any

from lmbridge.integrations.base import IntegrationError

Path = tuple[str | int, ...]

_WS = re.compile(r"[ \t\r\n]*")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")


@dataclass
class Node:
    """A value's span in the text; members (objects) or items (arrays)."""

    start: int
    end: int
    kind: str  # object, array, scalar
    members: dict[str, Node] = field(default_factory=dict)
    key_starts: dict[str, int] = field(default_factory=dict)
    items: list[Node] = field(default_factory=list)


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def ws(self) -> None:
        match = _WS.match(self.text, self.pos)
        self.pos = match.end() if match else self.pos

    def fail(self, what: str) -> ValueError:
        line = self.text.count("\n", 0, self.pos) + 1
        return ValueError(f"line {line}: expected {what}")

    def string(self) -> str:
        decoder = json.JSONDecoder()
        try:
            value, end = decoder.raw_decode(self.text, self.pos)
        except json.JSONDecodeError as exc:
            raise self.fail("a string") from exc
        self.pos = end
        return str(value)

    def value(self) -> Node:
        self.ws()
        start = self.pos
        char = self.text[start : start + 1]
        if char == "{":
            return self.obj(start)
        if char == "[":
            return self.array(start)
        if char == '"':
            self.string()
        elif self.text.startswith(("true", "null"), start):
            self.pos += 4
        elif self.text.startswith("false", start):
            self.pos += 5
        else:
            match = _NUMBER.match(self.text, start)
            if not match or match.end() == start:
                raise self.fail("a value")
            self.pos = match.end()
        return Node(start, self.pos, "scalar")

    def expect(self, char: str) -> None:
        self.ws()
        if self.text[self.pos : self.pos + 1] != char:
            raise self.fail(repr(char))
        self.pos += 1

    def obj(self, start: int) -> Node:
        node = Node(start, start, "object")
        self.pos += 1
        self.ws()
        if self.text[self.pos : self.pos + 1] == "}":
            self.pos += 1
            node.end = self.pos
            return node
        while True:
            self.ws()
            key_start = self.pos
            if self.text[self.pos : self.pos + 1] != '"':
                raise self.fail("a key")
            key = self.string()
            self.expect(":")
            node.members[key] = self.value()
            node.key_starts[key] = key_start
            self.ws()
            if self.text[self.pos : self.pos + 1] == ",":
                self.pos += 1
                continue
            self.expect("}")
            node.end = self.pos
            return node

    def array(self, start: int) -> Node:
        node = Node(start, start, "array")
        self.pos += 1
        self.ws()
        if self.text[self.pos : self.pos + 1] == "]":
            self.pos += 1
            node.end = self.pos
            return node
        while True:
            node.items.append(self.value())
            self.ws()
            if self.text[self.pos : self.pos + 1] == ",":
                self.pos += 1
                continue
            self.expect("]")
            node.end = self.pos
            return node


def parse(text: str) -> Node:
    """The span tree of `text`; ValueError if it is not one JSON value."""
    scanner = _Scanner(text)
    node = scanner.value()
    scanner.ws()
    if scanner.pos != len(text):
        raise scanner.fail("the end of the file")
    return node


def load_object(
    text: str | None,
    path: FilePath,
    *,
    members: Mapping[str, type] | None = None,
    hint: str = "",
) -> dict[str, Any]:
    """The JSON object a tool's file holds; {} for a missing or blank file.

    Raises IntegrationError naming `path` when the text is not JSON (with
    the line, and `hint`: what the user can do), when it is not an object,
    or when a member named in `members` is there with another kind than
    the one given (dict: an object, list: an array).
    """
    if text is None or not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}: {exc.msg}"
        raise IntegrationError(
            f"{path} is not valid JSON ({where}){'; ' + hint if hint else ''}"
        ) from exc
    if not isinstance(data, dict):
        raise IntegrationError(f"{path} must hold a JSON object")
    for name, kind in (members or {}).items():
        if name in data and not isinstance(data[name], kind):
            what = "an object" if kind is dict else "an array"
            raise IntegrationError(f'{path}: "{name}" must be {what}')
    return data


def _line_indent(text: str, pos: int) -> str:
    line_start = text.rfind("\n", 0, pos) + 1
    match = _WS.match(text, line_start)
    lead = text[line_start : match.end() if match else line_start]
    return lead.replace("\r", "").replace("\n", "")


def indent_unit(text: str) -> str:
    """The file's indentation step (two spaces when it cannot tell)."""
    for line in text.splitlines()[1:]:
        stripped = line.lstrip(" \t")
        if stripped and stripped != line:
            lead = line[: len(line) - len(stripped)]
            return "\t" if lead.startswith("\t") else " " * len(lead)
    return "  "


def _dump(value: Any, indent: str, unit: str, newline: str) -> str:
    """`value` as JSON whose continuation lines start at `indent`."""
    text = json.dumps(value, indent=unit, ensure_ascii=False)
    return text.replace("\n", newline + indent)


def _newline(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def _find(root: Node, path: Path) -> Node:
    node = root
    for step in path:
        if isinstance(step, int):
            if node.kind != "array" or not -len(node.items) <= step < len(node.items):
                raise ValueError(f"no item {step} at {path}")
            node = node.items[step]
        else:
            if node.kind != "object" or step not in node.members:
                raise KeyError(step)
            node = node.members[step]
    return node


def _insert(text: str, container: Node, entry: str, unit: str) -> str:
    """Insert `entry` (a member or an item, already rendered for `indent`)
    as the last element of `container`."""
    newline = _newline(text)
    last = (
        max(container.members.values(), key=lambda n: n.end)
        if container.kind == "object" and container.members
        else (container.items[-1] if container.items else None)
    )
    if last is None:
        outer = _line_indent(text, container.start)
        inner = outer + unit
        close = container.end - 1
        body = (
            f"{newline}{inner}{entry.replace(newline, newline + inner)}{newline}{outer}"
        )
        return text[: container.start + 1] + body + text[close:]
    first = (
        min(container.key_starts.values())
        if container.kind == "object"
        else container.items[0].start
    )
    between = text[container.start + 1 : first]
    if "\n" in between:
        inner = _line_indent(text, first)
        glue = f",{newline}{inner}"
    else:
        inner = _line_indent(text, container.start)
        glue = ", "
    rendered = entry.replace(newline, newline + inner)
    return text[: last.end] + glue + rendered + text[last.end :]


def set_member(text: str, path: Path, key: str, value: Any) -> str:
    """`text` with `key` of the object at `path` set to `value`."""
    root = parse(text)
    unit = indent_unit(text)
    newline = _newline(text)
    node = root
    for depth, step in enumerate(path):
        try:
            node = _find(node, (step,))
        except KeyError:
            nested: Any = {key: value}
            for name in reversed(path[depth + 1 :]):
                nested = {name: nested}
            entry = f"{json.dumps(step)}: {_dump(nested, '', unit, newline)}"
            return _insert(text, node, entry, unit)
    if node.kind != "object":
        raise ValueError(f"{'.'.join(map(str, path))} is not an object")
    if key in node.members:
        old = node.members[key]
        if json.loads(text[old.start : old.end]) == value:
            return text
        indent = _line_indent(text, node.key_starts[key])
        return text[: old.start] + _dump(value, indent, unit, newline) + text[old.end :]
    entry = f"{json.dumps(key, ensure_ascii=False)}: {_dump(value, '', unit, newline)}"
    return _insert(text, node, entry, unit)


def append_item(text: str, path: Path, value: Any) -> str:
    """`text` with `value` appended to the array at `path`."""
    root = parse(text)
    node = _find(root, path)
    if node.kind != "array":
        raise ValueError(f"{'.'.join(map(str, path))} is not an array")
    unit = indent_unit(text)
    return _insert(text, node, _dump(value, "", unit, _newline(text)), unit)


def replace_item(text: str, path: Path, index: int, value: Any) -> str:
    """`text` with item `index` of the array at `path` replaced by `value`."""
    node = _find(parse(text), (*path, index))
    if json.loads(text[node.start : node.end]) == value:
        return text
    indent = _line_indent(text, node.start)
    unit = indent_unit(text)
    dumped = _dump(value, indent, unit, _newline(text))
    return text[: node.start] + dumped + text[node.end :]
