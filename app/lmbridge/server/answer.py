"""Encode and keep: a translated answer, from filtered IR events to the client.

A whole answer is the stream assembled. Both read the answer in one loop
(`_read`): each event notes its timings, tokens and errors on the record,
a thinking signature is remembered with its upstream (server/origins.py),
the assembler folds the events into the answer (a whole answer, or one the
exchange keeps), and a stream sends each upstream read as it comes. However
the answer ends (its Finish, an error, the upstream stopping short, LM
Bridge failing mid-stream) its outcome is kept in one place (`_deliver`
calls `_keep`) before the client is sent the end, so a client that saw the
end finds it kept; a client that leaves mid-answer gets what it was sent
kept, marked so (`_interrupted`).

No secret leaves by an answer: an error event's message is scrubbed in
full, and every byte written gets the scrubber's literal check.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

import msgspec
from aiohttp import web

from lmbridge.core import errors, ir
from lmbridge.core.assemble import Assembler
from lmbridge.core.events import RequestRecord
from lmbridge.core.redact import SECRETS, encoded
from lmbridge.protocols import sse
from lmbridge.protocols.base import AnswerCodec, StreamEncoder
from lmbridge.server.capture import capture_response, scrub
from lmbridge.server.exchange import CLIENT_GONE, Exchange, IdentifiedEncoder
from lmbridge.server.origins import ReasoningOrigins
from lmbridge.server.translate import Batches

log = logging.getLogger(__name__)

EARLY_END = "the upstream ended its answer early"
_ENDS = (ir.Finish, ir.StreamError)  # the events that end an answer


def answer_status(err: errors.LMBridgeError) -> int:
    """The HTTP status LM Bridge answers `err` with.

    An upstream's own 500 is a 502 here: 500 is kept for faults of ours.
    """
    if isinstance(err, errors.UpstreamError) and err.status == 500:
        return 502
    return err.status


def new_response_id() -> str:
    """An id for a whole answer a later request may continue."""
    return f"resp_{uuid.uuid4().hex}"


def observe(record: RequestRecord, event: ir.Event) -> None:
    """Note on `record` the timings, tokens and errors `event` carries."""
    if isinstance(event, ir.TextDelta | ir.ThinkingDelta | ir.ToolArgsDelta):
        if record.first_token is None:
            record.mark_first_token()
    elif isinstance(event, ir.MessageStart):
        record.tokens_in = event.input_tokens
    elif isinstance(event, ir.Finish):
        if event.usage.input_tokens:
            record.tokens_in = event.usage.input_tokens
        record.tokens_out = event.usage.output_tokens
        record.cached_tokens = ir.cached_count(
            event.usage.cached_tokens, record.tokens_in
        )
    elif isinstance(event, ir.StreamError):
        record.error = event.message
        record.error_kind = event.kind


class TranslatedAnswer:
    """One translated answer to `req`, rendered by `door` (whole or streamed
    as `req.stream` says) and kept by `exchange`."""

    def __init__(
        self,
        request: web.Request,
        door: AnswerCodec,
        exchange: Exchange,
        req: ir.Request,
        record: RequestRecord,
        secrets: tuple[str, ...],
        origins: ReasoningOrigins,
    ) -> None:
        self.request = request
        self.door = door
        self.exchange = exchange
        self.req = req
        self.record = record
        self.secrets = secrets
        self.secret_bytes = encoded(secrets)
        self.origins = origins
        self.keeps = exchange.keeps_answers
        # A whole answer is assembled; a stream only when it is kept.
        self.assembler = (
            Assembler(model=req.model) if self.keeps or not req.stream else None
        )
        self.encoder: StreamEncoder | None = None
        self.answer_id = ""  # a whole answer's id, when the door remembers it
        self._ended = False  # the stream's end is encoded (nothing may follow)

    async def send(self, batches: Batches) -> web.StreamResponse:
        """Read the answer from `batches` and answer the client with it."""
        if self.req.stream:
            return await self._stream(batches)
        return await self._whole(batches)

    # ------------------------------------------------------------ the two ends

    async def _whole(self, batches: Batches) -> web.Response:
        if self.door.remembers:
            self.answer_id = new_response_id()
        _, end = await self._deliver(batches)
        if isinstance(end, ir.StreamError):
            # Nothing was sent: the pipeline answers the error in full.
            raise errors.from_kind(end.kind, end.message, end.status)
        response = self._answer()
        payload = SECRETS.scrub_bytes(
            self.door.encode_response(response, self.req), self.secret_bytes
        )
        self.record.bytes_out = len(payload)
        capture_response(self.record, payload)
        return web.Response(body=payload, content_type="application/json")

    async def _stream(self, batches: Batches) -> web.StreamResponse:
        encoder = self.encoder = self.door.stream_encoder(self.req)
        out = web.StreamResponse(
            status=200, headers=sse.response_headers(encoder.content_type)
        )
        await out.prepare(self.request)
        try:
            rest, end = await self._deliver(batches, out)
            await self._write_end(out, rest, end)
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception as exc:
            # Keeping or encoding the end failed: still an error event.
            if not self._ended:
                await self._write_end(out, [], self._failure(exc))
        await out.write_eof()
        return out

    # ------------------------------------------------------------ one path

    async def _deliver(
        self, batches: Batches, out: web.StreamResponse | None = None
    ) -> tuple[list[ir.Event], ir.Finish | ir.StreamError]:
        """Read the answer to its end and keep its outcome: the events not
        yet sent and the event that ends the answer for the client."""
        try:
            rest, end = await self._read(batches, out)
        except (asyncio.CancelledError, ConnectionResetError):
            await self._interrupted()
            raise
        except Exception as exc:
            if out is None:
                raise  # nothing was sent: the pipeline answers the error
            # The headers are out: whatever failed becomes the stream's
            # error event in the client's protocol, never a second response.
            rest, end = [], self._failure(exc)
        return rest, await self._keep(end)

    async def _read(
        self, batches: Batches, out: web.StreamResponse | None
    ) -> tuple[list[ir.Event], ir.Finish | ir.StreamError]:
        """Read up to the event that ends the answer, streaming the reads
        before it to `out` (when streaming); that event, and what came
        before it in its read."""
        record, origins, assembler = self.record, self.origins, self.assembler
        upstream = record.upstream
        async with contextlib.aclosing(batches):
            async for batch in batches:
                for event in batch:
                    observe(record, event)
                    origins.observe(event, upstream)
                    if assembler is not None:
                        assembler.feed(event)
                end = batch[-1]
                if isinstance(end, _ENDS):
                    rest = batch[:-1]
                    if out is not None and self.keeps and rest:
                        # The client is sent the answer before it is kept
                        # (a Responses encoder names it as it starts), and
                        # its end after.
                        await self._write(out, rest)
                        rest = []
                    return rest, end
                if out is not None:
                    # One write per upstream read: the first token leaves
                    # together with the message start, in fewer packets.
                    await self._write(out, batch)
        return [], ir.StreamError(errors.ErrorKind.UPSTREAM_ERROR, EARLY_END)

    async def _keep(
        self, end: ir.Finish | ir.StreamError
    ) -> ir.Finish | ir.StreamError:
        """Hand the answer's outcome to the exchange; the event that ends
        the answer (the exchange's error, if keeping failed)."""
        if not self.keeps:
            return end
        failure = end.message if isinstance(end, ir.StreamError) else None
        try:
            await self.exchange.finished(self.req, self._answer(), failure)
        except errors.LMBridgeError as err:
            self.record.error = err.message
            return ir.StreamError(err.kind, err.message, err.status)
        return end

    async def _interrupted(self) -> None:
        """The client left mid-answer: keep what it was sent, marked so."""
        if not self.keeps:
            return
        with contextlib.suppress(errors.LMBridgeError):
            await self.exchange.finished(self.req, self._answer(), CLIENT_GONE)

    def _answer(self) -> ir.Response:
        """The answer as assembled so far, under the id the client knows."""
        assert self.assembler is not None
        answer = self.assembler.partial()
        encoder = self.encoder  # a whole answer has none
        if self.answer_id:
            answer.id = self.answer_id
        elif encoder is not None and isinstance(encoder, IdentifiedEncoder):
            answer.id = encoder.response_id or answer.id
        return answer

    def _failure(self, exc: Exception) -> ir.StreamError:
        """What ends a stream that failed after its headers with `exc`."""
        if isinstance(exc, errors.LMBridgeError):
            err = exc
        else:
            log.exception("a streamed answer failed after its headers")
            err = errors.LMBridgeError(
                "LM Bridge failed mid-answer; see its log for details"
            )
        failure = ir.StreamError(
            err.kind, scrub(err.message, self.secrets), answer_status(err)
        )
        self.record.error = failure.message
        return failure

    async def _write(self, out: web.StreamResponse, batch: list[ir.Event]) -> None:
        """Encode `batch` for the client and send it."""
        await self._send(out, self._encoded(batch))

    async def _write_end(
        self,
        out: web.StreamResponse,
        rest: list[ir.Event],
        end: ir.Finish | ir.StreamError,
    ) -> None:
        """Send what is left of the answer and the event that ends it (an
        error's message scrubbed in full)."""
        if isinstance(end, ir.StreamError):
            end = msgspec.structs.replace(
                end, message=SECRETS.scrub(end.message, self.secrets)
            )
        data = self._encoded([*rest, end])
        self._ended = True  # encoded: nothing else may end the stream
        await self._send(out, data)

    def _encoded(self, batch: list[ir.Event]) -> bytes:
        """`batch` in the client's protocol, scrubbed."""
        assert self.encoder is not None
        encode = self.encoder.encode
        return SECRETS.scrub_bytes(
            b"".join([encode(event) for event in batch]), self.secret_bytes
        )

    async def _send(self, out: web.StreamResponse, data: bytes) -> None:
        if data:
            self.record.bytes_out += len(data)
            capture_response(self.record, data)
            await out.write(data)
