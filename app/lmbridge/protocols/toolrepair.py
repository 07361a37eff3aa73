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
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import msgspec

from lmbridge.core import ir

if TYPE_CHECKING:
    from lmbridge.protocols.base import EventFilter

# ------------------------------------------------------------- JSON repair


def _loads(text: str) -> Any:
    try:
        return msgspec.json.decode(text)
    except (msgspec.DecodeError, RecursionError, UnicodeError):
        return _INVALID


_INVALID = object()


def parse_json_object(text: str) -> dict[str, Any] | None:
    """Parse JSON object text, repairing it when the fix is unambiguous.

    Empty text is `{}`. Repairs: text around the object is dropped
    (leading prose, trailing garbage such as `}` or `</tool_call>`); a
    truncated object gets its open string, arrays and objects closed (a
    dangling comma is dropped). Anything else, including valid JSON that is
    not an object, gives None.
    """
    text = text.strip()
    if not text:
        return {}
    value = _loads(text)
    if value is not _INVALID:
        return value if isinstance(value, dict) else None
    start = text.find("{")
    if start < 0:
        return None
    closers: list[str] = []
    in_string = escaped = False
    for pos in range(start, len(text)):
        char = text[pos]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            closers.append("}" if char == "{" else "]")
        elif char in "}]":
            if not closers or closers.pop() != char:
                return None
            if not closers:
                value = _loads(text[start : pos + 1])
                return value if isinstance(value, dict) else None
    candidate = text[start:] + ('"' if in_string else "")
    candidate = candidate.rstrip().removesuffix(",")
    value = _loads(candidate + "".join(reversed(closers)))
    return value if isinstance(value, dict) else None


def new_call_id() -> str:
    """A fresh tool-call id in the `call_<24 hex>` style."""
    return "call_" + secrets.token_hex(12)


# ---------------------------------------------------------- text scanning


class _Call(NamedTuple):
    name: str
    arguments: str


_Segment = str | _Call

_NAME = r"[\w.:\-]+"
_FUNCTION_OPEN = re.compile(rf"<function=({_NAME})>")
_FUNCTION_PARTIAL = re.compile(r"<function=[\w.:\-]{0,128}")
_PARAMETER = re.compile(r"<parameter=([\w.\-]+)>(.*?)</parameter>", re.DOTALL)
_XML_PARAMETER = re.compile(r"<([A-Za-z_][\w.\-]*)>(.*?)</\1>", re.DOTALL)
_WHOLE_FUNCTION = re.compile(rf"<function=({_NAME})>(.*?)(?:</function>)?\Z", re.DOTALL)
_JSON_HEAD = re.compile(r'\{\s*(?:"([^"\\]*)("\s*(?::\s*(?:"([^"\\]*)("?))?)?)?)?')
_ARGUMENT_KEYS = ("arguments", "parameters", "input")


class _Capture:
    """A call being read: what opened it and how far its end was searched."""

    __slots__ = ("body_start", "depth", "end_tag", "kind", "name", "scanned", "state")

    def __init__(self, kind: str, name: str = "", body_start: int = 0) -> None:
        self.kind = kind  # "tool_call" | "function" | "xml" | "json"
        self.name = name
        self.body_start = body_start
        self.end_tag = {"tool_call": "</tool_call>", "function": "</function>"}.get(
            kind, f"</{name}>"
        )
        self.scanned = body_start
        self.depth = 0
        self.state = ""  # JSON scan: "" outside strings, '"' inside, "\\" escaped

    def end(self, buf: str) -> int:
        """The offset just past the call's end in `buf`, or -1 if not there yet."""
        if self.kind != "json":
            found = buf.find(self.end_tag, max(self.body_start, self.scanned))
            self.scanned = max(self.body_start, len(buf) - len(self.end_tag) + 1)
            return -1 if found < 0 else found + len(self.end_tag)
        for pos in range(self.scanned, len(buf)):
            char = buf[pos]
            if self.state == "\\":
                self.state = '"'
            elif self.state == '"':
                if char == "\\":
                    self.state = "\\"
                elif char == '"':
                    self.state = ""
            elif char == '"':
                self.state = '"'
            elif char in "{[":
                self.depth += 1
            elif char in "}]":
                self.depth -= 1
                if self.depth == 0:
                    return pos + 1
        self.scanned = len(buf)
        return -1


