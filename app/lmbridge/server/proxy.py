"""The request pipeline shared by every model front door.

parse -> route -> (pass-through relay | translate through the IR) -> render.
Every request becomes a RequestRecord on the event bus as it progresses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncGenerator
from typing import Any

import aiohttp
import msgspec
from aiohttp import web

from lmbridge.core import errors, events, ir
from lmbridge.core.assemble import Assembler
from lmbridge.core.events import RequestRecord
from lmbridge.protocols.base import EventFilter, FrontDoor
from lmbridge.protocols.openai_responses.relay import RelayedStream
from lmbridge.protocols.registry import upstream_codec
from lmbridge.protocols.stops import StopSequenceFilter
from lmbridge.protocols.toolrepair import ToolCallRepair
from lmbridge.protocols.usage import UsageFilter
from lmbridge.server.state import STATE, ProxyState
from lmbridge.server.streaming import with_pings
from lmbridge.upstreams.http import HttpUpstream
from lmbridge.upstreams.router import Resolved
from lmbridge.upstreams.sessions import SessionManager, Turn

log = logging.getLogger(__name__)

# The upstream API that speaks each front door's protocol unchanged.
SAME_API = {"openai": "chat", "anthropic": "messages", "responses": "responses"}
# The name of the max-tokens field per protocol, for clamping on pass-through.
MAX_TOKENS_FIELDS = {
    "openai": ("max_tokens", "max_completion_tokens"),
    "anthropic": ("max_tokens",),
    "responses": ("max_output_tokens",),
}
# Session keys, first found: this header, the body's own key (Anthropic
# metadata.user_id's session_id, OpenAI prompt_cache_key or user), X-Session-Id.
SESSION_HEADER = "X-Claude-Code-Session-Id"
SESSION_FALLBACK_HEADER = "X-Session-Id"

_json = msgspec.json.Decoder()
_encode = msgspec.json.Encoder()


class _UsageOnly(msgspec.Struct):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None


class _WithUsage(msgspec.Struct):
    usage: _UsageOnly | None = None


_usage_decoder = msgspec.json.Decoder(_WithUsage)


def error_response(door: FrontDoor, err: errors.LMBridgeError) -> web.Response:
    headers = {}
    if err.retry_after is not None:
        headers["Retry-After"] = str(max(0, round(err.retry_after)))
    return web.Response(
        status=err.status,
        body=door.encode_error(err),
        content_type="application/json",
        headers=headers,
    )


async def handle(request: web.Request, door: FrontDoor) -> web.StreamResponse:
    """Serve one model request arriving through `door`."""
    state = request.app[STATE]
    record = RequestRecord(
        client=request.headers.get("User-Agent", ""),
        protocol=door.name,
        path=request.path,
    )
    state.bus.publish(events.REQUEST_STARTED, record)
    try:
        return await _serve(request, door, state, record)
    except errors.LMBridgeError as err:
        record.status = err.status
        record.error = err.message
        return error_response(door, err)
    except asyncio.CancelledError:
        record.client_gone = True
        record.error = "the client went away"
        raise
    finally:
        record.mark_done()
        state.bus.publish(events.REQUEST_FINISHED, record)


async def _serve(
    request: web.Request, door: FrontDoor, state: ProxyState, record: RequestRecord
) -> web.StreamResponse:
    body = await request.read()
    record.bytes_in = len(body)
    if state.capture_bodies:
        capture_request(record, request, body)
    req = door.parse_request(body)
    session_key = (
        request.headers.get(SESSION_HEADER)
        or req.client.session_key
        or request.headers.get(SESSION_FALLBACK_HEADER)
    )
    req = msgspec.structs.replace(
        req, client=ir.ClientInfo(user_agent=record.client, session_key=session_key)
    )
    record.model = req.model
    overridden = state.sessions.apply_settings(req)
    if overridden.model != req.model:
        record.notes.append(f"session override: model {overridden.model}")
    req = overridden
    record.stream = req.stream
    record.session_key = req.client.session_key
    candidates = state.router.candidates(req.model)
    for attempt, resolved in enumerate(candidates):
        last = attempt == len(candidates) - 1
        record.route = resolved.rule
        record.upstream = resolved.upstream.name
        record.target = resolved.target
        record.upstream_api = resolved.upstream.api
        state.bus.publish(events.REQUEST_UPDATED, record)
        try:
            resolved = await _prepare(state, req, resolved, record)
            if resolved.upstream.speaks(SAME_API[door.name]):
                return await _relay(request, door, body, req, resolved, record, last)
            return await _translate(request, door, req, resolved, record, state)
        except errors.LMBridgeError as err:
            # Nothing reached the client yet: the next upstream may answer.
            if last or not should_fall_back(err):
                raise
            nxt = candidates[attempt + 1].upstream.name
            record.notes.append(
                f"fallback {resolved.upstream.name} -> {nxt} ({err.status})"
            )
    raise AssertionError("unreachable: the router returns at least one candidate")


async def _prepare(
    state: ProxyState, req: ir.Request, resolved: Resolved, record: RequestRecord
) -> Resolved:
    """LM Studio: load on demand, minimum context, context fit."""
    if state.models is None or resolved.upstream.name != state.models_upstream:
        return resolved
    target_req = msgspec.structs.replace(
        req, max_tokens=_clamp(req.max_tokens, resolved.max_tokens_limit)
    )
    cap = await state.models.prepare(target_req, resolved.target, record)
    if cap is None:
        return resolved
    return resolved._replace(max_tokens_limit=cap)


def should_fall_back(err: errors.LMBridgeError) -> bool:
    """Unreachable, rate-limited or failing upstreams hand over to the next."""
    return err.status == 429 or err.status >= 500


def _clamp(value: int | None, limit: int | None) -> int | None:
    if limit is None or value is None:
        return value if limit is None else (value or limit)
    return min(value, limit)


# ------------------------------------------------------------------ pass-through


async def _relay(
    request: web.Request,
    door: FrontDoor,
    body: bytes,
    req: ir.Request,
    resolved: Resolved,
    record: RequestRecord,
    last: bool = True,
) -> web.StreamResponse:
    """Same protocol on both sides: forward the client's JSON with the model
    renamed, and relay the upstream's bytes as they arrive."""
    upstream = resolved.upstream
    settings = state_of(request).sessions.settings_for(req.client.session_key)
    allowed = settings.allowed_tools if settings is not None else None
    # record.model is the model the client's body names.
    rewrite = resolved.target != record.model or allowed is not None
    if rewrite or resolved.max_tokens_limit is not None:
        raw: dict[str, Any] = _json.decode(body)
        raw["model"] = resolved.target
        if allowed is not None and isinstance(raw.get("tools"), list):
            raw["tools"] = [t for t in raw["tools"] if _tool_name(t) in allowed]
        limit = resolved.max_tokens_limit
        if limit is not None:
            fields = MAX_TOKENS_FIELDS[door.name]
            present = [f for f in fields if isinstance(raw.get(f), int)]
            for field in present:
                raw[field] = min(raw[field], limit)
            if not present:
                raw[fields[0]] = limit
        body = _encode.encode(raw)
    codec = upstream_codec(SAME_API[door.name])
    try:
        resp = await upstream.post(
            codec.path, body, codec=codec, record=record, headers=_forwarded(request)
        )
    except errors.LMBridgeError as err:
        if err.upstream_body is None or (not last and should_fall_back(err)):
            raise
        record.status = err.status
        record.error = err.message
        return web.Response(
            status=err.status, body=err.upstream_body, content_type="application/json"
        )
    try:
        return await _relay_answer(request, door, req, upstream, resp, record)
    finally:
        upstream.release(resp)


