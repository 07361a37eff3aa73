"""The contract every protocol codec fulfils.

A front-door codec turns client bytes into an `ir.Request` and renders
`ir.Response`, stream events and errors in its protocol. An upstream codec
turns an `ir.Request` into upstream bytes and decodes the upstream's stream
back into IR events. Codecs do no I/O; the server and upstream clients do.
"""

from __future__ import annotations

from typing import Protocol

from lmbridge.core import ir
from lmbridge.core.errors import LMBridgeError


class StreamDecoder(Protocol):
    """Incremental decoder of an upstream stream: bytes in, IR events out."""

    def feed(self, data: bytes) -> list[ir.Event]:
        """Decode what `data` completes; keep any partial frame for later."""
        ...

    def close(self) -> list[ir.Event]:
        """The upstream ended. Emits a `StreamError` if it ended early."""
        ...


class StreamEncoder(Protocol):
    """Renders IR events as the client protocol's stream bytes.

    Implementations are state machines that always produce a well-formed
    sequence: a `StreamError` or a missing `Finish` still closes what is open.
    """

    content_type: str

    def encode(self, event: ir.Event) -> bytes: ...


class FrontDoor(Protocol):
    """What the server needs from an inbound protocol."""

    name: str

    def parse_request(self, body: bytes) -> ir.Request: ...

    def encode_response(self, response: ir.Response) -> bytes: ...

    def stream_encoder(self, request: ir.Request) -> StreamEncoder: ...

    def encode_error(self, error: LMBridgeError) -> bytes: ...


class UpstreamCodec(Protocol):
    """What an upstream client needs from an upstream API's protocol."""

    name: str
    path: str

    def encode_request(self, request: ir.Request) -> bytes:
        """The upstream body: a streaming request (Chat Completions alone
        follows `request.stream`; the proxy asks it for whole answers)."""
        ...

    def stream_decoder(self, request: ir.Request) -> StreamDecoder: ...

    def parse_error(self, status: int, body: bytes) -> LMBridgeError:
        """An upstream error answer as our error, keeping its message."""
        ...


class EventFilter(Protocol):
    """Rewrites a stream of IR events (stop sequences, tool-call repair)."""

    def feed(self, event: ir.Event) -> list[ir.Event]: ...

    def close(self) -> list[ir.Event]:
        """The input ended: emit anything held back."""
        ...
