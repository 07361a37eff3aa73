"""Search services LM Bridge runs web searches with (docs/web-search.md).

- `searxng`: a SearXNG instance's JSON API, `GET {url}/search?q=...&format=json`
  (the instance must allow the `json` format in its `search.formats`); no key.
- `brave`: the Brave Search API, `GET {url}/res/v1/web/search?q=...&count=N`,
  with the key in `X-Subscription-Token`.
- `tavily`: `POST {url}/search` with `{"query", "max_results",
  "include_domains", "exclude_domains"}` and the key as a Bearer token.

The key comes from `web_search.api_key_env`'s variable, else from the OS
keyring (`config.WEB_SEARCH_SECRET`, `lmbridge keys set web-search`); it
is registered with the scrubber. Every failure (no answer in time, a
refusal, an answer that is not the service's JSON) is a `SearchFailed`
with an Anthropic error code the model is shown and a detail for the
request's record: a search never fails an answer. aiohttp errors are
converted here, the one place for this subsystem.
"""

from __future__ import annotations

import asyncio
import logging
import os
from urllib.parse import urlsplit

import aiohttp
import msgspec

from lmbridge.config import WEB_SEARCH_SECRET, WebSearchSettings
from lmbridge.core import ir
from lmbridge.core.errors import DECODE_ERRORS
from lmbridge.core.redact import SECRETS
from lmbridge.upstreams.credentials import stored_key

log = logging.getLogger(__name__)

DEFAULT_URLS = {
    "brave": "https://api.search.brave.com",
    "tavily": "https://api.tavily.com",
}
_SNIPPET_LIMIT = 1200  # characters of a hit's text the model reads


class SearchFailed(Exception):
    """A search that found nothing to show: `code` is what the model reads
    (protocols/websearch.ERROR_TEXTS), `detail` what the record says."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


# ------------------------------------------------------------ answers read


class _SearxResult(msgspec.Struct):
    url: str = ""
    title: str = ""
    content: str = ""
    publishedDate: str | None = None  # SearXNG spells it so


class _SearxAnswer(msgspec.Struct):
    results: list[_SearxResult] = msgspec.field(default_factory=list)


class _BraveResult(msgspec.Struct):
    url: str = ""
    title: str = ""
    description: str = ""
    age: str | None = None
    page_age: str | None = None


class _BraveWeb(msgspec.Struct):
    results: list[_BraveResult] = msgspec.field(default_factory=list)


class _BraveAnswer(msgspec.Struct):
    web: _BraveWeb | None = None


class _TavilyResult(msgspec.Struct):
    url: str = ""
    title: str = ""
    content: str = ""
    published_date: str | None = None


class _TavilyAnswer(msgspec.Struct):
    results: list[_TavilyResult] = msgspec.field(default_factory=list)


def _hits_searxng(body: bytes) -> list[ir.SearchHit]:
    answer = msgspec.json.decode(body, type=_SearxAnswer)
    return [
        ir.SearchHit(r.url, r.title, r.content, r.publishedDate) for r in answer.results
    ]


def _hits_brave(body: bytes) -> list[ir.SearchHit]:
    web = msgspec.json.decode(body, type=_BraveAnswer).web
    return [
        ir.SearchHit(r.url, r.title, r.description, r.page_age or r.age)
        for r in (web.results if web else ())
    ]


def _hits_tavily(body: bytes) -> list[ir.SearchHit]:
    answer = msgspec.json.decode(body, type=_TavilyAnswer)
    return [
        ir.SearchHit(r.url, r.title, r.content, r.published_date)
        for r in answer.results
    ]


# ------------------------------------------------------------ domains


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def in_domains(url: str, domains: tuple[str, ...]) -> bool:
    """Whether `url` is on one of `domains` (subdomains included)."""
    host = _host(url)
    for domain in domains:
        domain = domain.lower().strip().removeprefix("www.")
        domain = _host(domain) if "://" in domain else domain.split("/")[0]
        if domain and (host == domain or host.endswith("." + domain)):
            return True
    return False


def allowed(hits: list[ir.SearchHit], spec: ir.WebSearchTool) -> list[ir.SearchHit]:
    """The hits the client's allowed and blocked domains let through."""
    return [
        hit
        for hit in hits
        if hit.url.startswith(("http://", "https://"))
        and (not spec.allowed_domains or in_domains(hit.url, spec.allowed_domains))
        and not in_domains(hit.url, spec.blocked_domains)
    ]


