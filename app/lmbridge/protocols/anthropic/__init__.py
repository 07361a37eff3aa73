"""The Anthropic Messages codec, as a front door and as an upstream API.

`ANTHROPIC` fulfils both `FrontDoor` and `UpstreamCodec`
(`protocols/base.py`). The policies for what is dropped or moved on the
way in are in `request.py`; the adjustments on the way out to an
Anthropic-compatible upstream are in `upstream.py`. Named "anthropic";
`api = "messages"` in an upstream's settings names it too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lmbridge.core import ir
from lmbridge.core.errors import LMBridgeError
from lmbridge.protocols.anthropic.billing import BILLING
from lmbridge.protocols.anthropic.passthrough import AnthropicPassthrough
from lmbridge.protocols.anthropic.request import parse_request
from lmbridge.protocols.anthropic.response import encode_error, encode_response
from lmbridge.protocols.anthropic.stream import (
    AnthropicStreamDecoder,
    AnthropicStreamEncoder,
)
from lmbridge.protocols.anthropic.upstream import encode_request, omitted, parse_error
from lmbridge.protocols.anthropic.whole import decode_whole
from lmbridge.protocols.base import Wire

if TYPE_CHECKING:
    from lmbridge.protocols.base import FrontDoor, UpstreamCodec

__all__ = [
    "ANTHROPIC",
    "ANTHROPIC_VERSION",
    "AnthropicCodec",
    "AnthropicStreamDecoder",
    "AnthropicStreamEncoder",
    "encode_error",
    "encode_request",
    "encode_response",
    "parse_error",
    "parse_request",
]


ANTHROPIC_VERSION = "2023-06-01"
"""The `anthropic-version` a request carries when its client sent none."""

WIRE = Wire(
    path="/v1/messages",
    key_header="x-api-key",
    key_scheme="",
    headers={"anthropic-version": ANTHROPIC_VERSION},
    forwarded=("anthropic-version", "anthropic-beta"),
    feature_header="anthropic-beta",
    signs_thinking=True,
    platform_block=BILLING,
)


class AnthropicCodec:
    """Anthropic Messages (`/v1/messages`) in both directions."""

    name = "anthropic"
    wire = WIRE
    paths = ("/v1/messages",)
    passthrough = AnthropicPassthrough()
    remembers = WIRE.chains

    def parse_request(self, body: bytes) -> ir.Request:
        """A client's body as IR; raises `InvalidRequest` naming the field."""
        return parse_request(body)

    def example_request(
        self, model: str, prompt: str, *, max_tokens: int, stream: bool = False
    ) -> dict[str, Any]:
        """The smallest Messages request asking `model` for `prompt`."""
        body: dict[str, Any] = {
            "model": model,
            "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": prompt}],
        }
        return {**body, "stream": True} if stream else body

    def encode_response(
        self, response: ir.Response, request: ir.Request | None = None
    ) -> bytes:
        """A whole answer as an Anthropic `message` body."""
        return encode_response(response)

    def stream_encoder(self, request: ir.Request) -> AnthropicStreamEncoder:
        """An encoder for the answer to `request` (echoing its model name)."""
        return AnthropicStreamEncoder(model=request.model)

    def encode_error(self, error: LMBridgeError) -> bytes:
        """An Anthropic error body for `error`."""
        return encode_error(error)

    def encode_request(self, request: ir.Request) -> bytes:
        """A streaming `/v1/messages` body for an Anthropic-compatible upstream."""
        return encode_request(request)

    def omitted(self, request: ir.Request) -> list[str]:
        return omitted(request)

    def stream_decoder(self, request: ir.Request) -> AnthropicStreamDecoder:
        """A decoder for the upstream's event stream."""
        return AnthropicStreamDecoder()

    def decode_whole(self, body: bytes) -> list[ir.Event]:
        """A whole `message` answer as stream events."""
        return decode_whole(body)

    def parse_error(self, status: int, body: bytes) -> LMBridgeError:
        """An upstream error answer as our error, keeping its message."""
        return parse_error(status, body)


ANTHROPIC = AnthropicCodec()

if TYPE_CHECKING:  # mypy checks that the codec fulfils both contracts
    _door_check: FrontDoor = ANTHROPIC
    _codec_check: UpstreamCodec = ANTHROPIC