async def _relay_answer(
    request: web.Request,
    door: FrontDoor,
    req: ir.Request,
    upstream: HttpUpstream,
    resp: aiohttp.ClientResponse,
    record: RequestRecord,
) -> web.StreamResponse:
    record.status = resp.status
    if not req.stream:
        async with resp:
            payload = await _read_all(upstream, resp)
        record.mark_first_token()
        record.bytes_out = len(payload)
        capture_response(record, payload)
        _record_usage(record, payload)
        return web.Response(
            status=resp.status, body=payload, content_type="application/json"
        )
    out = web.StreamResponse(status=resp.status, headers=_sse_headers())
    await out.prepare(request)
    tail = b""
    # A Responses stream numbers its events: a break must continue them.
    relayed = RelayedStream(req) if door.name == "responses" else None
    try:
        async for chunk in upstream.chunks(resp):
            if record.first_token is None:
                record.mark_first_token()
            record.bytes_out += len(chunk)
            capture_response(record, chunk)
            await out.write(chunk)
            tail = (tail + chunk)[-4096:]
            if relayed is not None:
                relayed.feed(chunk)
    except errors.LMBridgeError as err:
        record.error = err.message
        failure = ir.StreamError(err.kind, err.message, err.status)
        if _ended(tail):
            pass  # the answer was complete; only the connection broke after it
        elif relayed is not None:
            await out.write(relayed.fail(failure))
        else:
            await out.write(door.stream_encoder(req).encode(failure))
    _record_stream_usage(record, tail)
    await out.write_eof()
    return out


