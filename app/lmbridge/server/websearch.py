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

import logging
from collections import OrderedDict
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import msgspec

from lmbridge.config import WebSearchSettings
from lmbridge.core import ir
from lmbridge.core.events import RequestRecord
from lmbridge.protocols import websearch
from lmbridge.server.websearch_answer import SearchingAnswer
from lmbridge.upstreams.websearch import Searcher

if TYPE_CHECKING:
    from lmbridge.upstreams.http import HttpUpstream
    from lmbridge.upstreams.router import Resolved
    from lmbridge.upstreams.sessions import SessionManager

log = logging.getLogger(__name__)

Batches = AsyncGenerator[list[ir.Event], None]
MEMORY_LIMIT = 1000  # searches remembered for histories sent without results


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
        # Searches by the id the client knows them by.
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
            # Sent back without their results (Codex): put back what the
            # model read. Anthropic clients carry theirs in the blocks.
            ids = set(req.searches)
            bare = {
                p.call_id
                for m in messages
                for p in m.parts
                if isinstance(p, ir.ToolResult) and p.call_id in ids and not p.content
            }
            if bare:
                messages = tuple(self._restored(m, bare) for m in messages)
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
        """A message's searches `ids`, sent back without results, as the
        model read them: a search this proxy remembers gets the id the
        model's call had and its result; another gets a note instead."""
        if not any(
            isinstance(p, ir.ToolCall | ir.ToolResult)
            and (p.id if isinstance(p, ir.ToolCall) else p.call_id) in ids
            for p in message.parts
        ):
            return message
        parts: list[ir.Part] = []
        for part in message.parts:
            if isinstance(part, ir.ToolCall) and part.id in ids:
                known = self._memory.get(part.id)
                if known is not None:
                    part = websearch.as_call_and_result(known)[0]
            elif isinstance(part, ir.ToolResult) and part.call_id in ids:
                part = self._result_for(part)
            parts.append(part)
        return ir.Message(message.role, tuple(parts))

    def _result_for(self, result: ir.ToolResult) -> ir.ToolResult:
        known = self._memory.get(result.call_id)
        if known is not None:
            return websearch.as_call_and_result(known)[1]
        return ir.ToolResult(
            result.call_id,
            (ir.Text("The results of this earlier search are no longer available."),),
        )

    def remember(self, search: ir.WebSearch) -> None:
        """Keep a search, by the id the client knows it by, for a history
        sent back without it."""
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
        return SearchingAnswer(self, req, resolved, record, sessions).run(first)
