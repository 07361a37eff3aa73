"""Server-sent events framing: an incremental parser and a formatter."""

from __future__ import annotations

from typing import NamedTuple


class SSEEvent(NamedTuple):
    event: str
    data: bytes


class SSEParser:
    """Splits a byte stream into SSE events; `feed()` keeps partial frames.

    Accepts LF, CRLF and CR line endings, `event:` and multi-line `data:`
    fields, and ignores comments and `id:`/`retry:` fields.
    """

    __slots__ = ("_buf", "_data", "_event")

    def __init__(self) -> None:
        self._buf = b""
        self._event = ""
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" in buf:
            held = buf.endswith(b"\r")  # its "\n" may come in the next chunk
            if held:
                buf = buf[:-1]
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if held:
                lines = buf.split(b"\n")
                self._buf = lines.pop() + b"\r"
                return self._lines(lines)
        lines = buf.split(b"\n")
        self._buf = lines.pop()
        return self._lines(lines)

    def _lines(self, lines: list[bytes]) -> list[SSEEvent]:
        out: list[SSEEvent] = []
        for line in lines:
            if not line:
                if self._data or self._event:
                    out.append(SSEEvent(self._event, b"\n".join(self._data)))
                self._event = ""
                self._data = []
                continue
            if line[0] == 58:  # ":" comment
                continue
            name, _, value = line.partition(b":")
            if value[:1] == b" ":
                value = value[1:]
            if name == b"data":
                self._data.append(value)
            elif name == b"event":
                self._event = value.decode("utf-8", "replace")
        return out

    def flush(self) -> list[SSEEvent]:
        """The input ended: emit a last event that lacked its blank line."""
        if self._buf.endswith(b"\r"):
            self._buf = self._buf[:-1]
        return self.feed(b"\n\n") if self._buf or self._data else []


def frame(data: bytes, event: str | None = None) -> bytes:
    """One SSE frame with an optional event name."""
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"
