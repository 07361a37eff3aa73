"""Finding tool calls in a model's text, as it streams (see toolrepair.py).

`Scanner` takes text as it arrives and cuts it into plain text and `Call`s
in the syntaxes toolrepair.py lists; text that might begin a call is held
until it is decided. The repair filter turns the calls into IR blocks.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal, NamedTuple

from lmbridge.protocols.jsonutil import parse_json_object

if TYPE_CHECKING:
    from lmbridge.protocols.toolrepair import ToolCallRepair


class Call(NamedTuple):
    name: str
    arguments: str


Segment = str | Call

_NAME = r"[\w.:\-]+"
_FUNCTION_OPEN = re.compile(rf"<function=({_NAME})>")
_FUNCTION_PARTIAL = re.compile(r"<function=[\w.:\-]{0,128}")
_PARAMETER = re.compile(r"<parameter=([\w.\-]+)>(.*?)</parameter>", re.DOTALL)
_XML_PARAMETER = re.compile(r"<([A-Za-z_][\w.\-]*)>(.*?)</\1>", re.DOTALL)
_WHOLE_FUNCTION = re.compile(rf"<function=({_NAME})>(.*?)(?:</function>)?\Z", re.DOTALL)
_JSON_HEAD = re.compile(r'\{\s*(?:"([^"\\]*)("\s*(?::\s*(?:"([^"\\]*)("?))?)?)?)?')
ARGUMENT_KEYS = ("arguments", "parameters", "input")
# Where a call may start (`Scanner._candidate`): any `<`, or a `{` with only
# whitespace before it on its line; the second pattern for a buffer that
# begins a line. `[^\S\n]`: whitespace but a newline (re's `\s` is
# str.isspace's set). A search in C, not a loop over every streamed character.
_CANDIDATE = re.compile(r"<|\n[^\S\n]*\{")
_CANDIDATE_AT_LINE_START = re.compile(r"<|(?:\A|\n)[^\S\n]*\{")


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


class Scanner:
    """Splits the text of one block into plain text and recognised calls."""

    def __init__(self, repair: ToolCallRepair) -> None:
        self._repair = repair
        self._buf = ""
        self._capture: _Capture | None = None
        self._line_start = True  # only blanks since the last newline

    def push(self, text: str, final: bool = False) -> list[Segment]:
        """Feed text; `final` marks the end of the block (nothing stays held)."""
        self._buf += text
        out: list[Segment] = []
        while self._buf:
            if self._capture is None and not self._open(out, final):
                break
            if self._capture is not None and not self._complete(out, final):
                break
        return out

    def _release(self, out: list[Segment], text: str) -> None:
        if not text:
            return
        newline = text.rfind("\n")
        blank_tail = not text[newline + 1 :].strip()
        self._line_start = blank_tail and (newline >= 0 or self._line_start)
        if out and isinstance(out[-1], str):
            out[-1] += text
        else:
            out.append(text)

    def _open(self, out: list[Segment], final: bool) -> bool:
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
        pattern = _CANDIDATE_AT_LINE_START if self._line_start else _CANDIDATE
        match = pattern.search(self._buf)
        if match is None:
            return -1
        return match.start() if match[0] == "<" else match.end() - 1

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

    def _complete(self, out: list[Segment], final: bool) -> bool:
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

    def _parse(self, capture: _Capture, text: str, terminated: bool) -> Call | None:
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


def trim_newline(value: str) -> str:
    """Drop one newline on each side, as Qwen-style parameter values carry."""
    return value.removeprefix("\n").removesuffix("\n")