def _trimmed(hit: ir.SearchHit) -> ir.SearchHit:
    snippet = " ".join(hit.snippet.split())
    if len(snippet) > _SNIPPET_LIMIT:
        snippet = snippet[:_SNIPPET_LIMIT].rstrip() + " ..."
    title = " ".join(hit.title.split())
    return ir.SearchHit(hit.url, title, snippet, hit.page_age or None)


# ------------------------------------------------------------ the searcher


class Searcher:
    """Runs searches with the configured service; owns its HTTP session."""

    def __init__(self, settings: WebSearchSettings) -> None:
        self.settings = settings
        self.provider = settings.provider
        self.url = (settings.url or DEFAULT_URLS.get(self.provider, "")).rstrip("/")
        self._key = ""
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Read the key (environment, else keyring) and open the session."""
        if self.provider in ("brave", "tavily"):
            env = self.settings.api_key_env
            self._key = os.environ.get(env, "") if env else ""
            if not env:
                self._key = await stored_key(WEB_SEARCH_SECRET)
            SECRETS.add(self._key)
            if not self._key:
                log.warning(
                    "web search with %s has no key: set one with `lmbridge keys"
                    " set web-search` (or web_search.api_key_env)",
                    self.provider,
                )
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.settings.timeout),
            headers={"Accept": "application/json", "User-Agent": "lmbridge"},
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def search(
        self, query: str, spec: ir.WebSearchTool
    ) -> tuple[ir.SearchHit, ...]:
        """The hits for `query` within the client's domains; raises
        `SearchFailed` for anything else."""
        if self._session is None:
            raise SearchFailed("unavailable", "web search is not started")
        if self.provider in ("brave", "tavily") and not self._key:
            raise SearchFailed(
                "unavailable",
                f"no {self.provider} key: `lmbridge keys set web-search`",
            )
        try:
            async with asyncio.timeout(self.settings.timeout):
                hits = await self._ask(self._session, query, spec)
        except TimeoutError:
            raise SearchFailed(
                "unavailable",
                f"{self.provider} did not answer within {self.settings.timeout:g} s",
            ) from None
        except aiohttp.ClientError as exc:
            detail = SECRETS.scrub(f"{type(exc).__name__}: {exc}")[:200]
            raise SearchFailed(
                "unavailable", f"{self.provider} unreachable: {detail}"
            ) from None
        except DECODE_ERRORS:
            raise SearchFailed(
                "unavailable", f"{self.provider} answered something not its JSON"
            ) from None
        kept = allowed(hits, spec)[: self.settings.max_results]
        return tuple(_trimmed(hit) for hit in kept)

    async def _ask(
        self, session: aiohttp.ClientSession, query: str, spec: ir.WebSearchTool
    ) -> list[ir.SearchHit]:
        if self.provider == "tavily":
            payload: dict[str, object] = {
                "query": query,
                "max_results": self.settings.max_results,
            }
            if spec.allowed_domains:
                payload["include_domains"] = list(spec.allowed_domains)
            if spec.blocked_domains:
                payload["exclude_domains"] = list(spec.blocked_domains)
            headers = {"Authorization": f"Bearer {self._key}"}
            async with session.post(
                f"{self.url}/search", json=payload, headers=headers
            ) as resp:
                return _hits_tavily(await self._body(resp))
        asked = query
        if spec.allowed_domains:
            asked += " (" + " OR ".join(f"site:{d}" for d in spec.allowed_domains) + ")"
        if self.provider == "brave":
            params = {"q": asked, "count": str(self.settings.max_results)}
            headers = {"X-Subscription-Token": self._key}
            async with session.get(
                f"{self.url}/res/v1/web/search", params=params, headers=headers
            ) as resp:
                return _hits_brave(await self._body(resp))
        params = {"q": asked, "format": "json"}
        async with session.get(f"{self.url}/search", params=params) as resp:
            return _hits_searxng(await self._body(resp))

    async def _body(self, resp: aiohttp.ClientResponse) -> bytes:
        body = await resp.read()
        if resp.status == 429:
            raise SearchFailed("too_many_requests", f"{self.provider} answered 429")
        if resp.status != 200:
            text = SECRETS.scrub(body[:200].decode("utf-8", "replace"))
            raise SearchFailed(
                "unavailable", f"{self.provider} answered HTTP {resp.status}: {text}"
            )
        return body
