"""The Gemini API (`generateContent`), as a front door.

`GEMINI` is an `AddressedDoor` (`protocols/base.py`): the model and
whether to stream are in the URL (`/v1beta/models/{model}:generateContent`,
`:streamGenerateContent?alt=sse`, and the `/v1/` paths), clients present
their key as `x-goog-api-key` or `?key=`, and it serves `countTokens` and
the model list besides model calls. What is carried and what is dropped
on the way in is in `request.py`; answers and errors in `response.py` and
`stream.py`. No upstream speaks it: every request is translated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lmbridge.core import errors, ir
from lmbridge.protocols import jsonutil, tokens
from lmbridge.protocols.base import Action, Address, Endpoint, ListedModel, Wire
from lmbridge.protocols.gemini import request, response
from lmbridge.protocols.gemini.stream import GeminiStreamEncoder

if TYPE_CHECKING:
    from lmbridge.protocols.base import AddressedDoor

__all__ = ["GEMINI", "GeminiCodec", "GeminiStreamEncoder"]

VERSIONS = ("v1beta", "v1")
"""The API versions served (google-genai uses v1beta unless told v1)."""

KEY_HEADER = "x-goog-api-key"
KEY_PARAM = "key"
CLIENT_HEADER = "x-goog-api-client"
GENERATE = "generateContent"
STREAM = "streamGenerateContent"

WIRE = Wire(
    path=f"/v1beta/models/{{model}}:{GENERATE}",
    stream_path=f"/v1beta/models/{{model}}:{STREAM}?alt=sse",
    key_header=KEY_HEADER,
    key_scheme="",
)


def _endpoints() -> tuple[Endpoint, ...]:
    out: list[Endpoint] = []
    for version in VERSIONS:
        model = f"/{version}/models/{{model:.+}}"
        generate = f"{model}:{{method:{GENERATE}|{STREAM}}}"
        out += [
            Endpoint("POST", generate, Action.GENERATE),
            Endpoint("POST", f"{model}:countTokens", Action.COUNT),
            # OpenAI's clients may ask GET /v1/models/{model} too.
            Endpoint("GET", model, Action.GET_MODEL, shared=version == "v1"),
        ]
    # GET /v1/models is shared with OpenAI's list: Gemini's clients are
    # told apart there by `claims`.
    out.append(Endpoint("GET", "/v1beta/models", Action.LIST_MODELS))
    return tuple(out)


class GeminiCodec:
    """The Gemini API's generateContent family, as a front door."""

    name = "gemini"
    wire = WIRE
    paths: tuple[str, ...] = ()
    endpoints = _endpoints()
    passthrough = None
    remembers = WIRE.chains

    def serves(self, path: str) -> bool:
        """Gemini's paths: all of /v1beta, and the model calls under /v1
        (`/v1/models/{model}` alone is OpenAI's as much as Gemini's)."""
        if path.startswith("/v1/models/"):
            return ":" in path.rpartition("/")[2]
        return path.startswith("/v1beta/") or path == "/v1beta"

    def claims(self, headers: Mapping[str, str], query: Mapping[str, str]) -> bool:
        """A Gemini client: its key header or parameter, or its SDK's header."""
        return KEY_HEADER in headers or CLIENT_HEADER in headers or KEY_PARAM in query

    def presented_key(
        self, headers: Mapping[str, str], query: Mapping[str, str]
    ) -> str | None:
        """`x-goog-api-key`, else `?key=`."""
        return headers.get(KEY_HEADER) or query.get(KEY_PARAM) or None

    def parse_request(self, body: bytes) -> ir.Request:
        """A body alone (no URL): the model it names, answered whole."""
        raw = jsonutil.decode_object(body)
        named = raw.get("model")
        model = request.model_of(named) if isinstance(named, str) else ""
        return request.parse_generate(body, model, stream=False)

    def example_request(
        self, model: str, prompt: str, *, max_tokens: int, stream: bool = False
    ) -> dict[str, Any]:
        """The smallest `generateContent` body asking for `prompt` (the model
        and whether to stream are in the URL: `wire.request_path`)."""
        return {
            "contents": [{"role": "user", "parts": [{"text": prompt}]}],
            "generationConfig": {"maxOutputTokens": max_tokens},
        }

    def parse_call(self, body: bytes, address: Address) -> ir.Request:
        """A `generateContent` / `streamGenerateContent` call."""
        stream = address.params.get("method") == STREAM
        if stream and address.query.get("alt") != "sse":
            raise errors.InvalidRequest(
                "streamGenerateContent is served as server-sent events: add"
                " ?alt=sse to the URL (as Google's SDKs do)",
                param="alt",
            )
        model = request.model_of(address.params.get("model", ""))
        return request.parse_generate(body, model, stream)

    def count_tokens(self, body: bytes, address: Address) -> bytes:
        """`countTokens`, estimated locally (protocols/tokens.py)."""
        req = request.parse_count(body, request.model_of(address.params["model"]))
        return response.encode_count(tokens.count_request(req))

    def encode_models(self, models: Sequence[ListedModel]) -> bytes:
        return response.encode_models(models)

    def encode_model(self, model: ListedModel) -> bytes:
        return response.encode_model(model)

    def encode_response(
        self, answer: ir.Response, request: ir.Request | None = None
    ) -> bytes:
        """A whole answer; thoughts only when the request asked for thinking."""
        model = request.model if request is not None else answer.model
        show = request is None or request.reasoning is not None
        return response.encode_response(answer, model, show)

    def stream_encoder(self, request: ir.Request) -> GeminiStreamEncoder:
        return GeminiStreamEncoder(request.model, request.reasoning is not None)

    def encode_error(self, error: errors.LMBridgeError) -> bytes:
        return response.encode_error(error)


GEMINI = GeminiCodec()

if TYPE_CHECKING:  # mypy checks that the codec fulfils the contract
    _door_check: AddressedDoor = GEMINI
