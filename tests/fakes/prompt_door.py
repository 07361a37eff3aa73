"""A toy front door, registered by tests as any protocol is: a prompt in
JSON (`{"model", "prompt", "stream"}`), answered as JSON lines. One module,
as a new protocol is (tests/test_registry.py)."""

from __future__ import annotations

import json
from typing import Any

import msgspec

from lmbridge.core import errors, ir
from lmbridge.protocols.base import Passthrough, Wire


class PromptIn(msgspec.Struct):
    model: str
    prompt: str
    stream: bool = False


class TextLines:
    """Streams each text delta as one JSON line."""

    content_type = "application/x-ndjson"

    def encode(self, event: ir.Event) -> bytes:
        if isinstance(event, ir.TextDelta):
            return json.dumps({"text": event.text}).encode() + b"\n"
        if isinstance(event, ir.StreamError):
            return json.dumps({"failed": event.message}).encode() + b"\n"
        if isinstance(event, ir.Finish):
            return b'{"done": true}\n'
        return b""


class PromptProtocol:
    name = "prompt"
    wire = Wire(path="/v1/prompt", key_header="x-prompt-key", key_scheme="")
    paths: tuple[str, ...] = ("/v1/prompt",)
    passthrough: Passthrough | None = None
    remembers = False

    def example_request(
        self, model: str, prompt: str, *, max_tokens: int, stream: bool = False
    ) -> dict[str, Any]:
        return {"model": model, "prompt": prompt, "stream": stream}

    def parse_request(self, body: bytes) -> ir.Request:
        try:
            req = msgspec.json.decode(body, type=PromptIn)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise errors.InvalidRequest(f"invalid prompt request: {exc}") from None
        return ir.Request(
            model=req.model,
            messages=(ir.Message(ir.Role.USER, (ir.Text(req.prompt),)),),
            stream=req.stream,
        )

    def encode_response(
        self, response: ir.Response, request: ir.Request | None = None
    ) -> bytes:
        text = "".join(p.text for p in response.parts if isinstance(p, ir.Text))
        return json.dumps({"text": text}).encode()

    def stream_encoder(self, request: ir.Request) -> TextLines:
        return TextLines()

    def encode_error(self, error: errors.LMBridgeError) -> bytes:
        return json.dumps({"failed": error.message}).encode()