BODY_CAP = 256 * 1024
SECRET_HEADERS = frozenset(
    {"authorization", "x-api-key", "api-key", "proxy-authorization", "cookie"}
)


def capture_request(record: RequestRecord, request: web.Request, body: bytes) -> None:
    """Keep the request for the GUI: headers with secrets masked, capped body."""
    record.capture = True
    record.request_headers = {
        k: ("***" if k.lower() in SECRET_HEADERS else v)
        for k, v in request.headers.items()
    }
    record.request_body = body[:BODY_CAP].decode("utf-8", "replace")


def capture_response(record: RequestRecord, data: bytes) -> None:
    """Append answer bytes to the record, up to BODY_CAP (only if capturing)."""
    if not record.capture:
        return
    room = BODY_CAP - len(record.response_body)
    if room <= 0:
        record.response_truncated = True
        return
    record.response_body += data[:room].decode("utf-8", "replace")


def state_of(request: web.Request) -> ProxyState:
    return request.app[STATE]


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


async def _read_all(upstream: HttpUpstream, resp: aiohttp.ClientResponse) -> bytes:
    parts = [chunk async for chunk in upstream.chunks(resp)]
    return b"".join(parts)


def _record_usage(record: RequestRecord, payload: bytes) -> None:
    try:
        usage = _usage_decoder.decode(payload).usage
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeError, RecursionError):
        return
    if usage is not None:
        record.tokens_in = usage.prompt_tokens or usage.input_tokens or 0
        record.tokens_out = usage.completion_tokens or usage.output_tokens or 0


_TERMINAL_MARKERS = (b"data: [DONE]", b"event: message_stop", b'"message_stop"')


def _ended(tail: bytes) -> bool:
    """Whether a relayed Chat or Messages stream already sent its last event."""
    return any(marker in tail for marker in _TERMINAL_MARKERS)


def _record_stream_usage(record: RequestRecord, tail: bytes) -> None:
    # Usage rides in one of the last events; find the last data line naming it.
    for line in reversed(tail.split(b"\n")):
        if line.startswith(b"data: {") and b'"usage"' in line:
            _record_usage(record, line[6:])
            if record.tokens_in or record.tokens_out:
                return


def _sse_headers() -> dict[str, str]:
    return {
        "Content-Type": "text/event-stream",
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
    }


# ------------------------------------------------------------------ translation


async def _translate(
    request: web.Request,
    door: FrontDoor,
    req: ir.Request,
    resolved: Resolved,
    record: RequestRecord,
    state: ProxyState,
) -> web.StreamResponse:
    """Different protocols: go through the IR both ways."""
    remembering = door.name == "responses"
    if remembering:
        req = state.responses.expand(req)
    stream = await open_stream(req, resolved, record, state.sessions)
    if not req.stream:
        response = await assemble(stream, req, record)
        if remembering:
            response.id = new_response_id()
            state.responses.remember(response.id, req, response)
        payload = door.encode_response(response)
        record.bytes_out = len(payload)
        capture_response(record, payload)
        return web.Response(body=payload, content_type="application/json")
    encoder = door.stream_encoder(req)
    assembler = Assembler(model=req.model) if remembering else None
    out = web.StreamResponse(status=200, headers=_sse_headers())
    await out.prepare(request)
    pinged = with_pings(stream, state.settings.server.ping_interval)
    async with contextlib.aclosing(stream), contextlib.aclosing(pinged):
        async for event in pinged:
            observe(record, event)
            data = encoder.encode(event)
            if data:
                record.bytes_out += len(data)
                capture_response(record, data)
                await out.write(data)
            if assembler is not None:
                assembler.feed(event)
    if assembler is not None and assembler.finished:
        state.responses.remember(
            getattr(encoder, "response_id", ""), req, assembler.result()
        )
    await out.write_eof()
    return out


def new_response_id() -> str:
    return f"resp_{uuid.uuid4().hex}"


