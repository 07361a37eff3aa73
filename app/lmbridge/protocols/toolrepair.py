"""Turns tool calls that a local model printed as text into real tool calls.

When a request offers tools, small local models often write the call into
their answer instead of using the chat template's tool-call channel. This
filter sits on the IR event stream (after the upstream decoder, before the
front-door encoder) and recognises, in text blocks only:

- `<tool_call>{"name": N, "arguments": {...}}</tool_call>` (Hermes, Qwen);
  `arguments` may also be `parameters`/`input`, or a JSON string; the body
  may instead be a `<function=N>` call;
- `<function=N>{...}</function>` (Llama 3.1) and
  `<function=N><parameter=K>V</parameter>...</function>` (Qwen3-Coder);
- `<N><k>v</k>...</N>` or `<N>v</N>`, where N is an offered tool name (the
  bare value goes to the tool's only parameter if the schema is known,
  else to a parameter named `input`);
- a JSON object at the start of a line: `{"type": "tool_use", "name": N,
  "input": {...}}` or `{"name": N, "arguments": {...}}`, N an offered tool.

Each becomes a TOOL_CALL block (`BlockStart`, one `ToolArgsDelta`,
`BlockStop`) with a generated `call_<24 hex>` id, and `Finish.stop_reason`
becomes `TOOL_USE`. Text outside tool calls is kept; text that only looks
like the start of a call (`<` that may open a known tag, `{` at a line
start that may open a tool-call object) is held back until it is decided,
everything else flows through at once. Output block indexes are sequential.
Without offered tools the filter passes every event through unchanged.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from lmbridge.core import ir
from lmbridge.protocols.jsonutil import INVALID, loads_or_invalid, parse_json_object
from lmbridge.protocols.toolscan import (
    ARGUMENT_KEYS,
    Call,
    Scanner,
    Segment,
    trim_newline,
)

if TYPE_CHECKING:
    from lmbridge.protocols.base import EventFilter


def new_call_id() -> str:
    """A fresh tool-call id in the `call_<24 hex>` style."""
    return "call_" + secrets.token_hex(12)


# ------------------------------------------------------------ event filter


class _TextBlock:
    __slots__ = ("blank", "index", "scanner")

    def __init__(self, scanner: Scanner) -> None:
        self.scanner = scanner
        self.index: int | None = None  # output index once a text block opened
        self.blank = ""  # whitespace waiting for visible text


class ToolCallRepair:
    """Filter over IR events that turns printed tool calls into real ones.

    `tool_names` are the tools the request offered; `schemas` (name ->
    JSON Schema) lets bare tag values find their parameter and typed values
    be decoded. Feed every event in order and call `close()` at the end.
    """

    def __init__(
        self,
        tool_names: Iterable[str],
        schemas: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.tool_names = frozenset(tool_names)
        self._schemas = dict(schemas or {})
        self._next = 0
        self._indexes: dict[int, int] = {}
        self._texts: dict[int, _TextBlock] = {}
        self._calls = 0

    @classmethod
    def for_request(cls, request: ir.Request) -> ToolCallRepair:
        """A filter for the tools (and their schemas) `request` offers."""
        schemas = {tool.name: tool.parameters for tool in request.tools}
        return cls(schemas, schemas)

    def feed(self, event: ir.Event) -> list[ir.Event]:
        """The events to pass on for `event` (possibly none, possibly several)."""
        if not self.tool_names:
            return [event]
        match event:
            case ir.BlockStart(kind=ir.BlockKind.TEXT):
                self._texts[event.index] = _TextBlock(Scanner(self))
                return []
            case ir.TextDelta() if event.index not in self._indexes:
                block = self._texts.get(event.index)
                if block is None:
                    block = self._texts[event.index] = _TextBlock(Scanner(self))
                return self._emit(block, block.scanner.push(event.text))
            case ir.BlockStop() if event.index in self._texts:
                return self._end_text(event.index)
            case ir.BlockStart():
                return [
                    msgspec.structs.replace(event, index=self._new_index(event.index))
                ]
            case (
                ir.TextDelta()
                | ir.ThinkingDelta()
                | ir.SignatureDelta()
                | ir.ToolArgsDelta()
                | ir.BlockStop()
            ):
                index = self._indexes.get(event.index)
                if index is None:
                    index = self._new_index(event.index)
                return [msgspec.structs.replace(event, index=index)]
            case ir.Finish():
                out = self.close()
                if self._calls:
                    event = ir.Finish(ir.StopReason.TOOL_USE, event.usage)
                out.append(event)
                return out
            case ir.StreamError():
                return [*self.close(), event]
            case _:
                return [event]

    def close(self) -> list[ir.Event]:
        """The input ended: release what is held and close open text blocks."""
        out: list[ir.Event] = []
        for index in list(self._texts):
            out += self._end_text(index)
        return out

    # -- building calls (used by the scanner)

    def call_from_object(
        self, obj: dict[str, Any] | None, known_only: bool
    ) -> Call | None:
        """A call from `{"name", "arguments"|"parameters"|"input"}` or None.

        `known_only` (bare JSON in prose) also requires an offered tool name
        and an explicit arguments key.
        """
        if obj is None:
            return None
        function = obj.get("function")
        if isinstance(function, dict) and not known_only:
            obj = function
        name = obj.get("name")
        if not isinstance(name, str) or not name:
            return None
        present = [obj[key] for key in ARGUMENT_KEYS if key in obj]
        if known_only and (name not in self.tool_names or not present):
            return None
        args = present[0] if present else {}
        if isinstance(args, str):
            args = parse_json_object(args)
        if not isinstance(args, dict):
            return None
        return Call(name, msgspec.json.encode(args).decode())

    def call_from_parameters(
        self, name: str, body: str, parameter: re.Pattern[str]
    ) -> Call | None:
        """A call from a tag body: a JSON object, parameter tags or one value."""
        stripped = body.strip()
        args: dict[str, Any] | None
        if stripped.startswith("{"):
            args = parse_json_object(stripped)
        elif params := parameter.findall(body):
            args = {key: self._typed(name, key, value) for key, value in params}
        elif not stripped:
            args = {}
        else:
            key = self._sole_parameter(name) or "input"
            args = {key: self._typed(name, key, stripped)}
        return None if args is None else Call(name, msgspec.json.encode(args).decode())

    def _property(self, tool: str, key: str) -> Mapping[str, Any]:
        props = self._schemas.get(tool, {}).get("properties")
        prop = props.get(key) if isinstance(props, Mapping) else None
        return prop if isinstance(prop, Mapping) else {}

    def _typed(self, tool: str, key: str, raw: str) -> Any:
        """A parameter value: decoded JSON if its schema type is not a string."""
        value = trim_newline(raw)
        kind = self._property(tool, key).get("type")
        if (
            kind is None
            or kind == "string"
            or (isinstance(kind, list) and "string" in kind)
        ):
            return value
        decoded = loads_or_invalid(value.strip())
        return value if decoded is INVALID else decoded

    def _sole_parameter(self, tool: str) -> str | None:
        schema = self._schemas.get(tool, {})
        required = schema.get("required")
        if isinstance(required, list) and len(required) == 1:
            return str(required[0])
        props = schema.get("properties")
        if isinstance(props, Mapping) and len(props) == 1:
            return str(next(iter(props)))
        return None

    # -- output

    def _new_index(self, source: int | None) -> int:
        index = self._next
        self._next += 1
        if source is not None:
            self._indexes[source] = index
        return index

    def _emit(self, block: _TextBlock, segments: list[Segment]) -> list[ir.Event]:
        out: list[ir.Event] = []
        for segment in segments:
            if isinstance(segment, Call):
                if block.index is not None:
                    out.append(ir.BlockStop(block.index))
                    block.index = None
                block.blank = ""
                index = self._new_index(None)
                out += (
                    ir.BlockStart(
                        index, ir.BlockKind.TOOL_CALL, new_call_id(), segment.name
                    ),
                    ir.ToolArgsDelta(index, segment.arguments),
                    ir.BlockStop(index),
                )
                self._calls += 1
            elif block.index is None and not segment.strip():
                block.blank += segment
            else:
                if block.index is None:
                    block.index = self._new_index(None)
                    out.append(ir.BlockStart(block.index, ir.BlockKind.TEXT))
                out.append(ir.TextDelta(block.index, block.blank + segment))
                block.blank = ""
        return out

    def _end_text(self, source: int) -> list[ir.Event]:
        block = self._texts.pop(source)
        out = self._emit(block, block.scanner.push("", final=True))
        if block.index is not None:
            out.append(ir.BlockStop(block.index))
        return out


if TYPE_CHECKING:  # mypy checks that the filter fits the server's contract
    _filter: EventFilter = ToolCallRepair(())
