"""Pass-through: the client's protocol is the upstream's own API.

The client's JSON goes upstream with only the edits its protocol's
`Passthrough` makes (the model renamed, max tokens clamped, tools filtered
by session settings), and the upstream's answer comes back as it arrives.
Streams are forwarded frame by frame and checked (protocols/relaywatch.py),
so garbage from the upstream still ends in a well-formed error event; a
whole answer must be JSON. What is relayed gets the scrubber's literal
check (whole frames, so a key cannot hide across two reads), and an error
that LM Bridge writes is scrubbed in full.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import aiohttp
import msgspec
from aiohttp import web

from lmbridge.core import errors, ir
from lmbridge.core.errors import DECODE_ERRORS
from lmbridge.core.events import RequestRecord
from lmbridge.core.record import NoteKind
from lmbridge.core.redact import SECRETS, encoded
from lmbridge.protocols import overflow, sse
from lmbridge.protocols.base import BodyEdit, Passthrough
from lmbridge.protocols.registry import upstream_codec
from lmbridge.protocols.relaywatch import RelayWatch
from lmbridge.server.capture import capture_response, scrub
from lmbridge.upstreams.http import HttpUpstream, Refusal
from lmbridge.upstreams.router import Resolved

log = logging.getLogger(__name__)

_json = msgspec.json.Decoder()
_encode = msgspec.json.Encoder()


def should_fall_back(err: errors.LMBridgeError) -> bool:
    """Unreachable, rate-limited or failing upstreams hand over to the next."""
    return err.status == 429 or err.status >= 500


class Relay:
    """One pass-through request: the client's body, relayed and checked."""

    def __init__(
        self,
        request: web.Request,
        passthrough: Passthrough,
        req: ir.Request,
        record: RequestRecord,
        secrets: tuple[str, ...],
    ) -> None:
        self.request = request
        self.passthrough = passthrough
        self.req = req
        self.record = record
        self.secrets = secrets
        self.secret_bytes = encoded(secrets) if secrets else ()
        # Upstream refusals to raise rather than relay (the pipeline retries).
        self.raises: Callable[[errors.LMBridgeError], bool] = lambda _err: False
        # Told what opaque reasoning a relayed answer carried, and from where.
        self.produced: Callable[[list[str], str], None] | None = None

    async def send(
        self,
        body: bytes,
        resolved: Resolved,
        allowed_tools: frozenset[str] | None,
        last: bool,
    ) -> web.StreamResponse:
        """Forward `body` to `resolved`'s upstream and relay its answer."""
        upstream = resolved.upstream
        codec = upstream_codec(self.passthrough.api)
        wire = codec.wire
        block = wire.platform_block
        drop = (
            block is not None
            and not upstream.keeps_billing_header
            and block.in_body(body)
        )
        edit = BodyEdit(resolved.target, resolved.max_tokens_limit, allowed_tools, drop)
        if drop and block is not None:
            self.record.note(NoteKind.DROPPED, f"dropped: {block.note}")
        body = self._edited(body, edit)
        headers = {
            name: value
            for name in wire.forwarded
            if (value := self.request.headers.get(name))
        }
        features = wire.feature_header
        if features and features in headers:
            kept, removed = upstream.betas(headers.pop(features))
            if kept:
                headers[features] = kept
            if removed:
                self.record.note(
                    NoteKind.DROPPED,
                    f"dropped for {upstream.name}: {features} {', '.join(removed)}"
                    " (not in its anthropic_betas)",
                )
        try:
            resp = await upstream.relay(
                wire.path, body, codec=codec, record=self.record, headers=headers
            )
        except errors.LMBridgeError as err:
            if (
                err.upstream_body is None
                or (not last and should_fall_back(err))
                or self.raises(err)
                # Said in the door's shape with both counts (N > M), which
                # the upstream's own words may not carry.
                or isinstance(err, errors.ContextOverflow)
            ):
                raise
            # Upstream errors keep their status and body on pass-through, but
            # not a key the upstream echoes back.
            text = scrub(err.upstream_body.decode("utf-8", "replace"), self.secrets)
            self.record.status = err.status
            self.record.error = err.message
            self.record.error_kind = err.kind
            capture_response(self.record, text.encode())
            return web.Response(
                status=err.status, body=text.encode(), content_type="application/json"
            )
        if isinstance(resp, Refusal):
            self.record.status = 200
            self.record.note(
                NoteKind.UPSTREAM, f"{upstream.name}: refused ({resp.message})"
            )
            self.record.bytes_out = len(resp.body)
            return web.Response(body=resp.body, content_type=resp.content_type)
        try:
            if not self.req.stream:
                return await self._whole(upstream, resp)
            return await self._stream(upstream, resp)
        finally:
            upstream.release(resp)

    def _edited(self, body: bytes, edit: BodyEdit) -> bytes:
        """The client's body with `edit` applied (unchanged when it is a no-op)."""
        record = self.record
        # record.model is the model the client's body names.
        if (
            edit.model == record.model
            and edit.allowed_tools is None
            and edit.max_tokens is None
            and not edit.drop_platform_block
            and not self.passthrough.needs_edit(body)
        ):
            return body
        raw = _json.decode(body)
        self.passthrough.edit(raw, edit)
        return _encode.encode(raw)

    async def _whole(
        self, upstream: HttpUpstream, resp: aiohttp.ClientResponse
    ) -> web.Response:
        record = self.record
        record.status = resp.status
        content = resp.content
        if content.is_eof() and content.exception() is None:
            # The whole answer came with its headers (a small one does):
            # taken as it is, without a reader and its timers.
            payload = content.read_nowait()
        else:
            payload = b"".join([chunk async for chunk in upstream.chunks(resp)])
        record.mark_first_token()
        try:
            usage = self.passthrough.whole_usage(payload)
        except DECODE_ERRORS:
            raise errors.UpstreamError(
                f"upstream {upstream.name!r} answered with something that is not"
                f" JSON: {payload[:120].decode('utf-8', 'replace')!r}"
            ) from None
        if usage is not None:
            _set_usage(record, usage)
        if self.produced is not None and (
            made := self.passthrough.whole_produced(payload)
        ):
            self.produced(made, upstream.name)
        payload = SECRETS.scrub_bytes(payload, self.secret_bytes)
        record.bytes_out = len(payload)
        capture_response(record, payload)
        return web.Response(
            status=resp.status, body=payload, content_type="application/json"
        )

    async def _stream(
        self, upstream: HttpUpstream, resp: aiohttp.ClientResponse
    ) -> web.StreamResponse:
        record = self.record
        record.status = resp.status
        out = web.StreamResponse(status=resp.status, headers=sse.response_headers())
        await out.prepare(self.request)
        rules = self.passthrough.rules(self.req)
        watch = RelayWatch(rules)
        failure: ir.StreamError | None = None
        try:
            async for chunk in upstream.chunks(resp):
                if ready := watch.feed(chunk):
                    await self._send(out, ready)
                if watch.problem is not None:
                    break
            else:
                if rest := watch.close():
                    await self._send(out, rest)
                if watch.problem is None and not watch.ended:
                    failure = ir.StreamError(
                        errors.ErrorKind.UPSTREAM_ERROR,
                        f"upstream {upstream.name!r} ended its stream before"
                        " its answer",
                        502,
                    )
        except errors.LMBridgeError as err:
            if not watch.ended:
                failure = ir.StreamError(err.kind, err.message, err.status)
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception:
            # The headers are out: an error event, never a second response.
            log.exception("a relayed stream failed after its headers")
            if not watch.ended:
                failure = ir.StreamError(
                    errors.ErrorKind.INTERNAL,
                    "LM Bridge failed mid-answer; see its log for details",
                    500,
                )
        if watch.problem is not None:
            failure = _failure(watch.problem)
        if failure is not None:
            message = scrub(failure.message, self.secrets)
            failure = ir.StreamError(failure.kind, message, failure.status)
            record.error = message
            record.error_kind = failure.kind
            await out.write(rules.fail(failure))
        elif rules.error is not None:
            record.error = rules.error
        if rules.usage is not None:
            _set_usage(record, rules.usage)
        if self.produced is not None and (made := rules.produced):
            self.produced(made, upstream.name)
        await out.write_eof()
        return out

    async def _send(self, out: web.StreamResponse, data: bytes) -> None:
        record = self.record
        data = SECRETS.scrub_bytes(data, self.secret_bytes)
        if record.first_token is None:
            record.mark_first_token()
        record.bytes_out += len(data)
        capture_response(record, data)
        await out.write(data)


def _failure(problem: str) -> ir.StreamError:
    """What ends the client's stream for a problem the watch found: an
    overflow (a Chat server's error event) is said with its counts."""
    found = overflow.stream_error(problem)
    if found is not None:
        message, status = found
        return ir.StreamError(errors.ErrorKind.CONTEXT_OVERFLOW, message, status)
    return ir.StreamError(errors.ErrorKind.UPSTREAM_ERROR, problem, 502)


def _set_usage(record: RequestRecord, usage: ir.Usage) -> None:
    record.tokens_in = usage.input_tokens or record.tokens_in
    record.tokens_out = usage.output_tokens
    record.cached_tokens = ir.cached_count(usage.cached_tokens, record.tokens_in)
