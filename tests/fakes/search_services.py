"""Fake web search services: a real aiohttp server on 127.0.0.1:0 that
answers as SearXNG's JSON API (`GET /search?q=...&format=json`), the Brave
Search API (`GET /res/v1/web/search`, key in `X-Subscription-Token`) and
Tavily (`POST /search`, key as a Bearer token) do, from one list of hits.

Every request is kept in `requests` (query, headers, body). Fault switches:
`status` (answer it, with a small error body), `delay` (seconds before
answering), `garbage` (a 200 answer that is not JSON).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Hit:
    url: str
    title: str
    text: str
    age: str | None = None


DEFAULT_HITS = [
    Hit(
        "https://lmbridge.example/docs",
        "LM Bridge docs",
        "One local endpoint.",
        "2 days ago",
    ),
    Hit("https://news.example.org/a", "News about it", "LM Bridge 2 is out."),
    Hit("https://blocked.example.net/x", "Blocked site", "Should be filtered."),
]


@dataclass
class SearchSeen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeSearch:
    hits: list[Hit] = field(default_factory=lambda: list(DEFAULT_HITS))
    status: int = 0
    delay: float = 0.0
    garbage: bool = False
    requests: list[SearchSeen] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def queries(self) -> list[str]:
        """The queries asked, in order, whichever API asked them."""
        out = []
        for seen in self.requests:
            if isinstance(seen.body, dict) and "query" in seen.body:
                out.append(str(seen.body["query"]))
            else:
                out.append(seen.query.get("q", ""))
        return out

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/search", self._searxng)
        app.router.add_post("/search", self._tavily)
        app.router.add_get("/res/v1/web/search", self._brave)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _intake(self, request: web.Request) -> web.Response | None:
        raw = await request.read()
        body = json.loads(raw) if raw else None
        seen = SearchSeen(
            request.method,
            request.path,
            dict(request.query),
            dict(request.headers),
            body,
        )
        self.requests.append(seen)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.status:
            return web.json_response(
                {"error": "fake search failure"}, status=self.status
            )
        if self.garbage:
            return web.Response(body=b"<html>oops</html>", content_type="text/html")
        return None

    async def _searxng(self, request: web.Request) -> web.Response:
        failed = await self._intake(request)
        if failed is not None:
            return failed
        if request.query.get("format") != "json":
            return web.Response(status=403, text="format not allowed")
        results = [
            {"url": h.url, "title": h.title, "content": h.text, "engine": "fake"}
            | ({"publishedDate": h.age} if h.age else {})
            for h in self.hits
        ]
        return web.json_response({"query": request.query.get("q"), "results": results})

    async def _brave(self, request: web.Request) -> web.Response:
        failed = await self._intake(request)
        if failed is not None:
            return failed
        if not request.headers.get("X-Subscription-Token"):
            return web.json_response({"error": "no token"}, status=401)
        results = [
            {"url": h.url, "title": h.title, "description": h.text}
            | ({"age": h.age} if h.age else {})
            for h in self.hits
        ]
        return web.json_response({"type": "search", "web": {"results": results}})

    async def _tavily(self, request: web.Request) -> web.Response:
        failed = await self._intake(request)
        if failed is not None:
            return failed
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            return web.json_response({"detail": "no key"}, status=401)
        results = [
            {"url": h.url, "title": h.title, "content": h.text, "score": 0.9}
            for h in self.hits
        ]
        return web.json_response({"query": "", "results": results})
