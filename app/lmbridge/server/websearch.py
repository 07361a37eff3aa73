"""Web search for models that cannot search: LM Bridge runs the search.

A client's web search server tool (Claude Code's `web_search_*`, Codex's
`web_search`) runs on the vendor's servers. For an upstream that does not
run it (anything but Anthropic's and OpenAI's own clouds, see
`native`), and when `[web_search]` names a provider, the pipeline hands
the answer to `WebSearch`:

- `prepare` offers the model the function `web_search(query)` and puts
  back, for a history that holds earlier searches, what the model read
  then (a Responses client sends a search back without its results: they
  are remembered here, by query). Without a provider, the tool and those
  searches are dropped with a note, as for any server tool.
- `continued` follows the answer: a call of `web_search` is not shown to
  the client as a tool call; LM Bridge runs the search
  (`upstreams/websearch.py`), streams the client the blocks its protocol
  has for a server-side search (`ir.WebSearchStarted` / `WebSearchDone`,
  rendered by each door's encoder), and asks the upstream again with the
  call and its result appended, so the SAME answer goes on. The call and
  result are made by `protocols/websearch.py` from the search alone, so a
  later turn's history reads the same bytes upstream and a prompt cache
  holds. Client tool calls the model made beside a search are left out
  (it makes them again once it has read the results; the record says so).

Limits: `web_search.max_searches` per answer, lowered by the client's
`max_uses`; a search past it, a failed search or one that timed out is a
result the model reads (`ERROR_TEXTS`), never a failed answer.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections import OrderedDict
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import msgspec

from lmbridge.config import WebSearchSettings
from lmbridge.core import ir
from lmbridge.core.assemble import Assembler
from lmbridge.core.events import RequestRecord
from lmbridge.protocols import websearch
from lmbridge.upstreams.websearch import Searcher, SearchFailed

if TYPE_CHECKING:
    from lmbridge.upstreams.http import HttpUpstream
    from lmbridge.upstreams.router import Resolved
    from lmbridge.upstreams.sessions import SessionManager

log = logging.getLogger(__name__)

Batches = AsyncGenerator[list[ir.Event], None]
MEMORY_LIMIT = 1000  # searches remembered for histories sent without results
_EXTRA_ROUNDS = 2  # upstream calls allowed past the search limit


def native(upstream: HttpUpstream, api: str) -> bool:
    """Whether `upstream` runs the client's web search tool itself when a
    request in `api` is relayed to it: Anthropic's API (kind anthropic),
    Azure AI Foundry in the client's API, or OpenAI's own API."""
    if not upstream.speaks(api):
        return False
    if upstream.kind in ("anthropic", "azure-foundry"):
        return True
    return (urlsplit(upstream.base_url).hostname or "") == "api.openai.com"


class WebSearch:
    """The proxy's web search: settings, the searcher, remembered results."""

    def __init__(self, settings: WebSearchSettings) -> None:
        self.settings = settings
        self.enabled = bool(settings.provider)
        self.searcher = Searcher(settings) if self.enabled else None
        self._memory: OrderedDict[str, ir.WebSearch] = OrderedDict()

    async def start(self) -> None:
        if self.searcher is not None:
            await self.searcher.start()

    async def close(self) -> None:
        if self.searcher is not None:
            await self.searcher.close()

    # ------------------------------------------------------------ requests

    def emulates(self, req: ir.Request, upstream: HttpUpstream, api: str) -> bool:
        """Whether LM Bridge runs `req`'s web search (so it may not be
        relayed to `upstream` unchanged)."""
        return req.web_search is not None and self.enabled and not native(upstream, api)

    def prepare(self, req: ir.Request) -> ir.Request:
        """`req` as the model sees it: the function offered and earlier
        searches' results in place, or both dropped without a provider."""
        if req.web_search is None and not req.searches:
            return req
        if not self.enabled:
            return self._dropped(req)
        messages = req.messages
        if req.searches:
            messages = tuple(self._restored(m, set(req.searches)) for m in messages)
        tools = req.tools
        spec = req.web_search
        if spec is not None:
            if any(t.name == websearch.TOOL_NAME for t in tools):
                return msgspec.structs.replace(
                    req,
                    messages=messages,
                    web_search=None,
                    dropped=(
                        *req.dropped,
                        "tool web_search: a client tool has its name",
                    ),
                )
            tools = (*tools, websearch.function_tool(spec))
        return msgspec.structs.replace(req, messages=messages, tools=tools)

    def _dropped(self, req: ir.Request) -> ir.Request:
        dropped = list(req.dropped)
        if req.web_search is not None:
            dropped.append(
                "tool web_search: a server tool LM Bridge cannot run"
                " (no [web_search] provider is set up)"
            )
        ids = set(req.searches)
        messages: list[ir.Message] = []
        for message in req.messages:
            parts = tuple(
                p
                for p in message.parts
                if not (isinstance(p, ir.ToolCall) and p.id in ids)
                and not (isinstance(p, ir.ToolResult) and p.call_id in ids)
            )
            if parts:
                messages.append(ir.Message(message.role, parts))
        if ids:
            dropped.append(f"{len(ids)} earlier web searches (no provider is set up)")
        return msgspec.structs.replace(
            req,
            messages=tuple(messages),
            web_search=None,
            searches=(),
            dropped=tuple(dropped),
        )

    def _restored(self, message: ir.Message, ids: set[str]) -> ir.Message:
        """A message whose searches sent back without results (Responses)
        get the results the model read, when they are remembered."""
        if not any(
            isinstance(p, ir.ToolResult) and p.call_id in ids and not p.content
            for p in message.parts
        ):
            return message
        parts: list[ir.Part] = []
        for part in message.parts:
            if (
                isinstance(part, ir.ToolResult)
                and part.call_id in ids
                and not part.content
            ):
                parts.append(self._result_for(part))
            else:
                parts.append(part)
        return ir.Message(message.role, tuple(parts))

    def _result_for(self, result: ir.ToolResult) -> ir.ToolResult:
        for search in reversed(self._memory.values()):
            if search.call_id == result.call_id:
                return websearch.as_call_and_result(search)[1]
        return ir.ToolResult(
            result.call_id,
            (ir.Text("The results of this earlier search are no longer available."),),
        )

    def remember(self, search: ir.WebSearch) -> None:
        """Keep a search's results for a history sent back without them."""
        self._memory[search.call_id] = search
        self._memory.move_to_end(search.call_id)
        while len(self._memory) > MEMORY_LIMIT:
            self._memory.popitem(last=False)

    # ------------------------------------------------------------ answers

    def continued(
        self,
        first: Batches,
        req: ir.Request,
        resolved: Resolved,
        record: RequestRecord,
        sessions: SessionManager | None,
    ) -> Batches:
        """The answer to `req`, its searches run and the answer continued."""
        return _Answer(self, req, resolved, record, sessions).run(first)


