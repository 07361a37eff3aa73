"""Watching a relayed SSE stream, so pass-through stays well-formed.

Same-protocol requests are relayed unchanged, but the client must still get
a well-formed stream when the upstream sends garbage. The watch forwards
complete frames only (the bytes after the last blank line wait for the rest
of their frame), checks that every event's data is JSON, and notes when the
protocol's last event has been sent. Checking costs one JSON parse per
event; the first token still leaves as soon as its frame is complete.
"""

from __future__ import annotations

import msgspec

_decode = msgspec.json.Decoder()

# The event after which a stream is complete, per relayed protocol.
_DONE_DATA = b"[DONE]"
_OTHER_FIELDS = (b":", b"id:", b"retry:")
_TERMINAL_EVENTS = {
    "anthropic": (b"message_stop",),
    "responses": (b"response.completed", b"response.incomplete", b"response.failed"),
    "openai": (),
}


class RelayWatch:
    """Splits relayed bytes into complete, checked frames."""

    __slots__ = ("_held", "_terminal", "ended", "problem")

    def __init__(self, protocol: str) -> None:
        self._held = b""
        self._terminal = _TERMINAL_EVENTS.get(protocol, ())
        self.ended = False
        self.problem: str | None = None

    def feed(self, chunk: bytes) -> bytes:
        """The bytes that may go to the client now ("" when held back).

        After a problem (an event whose data is not JSON), returns the good
        frames before it and sets `problem`; the caller ends the stream.
        """
        data = self._held + chunk if self._held else chunk
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
        cut = data.rfind(b"\n\n")
        if cut < 0:
            self._held = data
            return b""
        self._held = data[cut + 2 :]
        complete = data[: cut + 2]
        start = 0
        while start < len(complete):
            end = complete.find(b"\n\n", start) + 2
            if not self._check(complete[start:end]):
                return complete[:start]
            start = end
        return complete

    def close(self) -> bytes:
        """The upstream ended: a last frame without its blank line, if any."""
        held, self._held = self._held, b""
        if held.strip() and self._check(held.strip(b"\n") + b"\n\n"):
            return held.strip(b"\n") + b"\n\n"
        return b""

    def _check(self, frame: bytes) -> bool:
        for line in frame.split(b"\n"):
            if line.startswith(b"data:"):
                data = line[5:].strip()
                if data == _DONE_DATA:
                    self.ended = True
                    continue
                if data.startswith(b'{"error"'):
                    # A Chat server's own error event (LM Studio sends them
                    # inside a 200 stream): end with ours, in OpenAI's shape.
                    self.problem = _error_message(data)
                    return False
                try:
                    _decode.decode(data)
                except (msgspec.DecodeError, UnicodeError, RecursionError):
                    self.problem = (
                        "the upstream sent an unreadable stream event:"
                        f" {data[:120].decode('utf-8', 'replace')!r}"
                    )
                    return False
            elif line.startswith(b"event:"):
                if line[6:].strip() in self._terminal:
                    self.ended = True
            elif line and not line.startswith(_OTHER_FIELDS):
                self.problem = (
                    "the upstream sent something that is not an event stream:"
                    f" {line[:120].decode('utf-8', 'replace')!r}"
                )
                return False
        if not self.ended and self._terminal:
            # Responses streams name the event inside the data too.
            self.ended = any(b'"' + t + b'"' in frame for t in self._terminal)
        return True


class _ErrorBody(msgspec.Struct):
    message: str = ""


class _ErrorEvent(msgspec.Struct):
    error: _ErrorBody | str | None = None


def _error_message(data: bytes) -> str:
    try:
        error = msgspec.json.decode(data, type=_ErrorEvent).error
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeError, RecursionError):
        return "the upstream reported an error"
    message = error.message if isinstance(error, _ErrorBody) else error
    return message or "the upstream reported an error"
