"""One answer whose model may search, over as many upstream calls as its
searches take (server/websearch.py says what and why).

`SearchingAnswer.run` relays each upstream call's events renumbered into
one answer (one message start; tool calls held until the call ends), runs
the searches the model asked for, shows them as `ir.WebSearchStarted` /
`WebSearchDone`, and asks the upstream again with the calls and results
appended; the last call's end, with every call's tokens summed and the
searches counted, ends the answer.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

import msgspec

from lmbridge.core import ir
from lmbridge.core.assemble import Assembler
from lmbridge.core.events import RequestRecord
from lmbridge.core.record import NoteKind
from lmbridge.protocols import websearch
from lmbridge.server.translate import open_batches
from lmbridge.upstreams.websearch import SearchFailed

if TYPE_CHECKING:
    from lmbridge.server.websearch import WebSearch
    from lmbridge.upstreams.router import Resolved
    from lmbridge.upstreams.sessions import SessionManager

log = logging.getLogger(__name__)

Batches = AsyncGenerator[list[ir.Event], None]
EXTRA_ROUNDS = 2  # upstream calls allowed past the search limit


class SearchingAnswer:
    """One answer whose model may search, over as many upstream calls."""

    def __init__(
        self,
        service: WebSearch,
        req: ir.Request,
        resolved: Resolved,
        record: RequestRecord,
        sessions: SessionManager | None,
    ) -> None:
        assert req.web_search is not None
        self.service = service
        self.spec = req.web_search
        self.req = req
        self.resolved = resolved
        self.record = record
        self.sessions = sessions
        limit = service.settings.max_searches
        if self.spec.max_uses is not None:
            limit = min(limit, max(self.spec.max_uses, 0))
        self.limit = limit
        self.used = 0  # calls answered (a refused one too)
        self.ran = 0  # searches the service was asked
        self.next_index = 0
        self.started = False
        self.usage = ir.Usage()
        # Anthropic clients send a search back with its id; Responses
        # clients (Codex) without: its id is then made from the query.
        self.anthropic = self.spec.type.startswith("web_search_2")

    async def run(self, first: Batches) -> Batches:
        batches = first
        messages = list(self.req.messages)
        rounds = 0
        while True:
            turn = _Round(self)
            async with contextlib.aclosing(batches):
                async for batch in batches:
                    out = turn.feed(batch)
                    if out:
                        yield out
                    if turn.failed:
                        return
            if turn.finish is None:
                return  # the pipeline says the upstream ended early
            self._add_usage(turn.finish.usage)
            parts = turn.assembler.partial().parts
            calls = [
                p
                for p in parts
                if isinstance(p, ir.ToolCall) and p.name == websearch.TOOL_NAME
            ]
            rounds += 1
            if not calls:
                yield [*turn.held_events(), self._finish(turn.finish)]
                return
            if rounds > self.limit + EXTRA_ROUNDS:
                # The model will not stop searching: end the answer here,
                # with the client's own calls, if it made any.
                self.record.note(
                    NoteKind.SEARCH, "web search: the model kept searching"
                )
                finish = turn.finish
                if not turn.other_calls:
                    finish = msgspec.structs.replace(
                        finish, stop_reason=ir.StopReason.END_TURN
                    )
                yield [*turn.held_events(searches=False), self._finish(finish)]
                return
            if turn.other_calls:
                self.record.note(
                    NoteKind.SEARCH,
                    f"web search: {turn.other_calls} tool calls beside a search"
                    " left out (the model calls again once it has the results)",
                )
            said: list[ir.Part] = [
                p
                for p in parts
                if isinstance(p, ir.Thinking) or (isinstance(p, ir.Text) and p.text)
            ]
            results: list[ir.Part] = []
            for call in calls:
                search = None
                model_id = call.id or "srvtoolu_" + secrets.token_hex(12)
                async for event in self._search(call, model_id):
                    yield [event]
                    if isinstance(event, ir.WebSearchDone):
                        search = event.search
                assert search is not None
                # The id the model gave its call: a chained upstream knows it.
                tool_call, result = websearch.as_call_and_result(search)
                said.append(tool_call)
                results.append(result)
            messages.append(ir.Message(ir.Role.ASSISTANT, tuple(said)))
            messages.append(ir.Message(ir.Role.USER, tuple(results)))
            batches = await self._reopen(tuple(messages))

    async def _reopen(self, messages: tuple[ir.Message, ...]) -> Batches:
        req = msgspec.structs.replace(self.req, messages=messages)
        return await open_batches(req, self.resolved, self.record, self.sessions)

    async def _search(
        self, call: ir.ToolCall, model_id: str
    ) -> AsyncGenerator[ir.Event, None]:
        """Run one search: its start and its end as events. The client
        knows it by the model's call id (Anthropic clients send it back),
        or by one made from the query (Codex sends none back)."""
        index = self.next_index
        self.next_index += 1
        query = websearch.query_of(call.arguments)
        call_id = model_id if self.anthropic else websearch.search_id(query or "")
        yield ir.WebSearchStarted(index, call_id, query or "")
        error = None
        hits: tuple[ir.SearchHit, ...] = ()
        if query is None:
            error = "invalid_tool_input"
        elif len(query) > websearch.MAX_QUERY:
            error = "query_too_long"
        elif self.used >= self.limit:
            error = "max_uses_exceeded"
        self.used += 1
        if error is None and self.service.searcher is not None:
            self.ran += 1
            try:
                hits = await self.service.searcher.search(query or "", self.spec)
            except SearchFailed as failed:
                error = failed.code
                self.record.note(
                    NoteKind.SEARCH, f"web search {query!r} failed: {failed.detail}"
                )
                log.warning("web search failed: %s", failed.detail)
            else:
                self.record.note(
                    NoteKind.SEARCH, f"web search {query!r}: {len(hits)} results"
                )
        else:
            self.record.note(NoteKind.SEARCH, f"web search refused: {error}")
        own = "" if call_id == model_id else model_id
        search = ir.WebSearch(call_id, query or "", hits, error, own)
        self.service.remember(search)
        yield ir.WebSearchDone(index, search)

    def _add_usage(self, usage: ir.Usage) -> None:
        total = self.usage
        total.input_tokens += usage.input_tokens
        total.output_tokens += usage.output_tokens
        total.reasoning_tokens += usage.reasoning_tokens
        if usage.cached_tokens is not None:
            total.cached_tokens = (total.cached_tokens or 0) + usage.cached_tokens

    def _finish(self, finish: ir.Finish) -> ir.Finish:
        usage = msgspec.structs.replace(self.usage, web_search_requests=self.ran)
        return ir.Finish(finish.stop_reason, usage, finish.stop_sequence)


class _Round:
    """One upstream call's events, renumbered into the client's answer:
    its message start only once, its tool calls held until its end (a
    search among them changes what the client is shown)."""

    def __init__(self, answer: SearchingAnswer) -> None:
        self.answer = answer
        self.assembler = Assembler()
        self.indexes: dict[int, int] = {}
        self.calls: dict[int, str] = {}  # upstream index -> tool name
        self.held: list[tuple[int, ir.Event]] = []
        self.finish: ir.Finish | None = None
        self.failed = False

    @property
    def other_calls(self) -> int:
        return sum(name != websearch.TOOL_NAME for name in self.calls.values())

    def feed(self, batch: list[ir.Event]) -> list[ir.Event]:
        out: list[ir.Event] = []
        for event in batch:
            self.assembler.feed(event)
            match event:
                case ir.MessageStart():
                    if not self.answer.started:
                        self.answer.started = True
                        out.append(event)
                case ir.Finish():
                    self.finish = event
                case ir.StreamError():
                    out.append(event)
                    self.failed = True
                case ir.BlockStart():
                    index = self._index(event.index)
                    moved = msgspec.structs.replace(event, index=index)
                    if event.kind is ir.BlockKind.TOOL_CALL:
                        self.calls[event.index] = event.name
                        self.held.append((event.index, moved))
                    else:
                        out.append(moved)
                case (
                    ir.TextDelta()
                    | ir.ThinkingDelta()
                    | ir.SignatureDelta()
                    | ir.ToolArgsDelta()
                    | ir.BlockStop()
                ):
                    shifted = _moved(event, self._index(event.index))
                    if event.index in self.calls:
                        self.held.append((event.index, shifted))
                    else:
                        out.append(shifted)
                case _:
                    out.append(event)
        return out

    def _index(self, upstream: int) -> int:
        index = self.indexes.get(upstream)
        if index is None:
            index = self.indexes[upstream] = self.answer.next_index
            self.answer.next_index += 1
        return index

    def held_events(self, searches: bool = True) -> list[ir.Event]:
        """The held tool calls, for an answer that ends with them (without
        the calls of web_search: `searches` False)."""
        return [
            event
            for index, event in self.held
            if searches or self.calls.get(index) != websearch.TOOL_NAME
        ]


def _moved(event: Any, index: int) -> ir.Event:
    moved: ir.Event = msgspec.structs.replace(event, index=index)
    return moved
