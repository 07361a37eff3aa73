"""Watching a relayed SSE stream, so pass-through stays well-formed.

Same-protocol requests are relayed unchanged, but the client must still get
a well-formed stream when the upstream sends garbage. The watch forwards
complete frames only (the bytes after the last blank line wait for the rest
of their frame, `protocols/sse.py` splits them), and has the protocol's
`RelayRules` check each event: its data must be JSON of that protocol, and
the rules note the protocol's last event and the usage it carries. A
problem stops the relay before the bad frame; `RelayRules.fail` then ends
the client's stream in kind. Checking costs one typed JSON parse per event;
the first token still leaves as soon as its frame is complete.
"""

from __future__ import annotations

import msgspec

from lmbridge.core.errors import DECODE_ERRORS
from lmbridge.protocols.base import RelayRules
from lmbridge.protocols.sse import Frames, SSEEvent, SSEParser


class RelayWatch:
    """Splits relayed bytes into complete frames checked by `rules`."""

    __slots__ = ("_parser", "problem", "rules")

    def __init__(self, rules: RelayRules) -> None:
        self._parser = SSEParser()
        self.rules = rules
        self.problem: str | None = None

    @property
    def ended(self) -> bool:
        """The protocol's last event went by."""
        return self.rules.ended

    def feed(self, chunk: bytes) -> bytes:
        """The bytes that may go to the client now (b"" when held back).

        After a problem, returns the good frames before it and sets
        `problem`; the caller ends the stream.
        """
        return self._checked(self._parser.feed_frames(chunk))

    def close(self) -> bytes:
        """The upstream ended: a last frame without its blank line, if any."""
        return self._checked(self._parser.flush_frames())

    def _checked(self, frames: Frames) -> bytes:
        if not frames.raw:
            return b""
        for position, (_raw, event) in enumerate(frames.events):
            problem = self._check(event)
            if problem is not None:
                self.problem = problem
                return b"".join(raw for raw, _ in frames.events[:position])
        return frames.raw

    def _check(self, event: SSEEvent) -> str | None:
        if event.stray:
            shown = event.stray[:120].decode("utf-8", "replace")
            return f"the upstream sent something that is not an event stream: {shown!r}"
        if event.data.startswith(b'{"error"'):
            # A Chat server's own error event (LM Studio sends them inside a
            # 200 stream): end with ours, in the client's protocol.
            return error_message(event.data)
        return self.rules.check(event)


def unreadable(data: bytes) -> str:
    """The problem of an event whose data is not the JSON expected."""
    shown = data[:120].decode("utf-8", "replace")
    return f"the upstream sent an unreadable stream event: {shown!r}"


class _ErrorBody(msgspec.Struct):
    message: str = ""


class _ErrorEvent(msgspec.Struct):
    error: _ErrorBody | str | None = None


_ERROR_EVENT = msgspec.json.Decoder(_ErrorEvent)


def error_message(data: bytes) -> str:
    """The message of an `{"error": ...}` event."""
    try:
        error = _ERROR_EVENT.decode(data).error
    except DECODE_ERRORS:
        return "the upstream reported an error"
    message = error.message if isinstance(error, _ErrorBody) else error
    return message or "the upstream reported an error"