class _Answer:
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
            if not calls or rounds > self.limit + _EXTRA_ROUNDS:
                yield [*turn.held_events(), self._finish(turn.finish)]
                return
            if turn.other_calls:
                self.record.notes.append(
                    f"web search: {turn.other_calls} tool calls beside a search"
                    " left out (the model calls again once it has the results)"
                )
            said: list[ir.Part] = [
                p
                for p in parts
                if isinstance(p, ir.Thinking) or (isinstance(p, ir.Text) and p.text)
            ]
            results: list[ir.Part] = []
            for call in calls:
                search = None
                async for event in self._search(call):
                    yield [event]
                    if isinstance(event, ir.WebSearchDone):
                        search = event.search
                assert search is not None
                tool_call, result = websearch.as_call_and_result(search)
                said.append(tool_call)
                results.append(result)
            messages.append(ir.Message(ir.Role.ASSISTANT, tuple(said)))
            messages.append(ir.Message(ir.Role.USER, tuple(results)))
            batches = await self._reopen(tuple(messages))

    async def _reopen(self, messages: tuple[ir.Message, ...]) -> Batches:
        from lmbridge.server.translate import open_batches

        req = msgspec.structs.replace(self.req, messages=messages)
        return await open_batches(req, self.resolved, self.record, self.sessions)

    async def _search(self, call: ir.ToolCall) -> AsyncGenerator[ir.Event, None]:
        index = self.next_index
        self.next_index += 1
        query = websearch.query_of(call.arguments)
        if self.anthropic:
            call_id = "srvtoolu_" + secrets.token_hex(12)
        else:
            call_id = websearch.search_id(query or "")
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
                self.record.notes.append(
                    f"web search {query!r} failed: {failed.detail}"
                )
                log.warning("web search failed: %s", failed.detail)
            else:
                self.record.notes.append(f"web search {query!r}: {len(hits)} results")
        else:
            self.record.notes.append(f"web search refused: {error}")
        search = ir.WebSearch(call_id, query or "", hits, error)
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

    def __init__(self, answer: _Answer) -> None:
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

    def held_events(self) -> list[ir.Event]:
        """The held tool calls, for an answer that ends with them."""
        return [event for _, event in self.held]


def _moved(event: Any, index: int) -> ir.Event:
    moved: ir.Event = msgspec.structs.replace(event, index=index)
    return moved
