"""The one request pipeline: every model call, whatever door it came in by.

    parse -> route (with fallback) -> prepare (LM Studio, sessions, clamps)
          -> upstream -> IR filters -> encode -> record (scrubbed)

The model front doors, the chat service (`/chat`) and the conversation store
(`/store`) all come through here; what differs between them is their codec
(`protocols/`) and, for the stateful ones, an `Exchange`: hooks around the
model call that expand the conversation before it and keep the answer after
it. Every request becomes a `RequestRecord` on the event bus as it
progresses; secrets are scrubbed from it before it is published finished.

No secret leaves by an answer either (`core/redact.py`): an error answer
is scrubbed in full (`error_response`), an error event in a stream too,
and every byte written to the client gets the cheap literal check.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable

import msgspec
from aiohttp import web

from lmbridge.core import errors, events, ir
from lmbridge.core.assemble import Assembler
from lmbridge.core.events import RequestRecord
from lmbridge.core.record import NoteKind
from lmbridge.core.redact import SECRETS, encoded
from lmbridge.protocols import tokens
from lmbridge.protocols.anthropic import billing
from lmbridge.protocols.base import AnswerCodec, RequestCodec, StreamEncoder
from lmbridge.server import maxtokens, overflow_known
from lmbridge.server.capture import (
    capture_request,
    capture_response,
    request_secrets,
    scrub,
    scrub_record,
)
from lmbridge.server.exchange import (
    CLIENT_GONE,
    Exchange,
    IdentifiedEncoder,
    MemoryExchange,
)
from lmbridge.server.relay import Relay, should_fall_back, sse_headers
from lmbridge.server.services import Services
from lmbridge.server.translate import Batches, assemble, clamp, observe, open_batches
from lmbridge.upstreams.modelprep import SERVER_WINDOW_FIX, fit
from lmbridge.upstreams.router import Resolved

log = logging.getLogger(__name__)

# Session keys, first found: this header, the body's own key (Anthropic
# metadata.user_id's session_id, OpenAI prompt_cache_key or user), X-Session-Id.
SESSION_HEADER = "X-Claude-Code-Session-Id"
SESSION_FALLBACK_HEADER = "X-Session-Id"
# Claude Code's subagents share the session id; each has its own chain.
AGENT_HEADER = "X-Claude-Code-Agent-Id"


class _NamedModel(msgspec.Struct):
    model: str | None = None
    model_key: str | None = None  # the chat service's name for it


def model_named(body: bytes) -> str:
    """The model a request body names, if it can be read at all ("" if not)."""
    try:
        named = msgspec.json.decode(body, type=_NamedModel)
    except errors.DECODE_ERRORS:
        return ""
    return (named.model or named.model_key or "")[:200]


def new_response_id() -> str:
    return f"resp_{uuid.uuid4().hex}"


def answer_status(err: errors.LMBridgeError) -> int:
    """The HTTP status LM Bridge answers `err` with.

    An upstream's own 500 is a 502 here: 500 is kept for faults of ours.
    """
    if isinstance(err, errors.UpstreamError) and err.status == 500:
        return 502
    return err.status


def error_response(door: AnswerCodec, err: errors.LMBridgeError) -> web.Response:
    """`err` as an HTTP answer in `door`'s protocol, its message scrubbed."""
    err.message = SECRETS.scrub(err.message)
    status = answer_status(err)
    headers = {}
    if err.retry_after is not None:
        headers["Retry-After"] = str(max(0, round(err.retry_after)))
    return web.Response(
        status=status,
        body=door.encode_error(err),
        content_type="application/json",
        headers=headers,
    )


