"""OpenAI Chat Completions: front door and upstream codec."""

from __future__ import annotations

from lmbridge.core import errors, ir
from lmbridge.protocols.openai_chat import decode, encode, request


class OpenAIChat:
    """The Chat Completions protocol, in both directions."""

    name = "openai"
    path = "/v1/chat/completions"

    def parse_request(self, body: bytes) -> ir.Request:
        return request.parse_request(body)

    def encode_response(self, response: ir.Response) -> bytes:
        return encode.encode_response(response)

    def stream_encoder(self, req: ir.Request) -> encode.ChatStreamEncoder:
        # A usage chunk (with empty `choices`) only for clients that ask.
        options = req.extras.get("stream_options")
        wants_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        return encode.ChatStreamEncoder(req.model, include_usage=wants_usage)

    def encode_error(self, error: errors.LMBridgeError) -> bytes:
        return encode.encode_error(error)

    def encode_request(self, req: ir.Request) -> bytes:
        return request.encode_request(req)

    def stream_decoder(self, req: ir.Request) -> decode.ChatStreamDecoder:
        return decode.ChatStreamDecoder()

    def parse_error(self, status: int, body: bytes) -> errors.LMBridgeError:
        return decode.parse_error(status, body)


OPENAI_CHAT = OpenAIChat()
