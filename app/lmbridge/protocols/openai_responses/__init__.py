"""The OpenAI Responses API (`/v1/responses`), as front door and as upstream.

`RESPONSES` fulfils both `FrontDoor` and `UpstreamCodec` of
`protocols/base.py`. The package is split by concern:

- `wire.py` (requests), `answer.py` (the Response object), `events.py`
  (stream events): the wire types (msgspec Structs);
- `request.py`: client request -> `ir.Request`;
- `upstream.py`: `ir.Request` -> upstream request;
- `response.py`: `ir.Response` and errors -> wire, upstream errors -> ours;
- `stream.py`: IR events -> client SSE; `decode.py`: upstream SSE -> IR events;
- `whole.py`: a whole Response object -> IR events;
- `tools.py`, `freeform.py`: namespace and freeform (`custom`) tools, carried
  as flat-named functions upstream and answered in the client's shape;
- `passthrough.py`: relaying to a Responses upstream, and following the
  relayed stream to end it in kind if the upstream breaks off.

Policies:

- `function`, `custom` and `namespace` tools are carried (tools.py). Hosted
  tools (`web_search`, `web_search_preview`, `file_search`,
  `code_interpreter`, `computer_use_preview`, `image_generation`,
  `local_shell`, `mcp`, `tool_search`, and any other type) run on OpenAI's
  servers. Like
  Anthropic server tools, they are dropped from the request and their types
  recorded in `Request.dropped` so the request's record lists them; a
  `tool_choice` naming one falls back to `auto`.
- Files are not stored: `input_image` by `file_id` and `input_file` are
  refused with `InvalidRequest` naming the field; so are item references.
- `previous_response_id`, `store`, `prompt_cache_key`, `user` and `text`
  (the output format) are kept in `extras` under their wire names: the
  server chains conversations on them, and a Responses upstream gets
  `previous_response_id`, `store` and `text` back. `prompt_cache_key`
  (else `user`) is the session key. `include`, `metadata`,
  `client_metadata`, `truncation`, `service_tier` and the reasoning
  summary mode are accepted and not kept: a Responses-to-Responses request
  is relayed verbatim by the server, and other upstreams have no use for
  them (the Chat encoder sends unknown extras on as body fields).
- Upstream, function tools go with `strict: false` (the Responses API
  defaults to strict schemas, which most client schemas fail); the IR has
  no `strict` flag to carry a client's choice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lmbridge.core import ir
from lmbridge.core.errors import LMBridgeError
from lmbridge.protocols.base import Wire
from lmbridge.protocols.openai_responses import request as _request
from lmbridge.protocols.openai_responses import response as _response
from lmbridge.protocols.openai_responses import upstream as _upstream
from lmbridge.protocols.openai_responses.decode import ResponsesStreamDecoder
from lmbridge.protocols.openai_responses.passthrough import ResponsesPassthrough
from lmbridge.protocols.openai_responses.stream import ResponsesStreamEncoder
from lmbridge.protocols.openai_responses.whole import decode_whole

if TYPE_CHECKING:
    from lmbridge.protocols.base import FrontDoor, UpstreamCodec

__all__ = [
    "RESPONSES",
    "ResponsesCodec",
    "ResponsesStreamDecoder",
    "ResponsesStreamEncoder",
]


class ResponsesCodec:
    """The Responses protocol, both directions; use the `RESPONSES` instance."""

    name = "responses"
    wire = Wire(path="/v1/responses", chains=True)
    paths = ("/v1/responses", "/responses")
    passthrough = ResponsesPassthrough()
    remembers = wire.chains

    def parse_request(self, body: bytes) -> ir.Request:
        """A client's request body as IR; raises `InvalidRequest` if bad."""
        return _request.parse_request(body)

    def example_request(
        self, model: str, prompt: str, *, max_tokens: int, stream: bool = False
    ) -> dict[str, Any]:
        """The smallest Responses request asking `model` for `prompt`."""
        body: dict[str, Any] = {
            "model": model,
            "input": prompt,
            "max_output_tokens": max_tokens,
        }
        return {**body, "stream": True} if stream else body

    def encode_response(
        self, response: ir.Response, request: ir.Request | None = None
    ) -> bytes:
        """A whole answer as a Response object; calls of the `request`'s
        namespace and freeform tools go back in the client's shape."""
        return _response.encode_response(response, request)

    def stream_encoder(self, request: ir.Request) -> ResponsesStreamEncoder:
        """A fresh SSE encoder for one streamed answer to `request`."""
        return ResponsesStreamEncoder(request)

    def encode_error(self, error: LMBridgeError) -> bytes:
        """An error as OpenAI's `{"error": {...}}`."""
        return _response.encode_error(error)

    def encode_request(self, request: ir.Request) -> bytes:
        """The upstream body for `request`; always a streaming request."""
        return _upstream.encode_request(request)

    def omitted(self, request: ir.Request) -> list[str]:
        return _upstream.omitted(request)

    def stream_decoder(self, request: ir.Request) -> ResponsesStreamDecoder:
        """A fresh decoder for one upstream stream answering `request`."""
        return ResponsesStreamDecoder(request)

    def decode_whole(self, body: bytes) -> list[ir.Event]:
        """A whole Response object as stream events."""
        return decode_whole(body)

    def parse_error(self, status: int, body: bytes) -> LMBridgeError:
        """An upstream error answer as our error."""
        return _response.parse_error(status, body)


RESPONSES = ResponsesCodec()

if TYPE_CHECKING:  # mypy checks that the codec fulfils both contracts
    _door_check: FrontDoor = RESPONSES
    _codec_check: UpstreamCodec = RESPONSES
