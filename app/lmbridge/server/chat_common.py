"""What the two chat APIs share: the JSON envelope and model calls.

Both the conversation store (`/store/...`) and the simple chat service
(`/chat...`) answer errors as `{"status": "error", "message": ...}` with the
error's HTTP status, and make their model calls through the same pipeline as
the front doors (router, upstream, IR events), each call published on the
event bus as a `RequestRecord` so it shows in the request log.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from types import TracebackType
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from lmbridge.core import errors, events, ir
from lmbridge.core.events import RequestRecord
from lmbridge.protocols import jsonutil
from lmbridge.server import proxy
from lmbridge.server.state import ProxyState
from lmbridge.upstreams.router import Resolved

log = logging.getLogger(__name__)

T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_encode = msgspec.json.Encoder()


class Envelope(msgspec.Struct, omit_defaults=True):
    """`{"status": ..., "message": ...}`; success payload fields ride alongside."""

    status: str
    message: str | None = None


def json_body(payload: msgspec.Struct, status: int = 200) -> web.Response:
    """A JSON response with `payload` encoded as is."""
    return web.Response(
        status=status, body=_encode.encode(payload), content_type="application/json"
    )


def error_response(err: errors.LMBridgeError) -> web.Response:
    """`err` in the envelope, with its HTTP status.

    An upstream's own 500 is a 502 here: 500 is kept for faults of ours.
    """
    status = err.status
    if isinstance(err, errors.UpstreamError) and status == 500:
        status = 502
    headers = {}
    if err.retry_after is not None:
        headers["Retry-After"] = str(max(0, round(err.retry_after)))
    return web.Response(
        status=status,
        body=_encode.encode(Envelope(status="error", message=err.message)),
        content_type="application/json",
        headers=headers,
    )


def enveloped(handler: Handler) -> Handler:
    """Render every failure of `handler` in the envelope, never a traceback.

    Our errors keep their status; anything else is logged and answered as a
    500, since only a fault of ours gets there.
    """

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except errors.LMBridgeError as err:
            return error_response(err)
        except web.HTTPRequestEntityTooLarge:
            return error_response(
                errors.PayloadTooLarge("the request body is too large")
            )
        except Exception:
            log.exception(
                "unexpected failure serving %s %s", request.method, request.path
            )
            return error_response(
                errors.LMBridgeError(
                    "LM Bridge failed unexpectedly; see its log for details"
                )
            )

    return wrapper


async def read_body(request: web.Request, type_: type[T]) -> T:
    """The JSON body decoded as `type_`; InvalidRequest naming the field."""
    body = await request.read()
    if not body.strip():
        raise errors.InvalidRequest("the request body is empty; send a JSON object")
    try:
        return msgspec.json.decode(body, type=type_)
    except msgspec.ValidationError as exc:
        raise jsonutil.invalid(exc) from None
    except (msgspec.DecodeError, UnicodeError, RecursionError) as exc:
        raise errors.InvalidRequest(
            f"the request body is not valid JSON: {exc}"
        ) from None


def query_param(request: web.Request, name: str) -> str:
    """A required query parameter; InvalidRequest if it is missing."""
    value = request.query.get(name)
    if value is None:
        raise errors.InvalidRequest(
            f"the query parameter {name!r} is required", param=name
        )
    return value


class ModelCall:
    """One model request made by a chat API, visible like any proxied one.

    Use as `async with ModelCall(state, request, "chat-api") as call:`; the
    record is published when the call starts, when it is routed and when it
    ends, with the status and error it ended with.
    """

    def __init__(self, state: ProxyState, request: web.Request, protocol: str) -> None:
        self.state = state
        self.record = RequestRecord(
            client=request.headers.get("User-Agent", ""),
            protocol=protocol,
            path=request.path,
            bytes_in=request.content_length or 0,
        )

    async def __aenter__(self) -> ModelCall:
        self.state.bus.publish(events.REQUEST_STARTED, self.record)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        record = self.record
        if isinstance(exc, errors.LMBridgeError):
            record.status = exc.status
            record.error = exc.message
        elif isinstance(exc, asyncio.CancelledError | ConnectionResetError):
            record.client_gone = True
            record.error = "the client went away"
        elif exc is not None:
            record.status = 500
            record.error = f"{type(exc).__name__}: {exc}"
        record.mark_done()
        self.state.bus.publish(events.REQUEST_FINISHED, record)

    def resolve(self, model: str) -> Resolved:
        """Route `model` and note the route in the record."""
        resolved = self.state.router.resolve(model)
        record = self.record
        record.model = model
        record.route = resolved.rule
        record.upstream = resolved.upstream.name
        record.target = resolved.target
        record.upstream_api = resolved.upstream.api
        self.state.bus.publish(events.REQUEST_UPDATED, self.record)
        return resolved

    async def open(
        self, req: ir.Request, resolved: Resolved
    ) -> AsyncGenerator[ir.Event, None]:
        """The upstream's answer to `req` as IR events (errors before it raise)."""
        self.record.stream = req.stream
        return await proxy.open_stream(req, resolved, self.record)

    def observe(self, event: ir.Event) -> None:
        """Note timings, tokens and errors an event carries."""
        proxy.observe(self.record, event)

    def sent(self, data: bytes) -> bytes:
        """Count `data` as sent to the client; returns it."""
        self.record.bytes_out += len(data)
        return data


def encode(payload: Any) -> bytes:
    """JSON bytes of a Struct (or builtin value)."""
    return _encode.encode(payload)
