"""Pass-through: the client's protocol is the upstream's own API.

The client's JSON goes upstream with only the model renamed (and max_tokens
clamped, tools filtered by session settings when configured), and the
upstream's answer comes back as it arrives. Streams are forwarded frame by
frame and checked (protocols/relaywatch.py), so garbage from the upstream
still ends in a well-formed error event; a whole answer must be JSON.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import msgspec
from aiohttp import web

from lmbridge.core import errors, ir
from lmbridge.core.events import RequestRecord
from lmbridge.protocols.base import FrontDoor
from lmbridge.protocols.openai_responses.relay import RelayedStream
from lmbridge.protocols.registry import upstream_codec
from lmbridge.protocols.relaywatch import RelayWatch
from lmbridge.server.capture import capture_response, request_secrets, scrub
from lmbridge.server.state import STATE
from lmbridge.upstreams.http import HttpUpstream
from lmbridge.upstreams.router import Resolved

# The upstream API that speaks each front door's protocol unchanged.
SAME_API = {"openai": "chat", "anthropic": "messages", "responses": "responses"}
# The name of the max-tokens field per protocol, for clamping.
MAX_TOKENS_FIELDS = {
    "openai": ("max_tokens", "max_completion_tokens"),
    "anthropic": ("max_tokens",),
    "responses": ("max_output_tokens",),
}
_DECODE_ERRORS = (
    msgspec.DecodeError,
    msgspec.ValidationError,
    UnicodeError,
    RecursionError,
)

_json = msgspec.json.Decoder()
_encode = msgspec.json.Encoder()


class _UsageOnly(msgspec.Struct):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None


class _ResponseUsage(msgspec.Struct):
    usage: _UsageOnly | None = None


class _WithUsage(msgspec.Struct):
    usage: _UsageOnly | None = None
    # Responses streams carry usage in response.completed's response.
    response: _ResponseUsage | None = None

    def found(self) -> _UsageOnly | None:
        if self.usage is not None:
            return self.usage
        return self.response.usage if self.response is not None else None


_usage_decoder = msgspec.json.Decoder(_WithUsage)


def sse_headers() -> dict[str, str]:
    return {
        "Content-Type": "text/event-stream",
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
    }


def should_fall_back(err: errors.LMBridgeError) -> bool:
    """Unreachable, rate-limited or failing upstreams hand over to the next."""
    return err.status == 429 or err.status >= 500


async def relay(
    request: web.Request,
    door: FrontDoor,
    body: bytes,
    req: ir.Request,
    resolved: Resolved,
    record: RequestRecord,
    last: bool = True,
) -> web.StreamResponse:
    """Forward the client's JSON and relay the upstream's answer."""
    upstream = resolved.upstream
    body = _rewrite(request, door, body, req, resolved, record)
    codec = upstream_codec(SAME_API[door.name])
    try:
        resp = await upstream.post(
            codec.path, body, codec=codec, record=record, headers=_forwarded(request)
        )
    except errors.LMBridgeError as err:
        if err.upstream_body is None or (not last and should_fall_back(err)):
            raise
        # Upstream errors keep their status and body on pass-through, but
        # not a key the upstream echoes back.
        secrets = request_secrets(request) + request.app[STATE].upstream_secrets
        body = scrub(err.upstream_body.decode("utf-8", "replace"), secrets).encode()
        record.status = err.status
        record.error = err.message
        return web.Response(
            status=err.status, body=body, content_type="application/json"
        )
    try:
        if not req.stream:
            return await _whole(upstream, resp, record)
        return await _stream(request, door, req, upstream, resp, record)
    finally:
        upstream.release(resp)


def _rewrite(
    request: web.Request,
    door: FrontDoor,
    body: bytes,
    req: ir.Request,
    resolved: Resolved,
    record: RequestRecord,
) -> bytes:
    """The client's body with the target model, limits and tool filter."""
    settings = request.app[STATE].sessions.settings_for(req.client.session_key)
    allowed = settings.allowed_tools if settings is not None else None
    limit = resolved.max_tokens_limit
    # record.model is the model the client's body names.
    if resolved.target == record.model and allowed is None and limit is None:
        return body
    raw: dict[str, Any] = _json.decode(body)
    raw["model"] = resolved.target
    if allowed is not None and isinstance(raw.get("tools"), list):
        raw["tools"] = [t for t in raw["tools"] if _tool_name(t) in allowed]
    if limit is not None:
        fields = MAX_TOKENS_FIELDS[door.name]
        present = [f for f in fields if isinstance(raw.get(f), int)]
        for field in present:
            raw[field] = min(raw[field], limit)
        if not present:
            raw[fields[0]] = limit
    return _encode.encode(raw)