async def open_stream(
    req: ir.Request,
    resolved: Resolved,
    record: RequestRecord,
    sessions: SessionManager | None = None,
) -> AsyncGenerator[ir.Event, None]:
    """Send `req` to its resolved upstream; its answer as filtered IR events.

    Raises our errors for failures before the first byte. Shared by every
    caller that needs a model's answer in IR form (front doors, chat APIs).
    With `sessions`, a keyed conversation to a Responses upstream is chained.
    """
    upstream = resolved.upstream
    up_req = msgspec.structs.replace(
        req,
        model=resolved.target,
        max_tokens=_clamp(req.max_tokens, resolved.max_tokens_limit),
    )
    turn = None
    if sessions is not None and upstream.api == "responses":
        turn = await sessions.begin(up_req, upstream.name)
    if turn is None:
        stream = await upstream.open_events(up_req, record)
    else:
        stream = await _open_turn(turn, resolved, record)
    record.status = 200
    return _filtered(stream, event_filters(req))


async def _open_turn(
    turn: Turn, resolved: Resolved, record: RequestRecord
) -> AsyncGenerator[ir.Event, None]:
    upstream = resolved.upstream
    before = record.upstream_bytes
    if turn.chained:
        sent = len(turn.full.messages) - len(turn.request().messages)
        record.notes.append(f"session: chained, {sent} earlier messages not resent")
    elif turn.state.last_response_id:
        record.notes.append("session: history diverged, full history sent")
    try:
        stream = await upstream.open_events(turn.request(), record)
    except errors.LMBridgeError as err:
        if not (turn.chained and 400 <= err.status < 500):
            raise
        record.notes.append("session: upstream lost the chain, full history resent")
        before = record.upstream_bytes
        stream = await upstream.open_events(turn.fall_back_to_full(), record)
    sent = record.upstream_bytes - before
    full = upstream.encoded_size(turn.full) if turn.chained else sent
    return _tracked(stream, turn, sent, full)


async def _tracked(
    stream: AsyncGenerator[ir.Event, None], turn: Turn, sent: int, full: int
) -> AsyncGenerator[ir.Event, None]:
    """Pass events on; a completed answer extends the session's chain."""
    async with contextlib.aclosing(stream):
        async for event in stream:
            turn.observe(event)
            if isinstance(event, ir.Finish):
                await turn.commit(sent, full)
            yield event


async def assemble(
    stream: AsyncGenerator[ir.Event, None], req: ir.Request, record: RequestRecord
) -> ir.Response:
    """Read a whole answer; raises the stream's error if it failed."""
    assembler = Assembler(model=req.model)
    async with contextlib.aclosing(stream):
        async for event in stream:
            observe(record, event)
            assembler.feed(event)
    response = assembler.result()
    response.model = req.model
    return response


def event_filters(req: ir.Request) -> list[EventFilter]:
    """The filters a translated answer to `req` passes through, in order."""
    filters: list[EventFilter] = []
    if req.stop:
        filters.append(StopSequenceFilter(req.stop))
    if req.tools:
        # After the stop filter, so text cut at a stop still becomes a call.
        filters.append(ToolCallRepair.for_request(req))
    # Last, so it sees the Finish a stop sequence makes and the final text.
    filters.append(UsageFilter(req))
    return filters


async def _filtered(
    stream: AsyncGenerator[ir.Event, None], filters: list[EventFilter]
) -> AsyncGenerator[ir.Event, None]:
    """Apply `filters`; end (closing the upstream) at the first Finish/error."""
    async with contextlib.aclosing(stream):
        async for event in stream:
            batch = [event]
            for f in filters:
                batch = [out for e in batch for out in f.feed(e)]
            for out in batch:
                yield out
                if isinstance(out, ir.Finish | ir.StreamError):
                    return
        batch = []
        for f in filters:
            batch = [out for e in batch for out in f.feed(e)] + f.close()
        for out in batch:
            yield out


def observe(record: RequestRecord, event: ir.Event) -> None:
    if isinstance(event, ir.TextDelta | ir.ThinkingDelta | ir.ToolArgsDelta):
        if record.first_token is None:
            record.mark_first_token()
    elif isinstance(event, ir.MessageStart):
        record.tokens_in = event.input_tokens
    elif isinstance(event, ir.Finish):
        if event.usage.input_tokens:
            record.tokens_in = event.usage.input_tokens
        record.tokens_out = event.usage.output_tokens
    elif isinstance(event, ir.StreamError):
        record.error = event.message