class _Scanner:
    """Splits the text of one block into plain text and recognised calls."""

    def __init__(self, repair: ToolCallRepair) -> None:
        self._repair = repair
        self._buf = ""
        self._capture: _Capture | None = None
        self._line_start = True  # only blanks since the last newline

    def push(self, text: str, final: bool = False) -> list[_Segment]:
        """Feed text; `final` marks the end of the block (nothing stays held)."""
        self._buf += text
        out: list[_Segment] = []
        while self._buf:
            if self._capture is None and not self._open(out, final):
                break
            if self._capture is not None and not self._complete(out, final):
                break
        return out

    def _release(self, out: list[_Segment], text: str) -> None:
        if not text:
            return
        newline = text.rfind("\n")
        blank_tail = not text[newline + 1 :].strip()
        self._line_start = blank_tail and (newline >= 0 or self._line_start)
        if out and isinstance(out[-1], str):
            out[-1] += text
        else:
            out.append(text)

    def _open(self, out: list[_Segment], final: bool) -> bool:
        """Release text up to a possible call start; False when input runs out."""
        pos = self._candidate()
        if pos < 0:
            self._release(out, self._buf)
            self._buf = ""
            return False
        self._release(out, self._buf[:pos])
        rest = self._buf = self._buf[pos:]
        decision = self._opener(rest)
        if decision is None:  # undecided: hold it back
            if final:
                self._release(out, rest)
                self._buf = ""
            return False
        if decision is False:
            self._release(out, rest[0])
            self._buf = rest[1:]
            return True
        self._capture = decision
        return True

    def _candidate(self) -> int:
        """Where a call may start: any `<`, or `{` first on its line; else -1."""
        line_start = self._line_start
        for pos, char in enumerate(self._buf):
            if char == "<" or (char == "{" and line_start):
                return pos
            if char == "\n":
                line_start = True
            elif not char.isspace():
                line_start = False
        return -1

    def _opener(self, rest: str) -> _Capture | Literal[False] | None:
        """What `rest` opens: a capture, False (plain text) or None (undecided)."""
        names = self._repair.tool_names
        if rest[0] == "{":
            head = self._json_head(rest)
            return _Capture("json") if head else (None if head is None else False)
        if rest.startswith("<tool_call>"):
            return _Capture("tool_call", "", len("<tool_call>"))
        match = _FUNCTION_OPEN.match(rest)
        if match:
            return _Capture("function", match[1], match.end())
        end = rest.find(">")
        if end > 0 and rest[1:end] in names:
            return _Capture("xml", rest[1:end], end + 1)
        if end < 0 and (
            "<tool_call>".startswith(rest)
            or "<function=".startswith(rest)
            or _FUNCTION_PARTIAL.fullmatch(rest)
            or any(name.startswith(rest[1:]) for name in names)
        ):
            return None
        return False

    def _json_head(self, text: str) -> bool | None:
        """Whether `text` opens a tool-call object; None while undecided."""
        match = _JSON_HEAD.match(text)
        assert match is not None  # the pattern matches any "{"
        key, key_closed, value, value_closed = match.groups()
        if match.end() < len(text) and not value_closed:
            return False  # something other than `{"key": "value"` follows
        if key is None:
            return None
        if not key_closed:
            return None if "type".startswith(key) or "name".startswith(key) else False
        if key not in ("type", "name"):
            return False
        if value is None:
            return None
        targets = ("tool_use",) if key == "type" else self._repair.tool_names
        if not value_closed:
            return None if any(t.startswith(value) for t in targets) else False
        return value in targets

    def _complete(self, out: list[_Segment], final: bool) -> bool:
        """Finish the capture if its end is buffered; False while it is not."""
        capture = self._capture
        assert capture is not None
        end = capture.end(self._buf)
        if end >= 0:
            call = self._parse(capture, self._buf[:end], terminated=True)
        elif final:
            end = len(self._buf)
            call = self._parse(capture, self._buf, terminated=False)
        else:
            return False
        if call is None:
            self._release(out, self._buf[:end])
        else:
            out.append(call)
            self._line_start = True
        self._buf = self._buf[end:]
        self._capture = None
        return True

    def _parse(self, capture: _Capture, text: str, terminated: bool) -> _Call | None:
        """The call in a captured text; unterminated tags count only if explicit."""
        repair = self._repair
        if capture.kind == "json":
            if not terminated:
                return None
            return repair.call_from_object(parse_json_object(text), known_only=True)
        body = text[capture.body_start :]
        if terminated:
            body = body[: -len(capture.end_tag)]
        if capture.kind == "function":
            return repair.call_from_parameters(capture.name, body, _PARAMETER)
        if capture.kind == "xml":
            if not terminated:
                return None
            return repair.call_from_parameters(capture.name, body, _XML_PARAMETER)
        body = body.strip()
        match = _WHOLE_FUNCTION.match(body)
        if match:
            return repair.call_from_parameters(match[1], match[2], _PARAMETER)
        return repair.call_from_object(parse_json_object(body), known_only=False)