class Pipeline:
    """Serves model calls with the app's services."""

    def __init__(self, services: Services, *, capture_bodies: bool = False) -> None:
        self.services = services
        # Keep request/response bodies on records (the GUI's detail pane).
        self.capture_bodies = capture_bodies

    async def serve(
        self,
        request: web.Request,
        door: RequestCodec,
        *,
        exchange: Exchange | None = None,
        parse: Callable[[bytes], ir.Request] | None = None,
    ) -> web.StreamResponse:
        """Serve one model call arriving through `door`, which parses it
        (with `parse`, when the route hands the door more than the body)."""
        return await self._serve(request, door, parse or door.parse_request, exchange)

    async def serve_parsed(
        self,
        request: web.Request,
        codec: AnswerCodec,
        req: ir.Request,
        *,
        exchange: Exchange | None = None,
    ) -> web.StreamResponse:
        """Serve a model call whose request the route built itself (the
        store builds it from the stored chat); `codec` renders the answer."""
        return await self._serve(request, codec, lambda _body: req, exchange)

    async def _serve(
        self,
        request: web.Request,
        door: AnswerCodec,
        parse: Callable[[bytes], ir.Request],
        exchange: Exchange | None,
    ) -> web.StreamResponse:
        services = self.services
        record = RequestRecord(
            client=request.headers.get("User-Agent", ""),
            protocol=door.name,
            path=request.path,
        )
        services.bus.publish(events.REQUEST_STARTED, record)
        secrets = request_secrets(request)
        if exchange is None:
            exchange = MemoryExchange(services.responses) if door.remembers else None
        call = _Call(self, request, door, exchange or Exchange(), record, secrets)
        try:
            return await call.run(parse)
        except errors.LMBridgeError as err:
            err.message = scrub(err.message, secrets)
            record.status = answer_status(err)
            record.error = err.message
            record.error_kind = err.kind
            response = error_response(door, err)
            if isinstance(response.body, bytes) and not record.response_body:
                capture_response(record, response.body)  # what the client got
            return response
        except (asyncio.CancelledError, ConnectionResetError):
            record.client_gone = True
            record.error = CLIENT_GONE
            raise
        finally:
            scrub_record(record, secrets)
            record.mark_done()
            services.prefixes.finish(record)  # kept tokens, cache notes
            services.bus.publish(events.REQUEST_FINISHED, record)


