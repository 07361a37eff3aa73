"""OpenAI Chat Completions: front door and upstream codec.

Named "openai" (records, the registry); `api = "chat"` in an upstream's
settings names it too (the spelling config.toml has always had).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lmbridge.core import errors, ir
from lmbridge.protocols.base import Wire
from lmbridge.protocols.openai_chat import decode, encode, request, upstream
from lmbridge.protocols.openai_chat.passthrough import ChatPassthrough
from lmbridge.protocols.openai_errors import encode_error

if TYPE_CHECKING:
    from lmbridge.protocols.base import FrontDoor, UpstreamCodec


class OpenAIChat:
    """The Chat Completions protocol, in both directions."""

    name = "openai"
    wire = Wire(path="/v1/chat/completions", whole_answers=True)
    paths = ("/v1/chat/completions", "/chat/completions")
    passthrough = ChatPassthrough()
    remembers = wire.chains

    def parse_request(self, body: bytes) -> ir.Request:
        return request.parse_request(body)

    def example_request(
        self, model: str, prompt: str, *, max_tokens: int, stream: bool = False
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model,
            "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": prompt}],
        }
        return {**body, "stream": True} if stream else body

    def encode_response(
        self, response: ir.Response, request: ir.Request | None = None
    ) -> bytes:
        return encode.encode_response(response)

    def stream_encoder(self, req: ir.Request) -> encode.ChatStreamEncoder:
        # A usage chunk (with empty `choices`) only for clients that ask.
        options = req.extras.get("stream_options")
        wants_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        return encode.ChatStreamEncoder(req.model, include_usage=wants_usage)

    def encode_error(self, error: errors.LMBridgeError) -> bytes:
        return encode_error(error)

    def encode_request(self, req: ir.Request) -> bytes:
        return upstream.encode_request(req)

    def omitted(self, req: ir.Request) -> list[str]:
        return upstream.omitted(req)

    def stream_decoder(self, req: ir.Request) -> decode.ChatStreamDecoder:
        return decode.ChatStreamDecoder()

    def decode_whole(self, body: bytes) -> list[ir.Event]:
        return decode.ChatStreamDecoder().whole(body)

    def parse_error(self, status: int, body: bytes) -> errors.LMBridgeError:
        return decode.parse_error(status, body)


OPENAI_CHAT = OpenAIChat()

if TYPE_CHECKING:  # mypy checks that the codec fulfils both contracts
    _door_check: FrontDoor = OPENAI_CHAT
    _codec_check: UpstreamCodec = OPENAI_CHAT
