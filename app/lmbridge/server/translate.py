"""Call and filter, translated: an IR request to its upstream, and the
upstream's answer back as filtered IR events.

`open_batches` sends the request (chaining a keyed conversation on an
upstream whose API chains answers by id), then runs the answer through the
IR filters (stop sequences, text tool-call repair, usage estimates);
server/answer.py encodes what comes out for the client and keeps it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator

import msgspec

from lmbridge.core import errors, ir
from lmbridge.core.events import RequestRecord
from lmbridge.core.record import NoteKind
from lmbridge.protocols.base import EventFilter
from lmbridge.protocols.stops import StopSequenceFilter
from lmbridge.protocols.toolrepair import ToolCallRepair
from lmbridge.protocols.usage import UsageFilter
from lmbridge.server.maxtokens import clamp
from lmbridge.upstreams.router import Resolved
from lmbridge.upstreams.sessions import SessionManager, Turn

Batches = AsyncGenerator[list[ir.Event], None]


async def open_batches(
    req: ir.Request,
    resolved: Resolved,
    record: RequestRecord,
    sessions: SessionManager | None = None,
) -> Batches:
    """Send `req` to its resolved upstream; the answer, one list of IR
    events per upstream read, filtered.

    Raises our errors for failures before the first byte. With `sessions`,
    a keyed conversation to an upstream whose API chains answers by id
    (`Wire.chains`: Responses) is chained.
    """
    upstream = resolved.upstream
    up_req = msgspec.structs.replace(
        req,
        model=resolved.target,
        max_tokens=clamp(req.max_tokens, resolved.max_tokens_limit),
    )
    turn = None
    if sessions is not None and upstream.codec.wire.chains:
        turn = await sessions.begin(up_req, upstream.name, record)
    if turn is None:
        batches = await upstream.open_batches(up_req, record)
    else:
        batches = await _open_turn(turn, resolved, record)
    record.status = 200
    return _filtered(batches, event_filters(req))


async def _open_turn(turn: Turn, resolved: Resolved, record: RequestRecord) -> Batches:
    upstream = resolved.upstream
    before = record.upstream_bytes
    if turn.chained:
        sent = len(turn.full.messages) - len(turn.request().messages)
        record.note(
            NoteKind.SESSION, f"session: chained, {sent} earlier messages not resent"
        )
    elif turn.state.last_response_id:
        record.note(NoteKind.SESSION, "session: history diverged, full history sent")
    try:
        batches = await upstream.open_batches(turn.request(), record)
    except errors.LMBridgeError as err:
        if not (turn.chained and 400 <= err.status < 500):
            raise
        record.note(
            NoteKind.SESSION, "session: upstream lost the chain, full history resent"
        )
        before = record.upstream_bytes
        batches = await upstream.open_batches(turn.fall_back_to_full(), record)
    sent = record.upstream_bytes - before
    full = upstream.encoded_size(turn.full) if turn.chained else sent
    return _tracked(batches, turn, sent, full)


async def _tracked(batches: Batches, turn: Turn, sent: int, full: int) -> Batches:
    """Pass events on; a completed answer extends the session's chain (saved
    off the answer path: nothing here waits on the database)."""
    async with contextlib.aclosing(batches):
        async for batch in batches:
            for event in batch:
                turn.observe(event)
                if isinstance(event, ir.Finish):
                    turn.commit(sent, full)
            yield batch


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


async def _filtered(batches: Batches, filters: list[EventFilter]) -> Batches:
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
