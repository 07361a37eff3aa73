"""Freeform (`custom`) tools carried as functions with one string argument.

A Responses `custom` tool takes raw text (Codex's `apply_patch` takes a
patch), optionally constrained by a grammar. Chat and Messages upstreams
only have JSON-argument functions, and LM Bridge cannot enforce a grammar,
so upstream the tool is a function whose one argument, `input`
(`ir.CUSTOM_INPUT`), is a string; its description gives the grammar as
text. The model's `{"input": "..."}` becomes the client's `input` again:
whole (`input_from`), or piece by piece while the arguments stream in
(`InputStream`), for `response.custom_tool_call_input.delta` events.
"""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec

from lmbridge.core import ir
from lmbridge.core.errors import DECODE_ERRORS
from lmbridge.protocols.jsonutil import parse_json_object

_HEAD = re.compile(r'\s*\{\s*"' + ir.CUSTOM_INPUT + r'"\s*:\s*"')
_HEAD_TEXT = '{"' + ir.CUSTOM_INPUT + '":"'
_HIGH_SURROGATE_STARTS = frozenset({"d8", "d9", "da", "db"})


def parameters() -> dict[str, Any]:
    """The JSON Schema of the function a freeform tool becomes."""
    return {
        "type": "object",
        "properties": {
            ir.CUSTOM_INPUT: {
                "type": "string",
                "description": "The tool's whole input, as raw text (not JSON).",
            }
        },
        "required": [ir.CUSTOM_INPUT],
        "additionalProperties": False,
    }


def description(text: str, syntax: str | None, definition: str | None) -> str:
    """The tool's description, saying what its `input` must be."""
    lines = [text.strip()] if text.strip() else []
    if definition:
        kind = f"{syntax} grammar" if syntax else "grammar"
        lines.append(
            f"Pass the whole input as the `{ir.CUSTOM_INPUT}` string; it must"
            f" match this {kind}:\n{definition.strip()}"
        )
    else:
        lines.append(f"Pass the whole input as the `{ir.CUSTOM_INPUT}` string.")
    return "\n\n".join(lines)


def arguments_for(text: str) -> str:
    """A client's freeform input as the function's JSON arguments."""
    return msgspec.json.encode({ir.CUSTOM_INPUT: text}).decode()


def input_from(arguments: str) -> str:
    """The freeform input in the model's JSON arguments.

    The `input` string; else the only string argument (a model that named
    it differently); else the arguments text itself (a model that wrote the
    raw input instead of JSON).
    """
    value = parse_json_object(arguments)
    if value is None:
        value = _lenient_object(arguments)
    if value is None:
        return arguments
    found = value.get(ir.CUSTOM_INPUT)
    if isinstance(found, str):
        return found
    strings = [v for v in value.values() if isinstance(v, str)]
    if len(strings) == 1 and len(value) == 1:
        return strings[0]
    return arguments if value else ""


class InputStream:
    """Follows streamed JSON arguments `{"input": "...` and gives the input
    text decoded so far; anything else is held until `finish`."""

    def __init__(self) -> None:
        self._head = ""  # arguments before the string's opening quote
        self._body = ""  # the string's raw body not yet decoded
        self._inside = False
        self._stopped = False  # the string ended, or the shape is another
        self.sent = ""  # the input text handed out so far

    def feed(self, chunk: str) -> str:
        """The input text `chunk` completes (often "")."""
        if self._stopped:
            return ""
        if not self._inside:
            self._head += chunk
            match = _HEAD.match(self._head)
            if match is None:
                if not _could_open(self._head):
                    self._stopped = True
                return ""
            self._inside = True
            chunk = self._head[match.end() :]
        self._body += chunk
        return self._decode()

    def finish(self, arguments: str) -> tuple[str, str]:
        """The whole input, and the part of it not yet handed out."""
        final = input_from(arguments)
        rest = final[len(self.sent) :] if final.startswith(self.sent) else ""
        self.sent = final
        return final, rest

    def _decode(self) -> str:
        size, ended = _decodable(self._body)
        body = self._body[:size]
        self._body = self._body[size:]
        self._stopped = ended
        text = _lenient_string(body)
        if text is None:
            self._stopped = True  # not JSON string text: `finish` decides
            return ""
        self.sent += text
        return text


def _lenient_object(text: str) -> dict[str, Any] | None:
    """JSON object text that holds raw control characters in its strings
    (as some models write newlines), or None."""
    try:
        value = json.loads(text, strict=False)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _lenient_string(body: str) -> str | None:
    """A JSON string's raw body decoded, raw control characters allowed."""
    try:
        return msgspec.json.decode(f'"{body}"'.encode(), type=str)
    except DECODE_ERRORS:
        pass
    try:
        value = json.loads(f'"{body}"', strict=False)
    except ValueError:
        return None
    return value if isinstance(value, str) else None


def _could_open(head: str) -> bool:
    """Whether `head` may still grow into `{"input": "`."""
    compact = "".join(head.split())
    return _HEAD_TEXT.startswith(compact)


def _decodable(body: str) -> tuple[int, bool]:
    """How much of a JSON string's raw `body` decodes now, and whether an
    unescaped quote ends the string there. An escape cut off at the end,
    or a high surrogate whose low half has not arrived, waits."""
    pos, size = 0, len(body)
    while pos < size:
        char = body[pos]
        if char == '"':
            return pos, True
        if char != "\\":
            pos += 1
            continue
        if pos + 1 >= size:
            break
        if body[pos + 1] != "u":
            pos += 2
            continue
        if pos + 6 > size:
            break
        high = body[pos + 2 : pos + 4].lower() in _HIGH_SURROGATE_STARTS
        if high and pos + 12 > size:
            break
        pos += 6
    return pos, False
