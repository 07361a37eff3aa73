"""The contract every protocol codec fulfils.

A front-door codec turns client bytes into an `ir.Request` and renders
`ir.Response`, stream events and errors in its protocol. An upstream codec
turns an `ir.Request` into upstream bytes and decodes the upstream's answer
back into IR events. A protocol that an upstream can also speak gives a
`Passthrough`: the few edits LM Bridge makes to a client's body when it
relays it unchanged, and the rules that check the relayed stream. Codecs do
no I/O; the server and the upstream clients do.

Every fact about a protocol on the wire (its path, the header that carries
a key, version headers, whether answers chain by id, ...) is in its
`Wire`, so code outside `protocols/` asks the codec (`codec.wire.path`)
instead of testing a protocol's name.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import msgspec

from lmbridge.core import ir
from lmbridge.core.errors import LMBridgeError
from lmbridge.protocols.sse import SSEEvent


@dataclass(frozen=True)
class PlatformBlock:
    """A block a protocol's clients put in the system prompt that only the
    protocol's own platform reads (Claude Code's billing block,
    `protocols/anthropic/billing.py`). It changes every turn, at the very
    start of the prompt, so any other server would lose its prompt cache
    to it: LM Bridge drops it on the way to an upstream that does not keep
    it (`keeps_billing_header`), in a translated request (`without`) and a
    relayed body (`in_body`, then the protocol's `Passthrough.edit`).
    """

    prefix: str
    """How the block's text begins."""

    note: str
    """What the request's record says was dropped."""

    _prefix_bytes: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_prefix_bytes", self.prefix.encode())

    def matches(self, text: str) -> bool:
        """Whether a system block's `text` is this block."""
        return text.lstrip().startswith(self.prefix)

    def without(self, req: ir.Request) -> ir.Request:
        """`req` without this block in its system prompt (`req` itself if
        it has none)."""
        if not any(self.matches(part.text) for part in req.system):
            return req
        system = tuple(part for part in req.system if not self.matches(part.text))
        return msgspec.structs.replace(req, system=system)

    def in_body(self, body: bytes) -> bool:
        """Whether a client's body may hold the block (a look at the bytes,
        so most relayed bodies are not decoded)."""
        return self._prefix_bytes in body


@dataclass(frozen=True, kw_only=True)
class Wire:
    """One protocol's facts on the wire, declared in its own package.

    The same facts serve it as a front door (where LM Bridge answers it)
    and as an upstream API (what LM Bridge sends to a server speaking it).
    """

    path: str
    """Where it is served: the front door's canonical path, and the path
    below an upstream's base URL. `{model}` stands for the model where the
    URL names it (Gemini's `/v1beta/models/{model}:generateContent`)."""

    stream_path: str = ""
    """Where a streamed request goes when that is not `path` (Gemini's
    `:streamGenerateContent?alt=sse`); "" for the same path."""

    key_header: str = "Authorization"
    """The header that carries an API key."""

    key_scheme: str = "Bearer"
    """Written before the key in `key_header` ("" for the bare key)."""

    headers: Mapping[str, str] = field(default_factory=dict)
    """Headers every request carries (version strings), unless the client
    sent its own."""

    forwarded: tuple[str, ...] = ()
    """Client headers relayed to an upstream of the same protocol."""

    feature_header: str = ""
    """A header of opt-in features (`anthropic-beta`), filtered per upstream
    (an upstream's `anthropic_betas`)."""

    chains: bool = False
    """Answers have ids a later request continues (`previous_response_id`):
    the server keeps answered conversations under their ids, and sessions
    to such an upstream are chained instead of resent."""

    whole_answers: bool = False
    """The upstream answers a non-streaming request whole (its
    `encode_request` follows `request.stream`); other APIs are always asked
    for a stream."""

    signs_thinking: bool = False
    """Its thinking blocks carry signatures the upstream checks (only the
    upstream that made them, or its platform, accepts them)."""

    platform_block: PlatformBlock | None = None
    """A block its clients send that only the protocol's own platform reads
    (Anthropic: Claude Code's billing block); the platform's upstreams keep
    it, any other drops it."""

    def request_path(self, model: str, *, stream: bool = False) -> str:
        """The path a request asking `model` goes to (whole or streamed)."""
        path = self.stream_path if stream and self.stream_path else self.path
        return path.replace("{model}", model)

    def key_headers(self, key: str) -> dict[str, str]:
        """The header that presents `key` ({} for no key)."""
        if not key:
            return {}
        value = f"{self.key_scheme} {key}" if self.key_scheme else key
        return {self.key_header: value}

    def request_headers(self, key: str = "") -> dict[str, str]:
        """What a client of this protocol sends: JSON, the version headers,
        and `key` in the protocol's own header."""
        return {
            "Content-Type": "application/json",
            **self.headers,
            **self.key_headers(key),
        }


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


class BodyEdit(msgspec.Struct, frozen=True):
    """What LM Bridge changes in a body it relays: the model, the answer's
    token limit (`max_tokens` is None: leave it), the tools (None: all), and
    whether to drop the protocol's `PlatformBlock` (Claude Code's billing block)."""

    model: str
    max_tokens: int | None = None
    allowed_tools: frozenset[str] | None = None
    drop_platform_block: bool = False


class RelayRules(Protocol):
    """Follows one relayed stream, event by event (see protocols/relaywatch)."""

    ended: bool
    """The protocol's last event has been seen."""

    usage: ir.Usage | None
    """Token counts, once an event carried them."""

    error: str | None
    """The upstream's own error event, if it sent one."""

    @property
    def produced(self) -> list[str]:
        """Opaque provider data the relayed answer carried (OpenAI encrypted
        reasoning, Anthropic thinking signatures), so it goes back only where
        it is valid (server/origins.py)."""
        ...

    def check(self, event: SSEEvent) -> str | None:
        """None if the event may go on to the client, else what is wrong."""
        ...

    def fail(self, error: ir.StreamError) -> bytes:
        """Frames that end the client's stream with `error`, continuing what
        the upstream began (nothing if its stream already ended)."""
        ...


class Passthrough(Protocol):
    """How a protocol is relayed to an upstream that speaks it unchanged."""

    @property
    def api(self) -> str:
        """The name of the upstream API that speaks it (the codec's own)."""
        ...

    def edit(self, body: dict[str, Any], edit: BodyEdit) -> None:
        """Apply `edit` to the client's decoded JSON body, in place."""
        ...

    def whole_usage(self, body: bytes) -> ir.Usage | None:
        """Token counts of a whole answer; raises DECODE_ERRORS if not JSON."""
        ...

    def whole_produced(self, body: bytes) -> list[str]:
        """Opaque provider data a whole answer carried (OpenAI encrypted
        reasoning, Anthropic thinking signatures); [] if none or unreadable."""
        ...

    def rules(self, request: ir.Request) -> RelayRules:
        """Fresh rules for one relayed stream answering `request`."""
        ...

    def needs_edit(self, body: bytes) -> bool:
        """Whether the client's body must go through `edit` even when the
        `BodyEdit` changes nothing (it may hold a form some servers refuse);
        a cheap look at the bytes, so most bodies are relayed undecoded."""
        ...

    def relayable(self, request: ir.Request) -> bool:
        """Whether `request` may be relayed unchanged to an upstream that
        speaks the protocol; False when it holds something such upstreams
        may not know (Responses namespace and freeform tools), which the
        translated path rewrites."""
        ...


class AnswerCodec(Protocol):
    """Renders answers and errors in one client protocol."""

    @property
    def name(self) -> str:
        """The protocol's name on records and in the registry."""
        ...

    @property
    def passthrough(self) -> Passthrough | None:
        """Set when some upstream API speaks this protocol unchanged."""
        ...

    @property
    def remembers(self) -> bool:
        """Answers get ids a later request may continue
        (`previous_response_id`): the server keeps each answered
        conversation under its id."""
        ...

    def encode_response(
        self, response: ir.Response, request: ir.Request | None = None
    ) -> bytes:
        """A whole answer; `request` (when given) is the one it answers, for
        protocols that answer in the shape the request declared (Responses
        namespace and freeform tools)."""
        ...

    def stream_encoder(self, request: ir.Request) -> StreamEncoder: ...

    def encode_error(self, error: LMBridgeError) -> bytes: ...


class RequestCodec(AnswerCodec, Protocol):
    """What the pipeline serves: request bodies in, answers and errors out
    (a front door, or a route of LM Bridge's own chat service)."""

    def parse_request(self, body: bytes) -> ir.Request:
        """The client's body as IR; raises `InvalidRequest` naming the field."""
        ...


@runtime_checkable
class FrontDoor(RequestCodec, Protocol):
    """An inbound protocol: served on its own paths, with its own facts."""

    @property
    def paths(self) -> tuple[str, ...]:
        """The routes it serves (POST); the first is its canonical path."""
        ...

    @property
    def wire(self) -> Wire:
        """Its facts on the wire (path, headers, key header, chaining)."""
        ...

    def example_request(
        self, model: str, prompt: str, *, max_tokens: int, stream: bool = False
    ) -> dict[str, Any]:
        """The smallest real request body asking `model` for `prompt` (the
        Test buttons send it, with `wire.request_headers`)."""
        ...


class Action(enum.StrEnum):
    """What an `Endpoint` of an `AddressedDoor` does."""

    GENERATE = "generate"
    """A model call, through the one pipeline (`AddressedDoor.parse_call`)."""
    COUNT = "count"
    """Count a prompt's tokens, answered locally (`count_tokens`)."""
    LIST_MODELS = "list_models"
    """The models LM Bridge serves (`encode_models`)."""
    GET_MODEL = "get_model"
    """One model, named by the route's `{model}` (`encode_model`)."""


class Endpoint(msgspec.Struct, frozen=True):
    """A route of an `AddressedDoor`: an HTTP method, an aiohttp route
    pattern (`/v1beta/models/{model:.+}:generateContent`) and its action.
    `shared`: the path is another protocol's too (`/v1/models/{model}`),
    served only to requests the door `claims`; others get a 404."""

    method: str
    path: str
    action: Action
    shared: bool = False


class Address(msgspec.Struct, frozen=True):
    """What a request's URL says besides its body: the route pattern's
    parameters (`{model}`) and the query string."""

    params: dict[str, str] = msgspec.field(default_factory=dict)
    query: dict[str, str] = msgspec.field(default_factory=dict)


class ListedModel(msgspec.Struct, frozen=True):
    """A model LM Bridge serves: its id and who serves it (an upstream's
    name, or "lmbridge" for a route alias)."""

    id: str
    owner: str


@runtime_checkable
class AddressedDoor(FrontDoor, Protocol):
    """A front door whose URLs carry part of the request (the model,
    whether to stream) and which serves more than model calls, and whose
    clients present their key their own way (Gemini's
    `models/{model}:streamGenerateContent`, `x-goog-api-key`, `?key=`).

    The server serves its `endpoints` with no branch on its name: model
    calls through the one pipeline, the rest answered from what the door
    renders. `paths` may be empty.
    """

    @property
    def endpoints(self) -> tuple[Endpoint, ...]: ...

    def serves(self, path: str) -> bool:
        """Whether `path` is one of the door's (its errors take its shape)."""
        ...

    def claims(self, headers: Mapping[str, str], query: Mapping[str, str]) -> bool:
        """Whether a request on a path the doors share (`GET /v1/models`)
        comes from a client of this protocol."""
        ...

    def presented_key(
        self, headers: Mapping[str, str], query: Mapping[str, str]
    ) -> str | None:
        """The API key the request carries in this protocol's own way, if
        any (checked against the access token like `x-api-key`)."""
        ...

    def parse_call(self, body: bytes, address: Address) -> ir.Request:
        """A `GENERATE` request as IR; raises `InvalidRequest`."""
        ...

    def count_tokens(self, body: bytes, address: Address) -> bytes:
        """The answer to a `COUNT` request; raises `InvalidRequest`."""
        ...

    def encode_models(self, models: Sequence[ListedModel]) -> bytes: ...

    def encode_model(self, model: ListedModel) -> bytes: ...


@runtime_checkable
class UpstreamCodec(Protocol):
    """What an upstream client needs from an upstream API's protocol."""

    @property
    def name(self) -> str:
        """Its one name (`api = ...` in an upstream's settings)."""
        ...

    @property
    def wire(self) -> Wire:
        """Its facts on the wire (path, key header, version headers, ...)."""
        ...

    def encode_request(self, request: ir.Request) -> bytes:
        """The upstream body: a streaming request (Chat Completions alone
        follows `request.stream`; the proxy asks it for whole answers)."""
        ...

    def omitted(self, request: ir.Request) -> list[str]:
        """What of `request` this API cannot carry and `encode_request`
        leaves out or rewrites, one line each, for the request's record."""
        ...

    def stream_decoder(self, request: ir.Request) -> StreamDecoder: ...

    def decode_whole(self, body: bytes) -> list[ir.Event]:
        """A whole (non-streamed) answer as the events of its stream; a body
        that is not such an answer gives a `StreamError`."""
        ...

    def parse_error(self, status: int, body: bytes) -> LMBridgeError:
        """An upstream error answer as our error, keeping its message."""
        ...


class EventFilter(Protocol):
    """Rewrites a stream of IR events (stop sequences, tool-call repair)."""

    def feed(self, event: ir.Event) -> list[ir.Event]: ...

    def close(self) -> list[ir.Event]:
        """The input ended: emit anything held back."""
        ...