async def _whole(
    upstream: HttpUpstream, resp: aiohttp.ClientResponse, record: RequestRecord
) -> web.Response:
    record.status = resp.status
    payload = b"".join([chunk async for chunk in upstream.chunks(resp)])
    record.mark_first_token()
    try:
        usage = _usage_decoder.decode(payload).found()
    except _DECODE_ERRORS:
        raise errors.UpstreamError(
            f"upstream {upstream.name!r} answered with something that is not JSON:"
            f" {payload[:120].decode('utf-8', 'replace')!r}"
        ) from None
    if usage is not None:
        _set_usage(record, usage)
    record.bytes_out = len(payload)
    capture_response(record, payload)
    return web.Response(
        status=resp.status, body=payload, content_type="application/json"
    )


async def _stream(
    request: web.Request,
    door: FrontDoor,
    req: ir.Request,
    upstream: HttpUpstream,
    resp: aiohttp.ClientResponse,
    record: RequestRecord,
) -> web.StreamResponse:
    record.status = resp.status
    out = web.StreamResponse(status=resp.status, headers=sse_headers())
    await out.prepare(request)
    watch = RelayWatch(door.name)
    # A Responses stream numbers its events: a break must continue them.
    relayed = RelayedStream(req) if door.name == "responses" else None
    tail = b""
    failure: ir.StreamError | None = None
    try:
        async for chunk in upstream.chunks(resp):
            ready = watch.feed(chunk)
            if ready:
                await _send(out, record, ready, relayed)
                tail = _keep(tail, ready)
            if watch.problem is not None:
                failure = ir.StreamError(
                    errors.ErrorKind.UPSTREAM_ERROR, watch.problem, 502
                )
                break
        else:
            if rest := watch.close():
                await _send(out, record, rest, relayed)
                tail = _keep(tail, rest)
            if watch.problem is not None:
                failure = ir.StreamError(
                    errors.ErrorKind.UPSTREAM_ERROR, watch.problem, 502
                )
            elif not watch.ended:
                failure = ir.StreamError(
                    errors.ErrorKind.UPSTREAM_ERROR,
                    f"upstream {upstream.name!r} ended its stream before its answer",
                    502,
                )
    except errors.LMBridgeError as err:
        if not watch.ended:
            failure = ir.StreamError(err.kind, err.message, err.status)
    if failure is not None:
        record.error = failure.message
        if relayed is not None:
            await out.write(relayed.fail(failure))
        else:
            await out.write(door.stream_encoder(req).encode(failure))
    _record_stream_usage(record, tail)
    await out.write_eof()
    return out


async def _send(
    out: web.StreamResponse,
    record: RequestRecord,
    data: bytes,
    relayed: RelayedStream | None,
) -> None:
    if record.first_token is None:
        record.mark_first_token()
    record.bytes_out += len(data)
    capture_response(record, data)
    await out.write(data)
    if relayed is not None:
        relayed.feed(data)


def _tool_name(tool: Any) -> str | None:
    """A tool's name in any of the three protocols' tool shapes."""
    if not isinstance(tool, dict):
        return None
    fn = tool.get("function")
    name = fn.get("name") if isinstance(fn, dict) else tool.get("name")
    return name if isinstance(name, str) else None


def _forwarded(request: web.Request) -> dict[str, str]:
    headers = {}
    for name in ("anthropic-version", "anthropic-beta"):
        if value := request.headers.get(name):
            headers[name] = value
    return headers


def _set_usage(record: RequestRecord, usage: _UsageOnly) -> None:
    record.tokens_in = usage.prompt_tokens or usage.input_tokens or record.tokens_in
    record.tokens_out = usage.completion_tokens or usage.output_tokens or 0


def _keep(tail: bytes, ready: bytes) -> bytes:
    """The end of the stream so far, for reading usage from at the end.

    The last frames may be long (Responses' completed event repeats the
    whole response), so the latest block is kept whole, up to 256 KiB.
    """
    return (tail[-8192:] + ready)[-262144:]


def _record_stream_usage(record: RequestRecord, tail: bytes) -> None:
    # Usage rides in one of the last events; find the last data line naming it.
    for line in reversed(tail.split(b"\n")):
        if line.startswith(b"data: {") and b'"usage"' in line:
            try:
                usage = _usage_decoder.decode(line[6:]).found()
            except _DECODE_ERRORS:
                continue
            if usage is not None:
                _set_usage(record, usage)
                return