class _Call:
    """One model call on its way through the pipeline."""

    def __init__(
        self,
        pipeline: Pipeline,
        request: web.Request,
        door: AnswerCodec,
        exchange: Exchange,
        record: RequestRecord,
        secrets: tuple[str, ...],
    ) -> None:
        self.services = pipeline.services
        self.capture = pipeline.capture_bodies
        self.request = request
        self.door = door
        self.exchange = exchange
        self.record = record
        self.secrets = secrets
        # Whether the streamed answer's last event has been written, and
        # whether its outcome has been handed to the exchange.
        self._ended = False
        self._kept = False
        self.secret_bytes = encoded(secrets)

    async def run(self, parse: Callable[[bytes], ir.Request]) -> web.StreamResponse:
        request, record, services = self.request, self.record, self.services
        body = await request.read()
        record.bytes_in = len(body)
        if self.capture:
            capture_request(record, request, body)
        try:
            req = parse(body)
        except errors.LMBridgeError:
            # Refused before routing: still kept under the model it was for
            # (named in the body, or in the URL: Gemini's /models/{model}).
            record.model = model_named(body) or request.match_info.get("model", "")
            raise
        session_key = (
            request.headers.get(SESSION_HEADER)
            or req.client.session_key
            or request.headers.get(SESSION_FALLBACK_HEADER)
        )
        req = msgspec.structs.replace(
            req,
            client=ir.ClientInfo(
                user_agent=record.client,
                session_key=session_key,
                agent=request.headers.get(AGENT_HEADER) or None,
            ),
        )
        record.model = req.model
        overridden = services.sessions.apply_settings(req)
        if overridden.model != req.model:
            record.note(NoteKind.SESSION, f"session override: model {overridden.model}")
        req = overridden
        record.stream = req.stream
        record.session_key = req.client.chain_key
        candidates = services.router.candidates(req.model)
        for attempt, resolved in enumerate(candidates):
            last = attempt == len(candidates) - 1
            self._routed(resolved)
            try:
                return await self._attempt(body, req, resolved, last)
            except errors.LMBridgeError as err:
                # Nothing reached the client yet: the next upstream may answer.
                if last or not should_fall_back(err):
                    raise
                nxt = candidates[attempt + 1].upstream.name
                record.note(
                    NoteKind.FALLBACK,
                    f"fallback {resolved.upstream.name} -> {nxt} ({err.status})",
                )
        raise AssertionError("unreachable: the router returns at least one candidate")

    def _routed(self, resolved: Resolved) -> None:
        record = self.record
        record.route = resolved.rule
        record.upstream = resolved.upstream.name
        record.target = resolved.target
        record.upstream_api = resolved.upstream.api
        self.services.bus.publish(events.REQUEST_UPDATED, record)

    async def _attempt(
        self, body: bytes, req: ir.Request, resolved: Resolved, last: bool
    ) -> web.StreamResponse:
        await self.exchange.routed(req, resolved)
        resolved = await self._prepare(req, resolved)
        memory, name = self.services.max_tokens, resolved.upstream.name
        learnt = memory.limit(name, resolved.target, lambda: tokens.count_request(req))
        if learnt is not None:
            resolved = resolved._replace(
                max_tokens_limit=clamp(learnt, resolved.max_tokens_limit)
            )
        sent = clamp(req.max_tokens, resolved.max_tokens_limit)
        try:
            return await self._send(body, req, resolved, last, retry=True)
        except errors.LMBridgeError as err:
            lower = maxtokens.lowered(err, sent)
            if lower is None:
                raise
            limit = lower.max_tokens
            memory.learn(name, resolved.target, lower)
            self.record.note(
                NoteKind.LIMIT,
                f"max_tokens lowered from {sent} to {limit}: {name} refused"
                f" {sent} ({err.message[:80]})",
            )
        return await self._send(
            body, req, resolved._replace(max_tokens_limit=limit), last, retry=False
        )

    async def _send(
        self, body: bytes, req: ir.Request, resolved: Resolved, last: bool, retry: bool
    ) -> web.StreamResponse:
        """One try at the upstream; `retry`: an error that a lower
        `max_tokens` would cure is raised (not answered) so it can be."""
        overflow_known.tell(self.services, req, resolved)
        self.services.prefixes.observe(self.record, req, resolved)
        passthrough = self.door.passthrough
        origins, name = self.services.origins, resolved.upstream.name
        codec = resolved.upstream.codec
        signs = codec.wire.signs_thinking
        foreign = origins.foreign(req, name, signs)
        search = self.services.web_search
        if (
            passthrough is not None
            and resolved.upstream.speaks(passthrough.api)
            and passthrough.relayable(req)
            and not foreign
            and not search.emulates(req, resolved.upstream, passthrough.api)
        ):
            settings = self.services.sessions.settings_for(req.client.session_key)
            allowed = settings.allowed_tools if settings is not None else None
            relay = Relay(self.request, passthrough, req, self.record, self.secrets)
            tools = frozenset(allowed) if allowed is not None else None
            sent = clamp(req.max_tokens, resolved.max_tokens_limit)
            if retry:
                relay.raises = lambda err: maxtokens.lowered(err, sent) is not None
            relay.produced = origins.remember
            return await relay.send(body, resolved, tools, last)
        req = search.prepare(await self.exchange.begin(req))
        if foreign:
            for note in origins.notes(req, name, signs):
                self.record.note(NoteKind.DROPPED, note)
            req = origins.without_foreign(req, name, signs)
        if not resolved.upstream.keeps_billing_header:
            stripped = billing.without_billing(req)
            if stripped is not req:
                self.record.note(NoteKind.DROPPED, f"dropped: {billing.NOTE}")
                req = stripped
        # A relayed body keeps all of this; only translation drops it.
        for note in [f"dropped: {line}" for line in req.dropped] + [
            f"dropped for {codec.name}: {line}" for line in codec.omitted(req)
        ]:
            self.record.note(NoteKind.DROPPED, note)  # once, however many tries
        sessions = self.services.sessions
        batches = await open_batches(req, resolved, self.record, sessions)
        if req.web_search is not None:
            batches = search.continued(batches, req, resolved, self.record, sessions)
        if not req.stream:
            return await self._whole(batches, req)
        return await self._stream(batches, req)

    async def _prepare(self, req: ir.Request, resolved: Resolved) -> Resolved:
        """LM Studio: load on demand, minimum context, context fit; a server
        that reports its window (llama.cpp's /props): context fit."""
        models = self.services.preparers.get(resolved.upstream.name)
        if models is not None:
            cap = await models.prepare(
                self._sent(req, resolved), resolved.target, self.record
            )
        else:
            window = await resolved.upstream.context_window(resolved.target)
            if window is None:
                return resolved
            sent = self._sent(req, resolved)
            cap = fit(sent, resolved.target, window, fix=SERVER_WINDOW_FIX)
            if cap is not None:
                self.record.note(
                    NoteKind.LIMIT,
                    f"max_tokens lowered to {cap} to fit context {window}",
                )
        if cap is None:
            return resolved
        return resolved._replace(max_tokens_limit=cap)

    @staticmethod
    def _sent(req: ir.Request, resolved: Resolved) -> ir.Request:
        """`req` with the `max_tokens` the route lets through."""
        return msgspec.structs.replace(
            req, max_tokens=clamp(req.max_tokens, resolved.max_tokens_limit)
        )

    async def _whole(self, batches: Batches, req: ir.Request) -> web.Response:
        record = self.record
        response = await assemble(batches, req, record)
        self.services.origins.remember_answer(response.parts, record.upstream)
        if self.door.remembers:
            response.id = new_response_id()
        if self.exchange.keeps_answers:
            await self.exchange.finished(req, response, None)
        payload = SECRETS.scrub_bytes(
            self.door.encode_response(response, req), self.secret_bytes
        )
        record.bytes_out = len(payload)
        capture_response(record, payload)
        return web.Response(body=payload, content_type="application/json")

    async def _stream(self, batches: Batches, req: ir.Request) -> web.StreamResponse:
        encoder = self.door.stream_encoder(req)
        keeps = self.exchange.keeps_answers
        assembler = Assembler(model=req.model) if keeps else None
        out = web.StreamResponse(status=200, headers=sse_headers(encoder.content_type))
        await out.prepare(self.request)
        try:
            await self._relay_events(out, encoder, batches, req, assembler)
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception as exc:
            # The headers are out: whatever failed becomes the stream's
            # error event in the client's protocol, never a second response.
            if isinstance(exc, errors.LMBridgeError):
                err = exc
            else:
                log.exception("a streamed answer failed after its headers")
                err = errors.LMBridgeError(
                    "LM Bridge failed mid-answer; see its log for details"
                )
            if not self._ended:
                failure = ir.StreamError(
                    err.kind, scrub(err.message, self.secrets), answer_status(err)
                )
                self.record.error = failure.message
                end: ir.Finish | ir.StreamError = failure
                if assembler is not None and not self._kept:
                    end = await self._keep(req, encoder, assembler, failure)
                await self._write(out, encoder, [end])
        await out.write_eof()
        return out

    async def _relay_events(
        self,
        out: web.StreamResponse,
        encoder: StreamEncoder,
        batches: Batches,
        req: ir.Request,
        assembler: Assembler | None,
    ) -> None:
        origins = self.services.origins
        ended = False
        try:
            async with contextlib.aclosing(batches):
                async for batch in batches:
                    for event in batch:
                        observe(self.record, event)
                        origins.observe(event, self.record.upstream)
                    if assembler is None:
                        # One write per upstream read: the first token leaves
                        # together with the message start, in fewer packets.
                        await self._write(out, encoder, batch)
                        continue
                    for event in batch:
                        assembler.feed(event)
                    end = batch[-1]
                    if not isinstance(end, ir.Finish | ir.StreamError):
                        await self._write(out, encoder, batch)
                        continue
                    await self._write(out, encoder, batch[:-1])
                    ended = True
                    end = await self._keep(req, encoder, assembler, end)
                    await self._write(out, encoder, [end])
        except (asyncio.CancelledError, ConnectionResetError):
            if assembler is not None and not ended:
                await self._interrupted(req, assembler)
            raise
        if assembler is not None and not ended:
            failure = "the upstream ended its answer early"
            end = await self._keep(req, encoder, assembler, None, failure)
            await self._write(out, encoder, [end])

    async def _keep(
        self,
        req: ir.Request,
        encoder: StreamEncoder,
        assembler: Assembler,
        end: ir.Finish | ir.StreamError | None,
        failure: str | None = None,
    ) -> ir.Finish | ir.StreamError:
        """Hand the outcome to the exchange; the event that ends the stream."""
        self._kept = True
        if isinstance(end, ir.StreamError):
            failure = end.message
        answer = assembler.partial()
        if isinstance(encoder, IdentifiedEncoder) and encoder.response_id:
            answer.id = encoder.response_id
        try:
            await self.exchange.finished(req, answer, failure)
        except errors.LMBridgeError as err:
            self.record.error = err.message
            return ir.StreamError(err.kind, err.message, err.status)
        if end is None:
            return ir.StreamError(errors.ErrorKind.UPSTREAM_ERROR, failure or "")
        return end

    async def _interrupted(self, req: ir.Request, assembler: Assembler) -> None:
        """The client left mid-answer: keep what it was sent, marked so."""
        with contextlib.suppress(errors.LMBridgeError):
            await self.exchange.finished(req, assembler.partial(), CLIENT_GONE)

    async def _write(
        self, out: web.StreamResponse, encoder: StreamEncoder, batch: list[ir.Event]
    ) -> None:
        if batch and isinstance(batch[-1], ir.Finish | ir.StreamError):
            self._ended = True
        end = batch[-1] if batch else None
        if isinstance(end, ir.StreamError):
            message = SECRETS.scrub(end.message, self.secrets)
            batch = [*batch[:-1], msgspec.structs.replace(end, message=message)]
        data = SECRETS.scrub_bytes(
            b"".join([encoder.encode(event) for event in batch]), self.secret_bytes
        )
        if data:
            self.record.bytes_out += len(data)
            capture_response(self.record, data)
            await out.write(data)
