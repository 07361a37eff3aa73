"""Server-sent events framing: the one incremental parser, and a formatter.

Every SSE reader in LM Bridge uses `SSEParser`: the upstream decoders take
its events, and the pass-through relay takes its complete frames as bytes
(to forward them unchanged) together with their events (to check them).
"""

from __future__ import annotations

from typing import NamedTuple


class SSEEvent(NamedTuple):
    event: str
    data: bytes
    # The first line that is no SSE field at all ("" if none): a stream
    # carrying one is not an event stream.
    stray: bytes = b""


class Frames(NamedTuple):
    """Complete frames, as the bytes that made them and as events."""

    raw: bytes
    events: list[tuple[bytes, SSEEvent]]  # (one frame's bytes, its event)


_KNOWN_FIELDS = (b"data", b"event", b"id", b"retry")


def response_headers(content_type: str = "text/event-stream") -> dict[str, str]:
    """The HTTP headers of a streamed answer (relayed or encoded by LM Bridge):
    not cached, not buffered by a proxy in between."""
    return {
        "Content-Type": content_type,
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
    }


class SSEParser:
    """Splits a byte stream into SSE events; `feed()` keeps partial frames.

    Accepts LF, CRLF and CR line endings (frames come out with LF),
    `event:` and multi-line `data:` fields, and ignores comments and
    `id:`/`retry:` fields.
    """

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """The events that `chunk` completes (the decoders' hot path: no
        frame bytes are kept)."""
        complete = self._complete(chunk)
        out: list[SSEEvent] = []
        if not complete:
            return out
        for block in complete.split(b"\n\n"):
            if block[:6] == b"data: " and b"\n" not in block:
                out.append(SSEEvent("", block[6:]))  # the usual one-line frame
            elif block:
                event = _parse(block.lstrip(b"\n"))
                if event is not None:
                    out.append(event)
        return out

    def feed_frames(self, chunk: bytes) -> Frames:
        """The frames that `chunk` completes, with their bytes."""
        complete = self._complete(chunk)
        if not complete:
            return Frames(b"", [])
        complete += b"\n\n"
        return Frames(complete, _frames(complete))

    def _complete(self, chunk: bytes) -> bytes:
        """The complete frames of what has come, without the last blank
        line; the rest is kept for the next chunk."""
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" in buf:
            held = buf.endswith(b"\r")  # its "\n" may come in the next chunk
            buf = buf.replace(b"\r\n", b"\n")
            if held:
                buf = buf[:-1].replace(b"\r", b"\n") + b"\r"
            else:
                buf = buf.replace(b"\r", b"\n")
        cut = buf.rfind(b"\n\n")
        if cut < 0:
            self._buf = buf
            return b""
        self._buf = buf[cut + 2 :]
        return buf[:cut]

    def flush(self) -> list[SSEEvent]:
        """The input ended: emit a last event that lacked its blank line."""
        return [event for _raw, event in self.flush_frames().events]

    def flush_frames(self) -> Frames:
        """`flush()`, with the frame's bytes (ending in a blank line)."""
        rest = self._buf.removesuffix(b"\r").strip(b"\n")
        self._buf = b""
        if not rest:
            return Frames(b"", [])
        complete = rest + b"\n\n"
        return Frames(complete, _frames(complete))


def _frames(complete: bytes) -> list[tuple[bytes, SSEEvent]]:
    """Complete frames (text ending in a blank line) split into events."""
    out: list[tuple[bytes, SSEEvent]] = []
    for block in complete.split(b"\n\n"):  # in C: it runs per relayed read
        if block[:1] == b"\n":
            block = block.lstrip(b"\n")
        if not block:
            continue  # blank lines between frames, or after the last
        event = _parse(block)
        if event is not None:
            out.append((block + b"\n\n", event))
    return out


def _parse(block: bytes) -> SSEEvent | None:
    """One frame's lines as an event (None for a comment-only frame)."""
    if block[:6] == b"data: " and b"\n" not in block:
        # One data line, as nearly every frame of a model's stream is: what
        # `_parse_lines` makes of it, without the loop (it runs per frame).
        return SSEEvent("", block[6:], b"")
    return _parse_lines(block)


def _parse_lines(block: bytes) -> SSEEvent | None:
    """`_parse`, line by line: any frame."""
    name = ""
    data: list[bytes] = []
    stray = b""
    for line in block.split(b"\n"):
        if not line or line[0] == 58:  # ":" comment
            continue
        field, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if field == b"data":
            data.append(value)
        elif field == b"event":
            name = value.decode("utf-8", "replace")
        elif not stray and field not in _KNOWN_FIELDS:
            stray = line
    if not data and not name and not stray:
        return None
    return SSEEvent(name, b"\n".join(data), stray)


def frame(data: bytes, event: str | None = None) -> bytes:
    """One SSE frame with an optional event name."""
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"
