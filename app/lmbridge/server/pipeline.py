"""The one request pipeline: every model call, whatever door it came in by.

One request, top-down; each step is in one place:

    parse    the door's codec: body -> ir.Request; its session  _Call.run
    route    the router's candidates, falling back on failure   _Call.run
    prepare  load on demand, context fit, max_tokens caps       _Call._attempt
    call     relay: the body as it came (server/relay.py)       _Call._send
             translate: the request as the upstream takes it,   _Call._translate
             sent, chained where the API chains (server/translate.py)
    filter   stop sequences, tool-call repair, usage            server/translate.py
    encode   the client's protocol, whole or streamed           server/answer.py
    keep     the exchange keeps the outcome, before the end     server/answer.py
    record   the RequestRecord, scrubbed; after the answer is   Pipeline._serve,
             written: prefix figures, published finished       Pipeline._finished

The model front doors, the chat service (`/chat`) and the conversation store
(`/store`) all come through here; what differs between them is their codec
(`protocols/`) and, for the stateful ones, an `Exchange`: hooks around the
model call that expand the conversation before it and keep the answer after
it. Every request becomes a `RequestRecord` on the event bus as it
progresses; secrets are scrubbed from it before it is published finished.

No secret leaves by an answer either (`core/redact.py`): an error answer
is scrubbed in full (`error_response`), and so is what relay.py and
answer.py send.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import msgspec
from aiohttp import web

from lmbridge.core import errors, events, ir
from lmbridge.core.events import RequestRecord
from lmbridge.core.record import NoteKind
from lmbridge.core.redact import SECRETS
from lmbridge.protocols import tokens
from lmbridge.protocols.base import AnswerCodec, Passthrough, RequestCodec
from lmbridge.protocols.registry import platform_blocks
from lmbridge.server import maxtokens, overflow_known
from lmbridge.server.answer import TranslatedAnswer, answer_status
from lmbridge.server.capture import (
    capture_request,
    capture_response,
    request_secrets,
    scrub,
    scrub_record,
)
from lmbridge.server.exchange import CLIENT_GONE, Exchange, MemoryExchange
from lmbridge.server.maxtokens import clamp
from lmbridge.server.relay import Relay, should_fall_back
from lmbridge.server.services import Services
from lmbridge.server.translate import open_batches
from lmbridge.upstreams.modelprep import SERVER_WINDOW_FIX, fit
from lmbridge.upstreams.router import Resolved

# Session keys, first found: this header, the body's own key (Anthropic
# metadata.user_id's session_id, OpenAI prompt_cache_key or user), X-Session-Id.
SESSION_HEADER = "X-Claude-Code-Session-Id"
SESSION_FALLBACK_HEADER = "X-Session-Id"
# Claude Code's subagents share the session id; each has its own chain.
AGENT_HEADER = "X-Claude-Code-Agent-Id"

log = logging.getLogger(__name__)

_NONE = Exchange()  # a stateless API's: adds nothing, shared by every call


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

    def serve(
        self,
        request: web.Request,
        door: RequestCodec,
        *,
        exchange: Exchange | None = None,
        parse: Callable[[bytes], ir.Request] | None = None,
    ) -> Awaitable[web.StreamResponse]:
        """Serve one model call arriving through `door`, which parses it
        (with `parse`, when the route hands the door more than the body).
        Not a coroutine of its own: one layer less on every request."""
        return self._serve(request, door, parse or door.parse_request, exchange)

    def serve_parsed(
        self,
        request: web.Request,
        codec: AnswerCodec,
        req: ir.Request,
        *,
        exchange: Exchange | None = None,
    ) -> Awaitable[web.StreamResponse]:
        """Serve a model call whose request the route built itself (the
        store builds it from the stored chat); `codec` renders the answer."""
        return self._serve(request, codec, lambda _body: req, exchange)

    async def _serve(
        self,
        request: web.Request,
        door: AnswerCodec,
        parse: Callable[[bytes], ir.Request],
        exchange: Exchange | None,
    ) -> web.StreamResponse:
        """The call, its error answered in the door's protocol, and (record)
        its record scrubbed and published finished, whatever happened."""
        services = self.services
        record = RequestRecord(
            client=request.headers.get("User-Agent", ""),
            protocol=door.name,
            path=request.path,
        )
        services.bus.publish(events.REQUEST_STARTED, record)
        secrets = request_secrets(request)
        if exchange is None:
            exchange = MemoryExchange(services.responses) if door.remembers else _NONE
        call = _Call(self, request, door, exchange, record, secrets)
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
            # The rest once the answer is on its way: aiohttp writes a whole
            # answer when this returns, before the loop runs the callback.
            asyncio.get_running_loop().call_soon(self._finished, record)

    def _finished(self, record: RequestRecord) -> None:
        """Record (the end): kept tokens and cache notes, then the record
        published finished (the request log, the history, the GUI)."""
        services = self.services
        try:
            services.prefixes.finish(record)
        except Exception:  # the record still goes out, without its prefix
            log.exception("prefix tracking failed for request %s", record.id)
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

    async def run(self, parse: Callable[[bytes], ir.Request]) -> web.StreamResponse:
        """Parse the body, then route it: each candidate upstream in turn,
        while the last one's failure is one the next may not have."""
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
        """Prepare the upstream for `req` (the exchange's check, the model
        loaded and fitted, learnt `max_tokens` caps), then send it; once
        more with a lower `max_tokens` if the upstream refused that."""
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

    def _send(
        self,
        body: bytes,
        req: ir.Request,
        resolved: Resolved,
        last: bool,
        retry: bool,
    ) -> Awaitable[web.StreamResponse]:
        """One try at the upstream: relayed when it speaks the door's
        protocol and nothing in `req` needs translating, else translated.
        `retry`: an error that a lower `max_tokens` would cure is raised
        (not answered) so it can be. (The call's coroutine is awaited by
        the caller: one layer less on every request.)"""
        services = self.services
        overflow_known.tell(services, req, resolved)
        services.prefixes.observe(self.record, req, resolved)
        upstream = resolved.upstream
        origins = services.origins
        signs = upstream.codec.wire.signs_thinking
        foreign = origins.foreign(req, upstream.name, signs)
        passthrough = self.door.passthrough
        if (
            passthrough is not None
            and upstream.speaks(passthrough.api)
            and passthrough.relayable(req)
            and not foreign
            and not services.web_search.emulates(req, upstream, passthrough.api)
        ):
            return self._relay(body, req, resolved, passthrough, last, retry)
        return self._translate(req, resolved, foreign)

    def _relay(
        self,
        body: bytes,
        req: ir.Request,
        resolved: Resolved,
        passthrough: Passthrough,
        last: bool,
        retry: bool,
    ) -> Awaitable[web.StreamResponse]:
        """Call (relay): the client's body, with the route's edits."""
        services = self.services
        settings = services.sessions.settings_for(req.client.session_key)
        allowed = settings.allowed_tools if settings is not None else None
        tools = frozenset(allowed) if allowed is not None else None
        relay = Relay(self.request, passthrough, req, self.record, self.secrets)
        if retry:
            sent = clamp(req.max_tokens, resolved.max_tokens_limit)
            relay.raises = lambda err: maxtokens.lowered(err, sent) is not None
        relay.produced = services.origins.remember
        return relay.send(body, resolved, tools, last)

    async def _translate(
        self, req: ir.Request, resolved: Resolved, foreign: int
    ) -> web.StreamResponse:
        """Call (translate): the request as this upstream may take it, sent;
        its answer filtered, encoded for the client and kept."""
        services, record = self.services, self.record
        upstream, origins = resolved.upstream, services.origins
        search = services.web_search
        req = search.prepare(await self.exchange.begin(req))
        if foreign:
            signs = upstream.codec.wire.signs_thinking
            for note in origins.notes(req, upstream.name, signs):
                record.note(NoteKind.DROPPED, note)
            req = origins.without_foreign(req, upstream.name, signs)
        if not upstream.keeps_billing_header:
            for block in platform_blocks():
                stripped = block.without(req)
                if stripped is not req:
                    record.note(NoteKind.DROPPED, f"dropped: {block.note}")
                    req = stripped
        # A relayed body keeps all of this; only translation drops it. Each
        # note is kept once, however many tries.
        for line in req.dropped:
            record.note(NoteKind.DROPPED, f"dropped: {line}")
        for line in upstream.codec.omitted(req):
            record.note(NoteKind.DROPPED, f"dropped for {upstream.codec.name}: {line}")
        sessions = services.sessions
        batches = await open_batches(req, resolved, record, sessions)
        if req.web_search is not None:
            batches = search.continued(batches, req, resolved, record, sessions)
        answer = TranslatedAnswer(
            self.request, self.door, self.exchange, req, record, self.secrets, origins
        )
        return await answer.send(batches)