# ------------------------------------------------------------ event filter


def _trim_newline(value: str) -> str:
    """Drop one newline on each side, as Qwen-style parameter values carry."""
    return value.removeprefix("\n").removesuffix("\n")


class _TextBlock:
    __slots__ = ("blank", "index", "scanner")

    def __init__(self, scanner: _Scanner) -> None:
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
        return cls(
            (tool.name for tool in request.tools),
            {tool.name: tool.parameters for tool in request.tools},
        )

    def feed(self, event: ir.Event) -> list[ir.Event]:
        """The events to pass on for `event` (possibly none, possibly several)."""
        if not self.tool_names:
            return [event]
        match event:
            case ir.BlockStart(kind=ir.BlockKind.TEXT):
                self._texts[event.index] = _TextBlock(_Scanner(self))
                return []
            case ir.TextDelta() if event.index not in self._indexes:
                block = self._texts.get(event.index)
                if block is None:
                    block = self._texts[event.index] = _TextBlock(_Scanner(self))
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
    ) -> _Call | None:
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
        present = [obj[key] for key in _ARGUMENT_KEYS if key in obj]
        if known_only and (name not in self.tool_names or not present):
            return None
        args = present[0] if present else {}
        if isinstance(args, str):
            args = parse_json_object(args)
        if not isinstance(args, dict):
            return None
        return _Call(name, msgspec.json.encode(args).decode())

    def call_from_parameters(
        self, name: str, body: str, parameter: re.Pattern[str]
    ) -> _Call | None:
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
        return None if args is None else _Call(name, msgspec.json.encode(args).decode())

    def _property(self, tool: str, key: str) -> Mapping[str, Any]:
        props = self._schemas.get(tool, {}).get("properties")
        prop = props.get(key) if isinstance(props, Mapping) else None
        return prop if isinstance(prop, Mapping) else {}

    def _typed(self, tool: str, key: str, raw: str) -> Any:
        """A parameter value: decoded JSON if its schema type is not a string."""
        value = _trim_newline(raw)
        kind = self._property(tool, key).get("type")
        if (
            kind is None
            or kind == "string"
            or (isinstance(kind, list) and "string" in kind)
        ):
            return value
        decoded = _loads(value.strip())
        return value if decoded is _INVALID else decoded

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

    def _emit(self, block: _TextBlock, segments: list[_Segment]) -> list[ir.Event]:
        out: list[ir.Event] = []
        for segment in segments:
            if isinstance(segment, _Call):
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
