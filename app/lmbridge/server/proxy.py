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

import msgspec
from aiohttp import web

from lmbridge.core import errors, events, ir
from lmbridge.core.assemble import Assembler
from lmbridge.core.events import RequestRecord
from lmbridge.protocols.base import EventFilter, FrontDoor
from lmbridge.protocols.stops import StopSequenceFilter
from lmbridge.protocols.toolrepair import ToolCallRepair
from lmbridge.protocols.usage import UsageFilter
from lmbridge.server.capture import (
    capture_request,
    capture_response,
    request_secrets,
    scrub,
    scrub_record,
)
from lmbridge.server.relay import SAME_API, relay, should_fall_back, sse_headers
from lmbridge.server.state import STATE, ProxyState
from lmbridge.upstreams.http import flatten
from lmbridge.upstreams.router import Resolved
from lmbridge.upstreams.sessions import SessionManager, Turn

log = logging.getLogger(__name__)

# Session keys, first found: this header, the body's own key (Anthropic
# metadata.user_id's session_id, OpenAI prompt_cache_key or user), X-Session-Id.
SESSION_HEADER = "X-Claude-Code-Session-Id"
SESSION_FALLBACK_HEADER = "X-Session-Id"


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
    secrets = request_secrets(request) + state.upstream_secrets
    try:
        return await _serve(request, door, state, record)
    except errors.LMBridgeError as err:
        err.message = scrub(err.message, secrets)
        record.status = err.status
        record.error = err.message
        return error_response(door, err)
    except asyncio.CancelledError:
        record.client_gone = True
        record.error = "the client went away"
        raise
    finally:
        scrub_record(record, secrets)
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
                return await relay(request, door, body, req, resolved, record, last)
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


def _clamp(value: int | None, limit: int | None) -> int | None:
    if limit is None or value is None:
        return value if limit is None else (value or limit)
    return min(value, limit)


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
    batches = await open_batches(req, resolved, record, state.sessions)
    if not req.stream:
        response = await _assemble(batches, req, record)
        if remembering:
            response.id = new_response_id()
            state.responses.remember(response.id, req, response)
        payload = door.encode_response(response)
        record.bytes_out = len(payload)
        capture_response(record, payload)
        return web.Response(body=payload, content_type="application/json")
    encoder = door.stream_encoder(req)
    assembler = Assembler(model=req.model) if remembering else None
    out = web.StreamResponse(status=200, headers=sse_headers())
    await out.prepare(request)
    async with contextlib.aclosing(batches):
        async for batch in batches:
            # One write per upstream read: the first token leaves together
            # with the message start, and the client gets fewer packets.
            data = b"".join([encoder.encode(event) for event in batch])
            for event in batch:
                observe(record, event)
                if assembler is not None:
                    assembler.feed(event)
            if data:
                record.bytes_out += len(data)
                capture_response(record, data)
                await out.write(data)
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
    return flatten(await open_batches(req, resolved, record, sessions))


async def open_batches(
    req: ir.Request,
    resolved: Resolved,
    record: RequestRecord,
    sessions: SessionManager | None = None,
) -> AsyncGenerator[list[ir.Event], None]:
    """`open_stream`, one list of events per upstream read."""
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
        batches = await upstream.open_batches(up_req, record)
    else:
        batches = await _open_turn(turn, resolved, record)
    record.status = 200
    return _filtered(batches, event_filters(req))


async def _open_turn(
    turn: Turn, resolved: Resolved, record: RequestRecord
) -> AsyncGenerator[list[ir.Event], None]:
    upstream = resolved.upstream
    before = record.upstream_bytes
    if turn.chained:
        sent = len(turn.full.messages) - len(turn.request().messages)
        record.notes.append(f"session: chained, {sent} earlier messages not resent")
    elif turn.state.last_response_id:
        record.notes.append("session: history diverged, full history sent")
    try:
        batches = await upstream.open_batches(turn.request(), record)
    except errors.LMBridgeError as err:
        if not (turn.chained and 400 <= err.status < 500):
            raise
        record.notes.append("session: upstream lost the chain, full history resent")
        before = record.upstream_bytes
        batches = await upstream.open_batches(turn.fall_back_to_full(), record)
    sent = record.upstream_bytes - before
    full = upstream.encoded_size(turn.full) if turn.chained else sent
    return _tracked(batches, turn, sent, full)


async def _tracked(
    batches: AsyncGenerator[list[ir.Event], None], turn: Turn, sent: int, full: int
) -> AsyncGenerator[list[ir.Event], None]:
    """Pass events on; a completed answer extends the session's chain."""
    async with contextlib.aclosing(batches):
        async for batch in batches:
            for event in batch:
                turn.observe(event)
                if isinstance(event, ir.Finish):
                    await turn.commit(sent, full)
            yield batch


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


async def _assemble(
    batches: AsyncGenerator[list[ir.Event], None],
    req: ir.Request,
    record: RequestRecord,
) -> ir.Response:
    return await assemble(flatten(batches), req, record)


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
    batches: AsyncGenerator[list[ir.Event], None], filters: list[EventFilter]
) -> AsyncGenerator[list[ir.Event], None]:
    """Apply `filters`; end (closing the upstream) at the first Finish/error."""
    async with contextlib.aclosing(batches):
        async for batch in batches:
            for f in filters:
                batch = [out for e in batch for out in f.feed(e)]
            for i, out in enumerate(batch):
                if isinstance(out, ir.Finish | ir.StreamError):
                    yield batch[: i + 1]
                    return
            if batch:
                yield batch
        batch = []
        for f in filters:
            batch = [out for e in batch for out in f.feed(e)] + f.close()
        if batch:
            yield batch


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
